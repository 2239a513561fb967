use std::os::unix::fs::symlink;

use super::*;
use crate::catalog::test_gguf::TempDir;

/// Writes a file that starts with the GGUF magic (scan reads nothing more).
fn gguf(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"GGUF\x03\0\0\0").unwrap();
}

fn ids(models: &[ModelFile]) -> Vec<&str> {
    models.iter().map(|m| m.id.as_str()).collect()
}

fn hf() -> Source {
    Source::HuggingFaceCache {
        repo: String::new(),
        revision: String::new(),
    }
}

#[test]
fn a_folder_lists_gguf_models_and_skips_the_rest() {
    let dir = TempDir::new("files-plain");
    let root = dir.path();
    for name in [
        "a.gguf",
        "B.GGUF",
        "nested/deeper/c.gguf",
        "mmproj-a-f16.gguf",
        "gemma-mmproj.gguf",
        "._a.gguf",
        ".hidden/d.gguf",
    ] {
        gguf(&root.join(name));
    }
    std::fs::write(root.join("html-error-page.gguf"), b"<html>").unwrap();
    std::fs::write(root.join("notes.txt"), b"GGUF").unwrap();
    std::fs::write(root.join("empty.gguf"), b"").unwrap();

    let models = scan(&[(root.to_path_buf(), Source::Paddock)]);
    assert_eq!(ids(&models), ["B", "a", "c"]);
    let a = &models[1];
    assert_eq!(
        (a.parts.clone(), a.read_only, a.missing_parts.is_empty()),
        (vec![root.join("a.gguf")], false, true)
    );

    let user = scan(&[(root.to_path_buf(), Source::UserFolder)]);
    assert!(user
        .iter()
        .all(|m| m.read_only && m.source == Source::UserFolder));
    assert!(scan(&[(root.join("absent"), Source::UserFolder)]).is_empty());
}

#[test]
fn split_parts_group_into_one_model_and_gaps_are_reported() {
    let dir = TempDir::new("files-split");
    let root = dir.path();
    for name in [
        "big-Q4_K_M-00002-of-00003.gguf",
        "big-Q4_K_M-00001-of-00003.gguf",
        "big-Q4_K_M-00003-of-00003.gguf",
        "half-00001-of-00002.gguf",
        "odd-00000-of-00002.gguf",
        "short-0001-of-0002.gguf",
    ] {
        gguf(&root.join(name));
    }
    let models = scan(&[(root.to_path_buf(), Source::UserFolder)]);
    assert_eq!(
        ids(&models),
        [
            "big-Q4_K_M",
            "half",
            "odd-00000-of-00002",
            "short-0001-of-0002"
        ]
    );
    let parts: Vec<_> = (1..=3)
        .map(|i| root.join(format!("big-Q4_K_M-0000{i}-of-00003.gguf")))
        .collect();
    assert_eq!(
        (models[0].parts.clone(), models[0].missing_parts.clone()),
        (parts, vec![])
    );
    assert_eq!(models[1].missing_parts, [2]);
    assert_eq!(models[1].parts, [root.join("half-00001-of-00002.gguf")]);
}

/// `<hub>/models--org--name/{blobs,refs/main,snapshots/<rev>/…}` as huggingface_hub writes it.
fn hf_repo(hub: &Path, repo_dir: &str, main: &str, snapshots: &[(&str, &[&str])]) {
    let repo = hub.join(repo_dir);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), main).unwrap();
    for (rev, files) in snapshots {
        for file in *files {
            // Same name, same blob: snapshots share unchanged files.
            let blob = repo.join("blobs").join(file.replace('/', "_"));
            gguf(&blob);
            let link = repo.join("snapshots").join(rev).join(file);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(&blob, &link).unwrap();
        }
    }
}

#[test]
fn hugging_face_cache_layout() {
    let dir = TempDir::new("files-hf");
    let hub = dir.path();
    hf_repo(
        hub,
        "models--unsloth--Qwen3-8B-GGUF",
        "bbb\n",
        &[
            ("aaa", &["Qwen3-8B-Q4_K_M.gguf", "Qwen3-8B-Q8_0.gguf"]),
            (
                "bbb",
                &[
                    "Qwen3-8B-Q4_K_M.gguf",
                    "Q6/Qwen3-8B-Q6_K-00001-of-00002.gguf",
                    "Q6/Qwen3-8B-Q6_K-00002-of-00002.gguf",
                    "mmproj-F16.gguf",
                ],
            ),
        ],
    );
    hf_repo(hub, "models--gpt2", "r1", &[("r1", &["gpt2.gguf"])]);
    std::fs::create_dir_all(hub.join("datasets--x--y/snapshots/r/data")).unwrap();
    gguf(&hub.join("datasets--x--y/snapshots/r/data/not-a-model.gguf"));
    gguf(&hub.join("stray.gguf"));

    let models = scan(&[(hub.to_path_buf(), hf())]);
    let found: Vec<_> = models
        .iter()
        .map(|m| match &m.source {
            Source::HuggingFaceCache { repo, revision } => (
                m.id.as_str(),
                repo.as_str(),
                revision.as_str(),
                m.parts.len(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    // refs/main's snapshot wins for the shared Q4_K_M blob; Q8_0 only exists in the older one.
    assert_eq!(
        found,
        [
            ("gpt2", "gpt2", "r1", 1),
            ("Qwen3-8B-Q8_0", "unsloth/Qwen3-8B-GGUF", "aaa", 1),
            ("Qwen3-8B-Q6_K", "unsloth/Qwen3-8B-GGUF", "bbb", 2),
            ("Qwen3-8B-Q4_K_M", "unsloth/Qwen3-8B-GGUF", "bbb", 1),
        ]
    );
    assert!(models.iter().all(|m| m.read_only));
    assert!(
        models[3].parts[0].ends_with("snapshots/bbb/Qwen3-8B-Q4_K_M.gguf"),
        "the snapshot path, not the blob"
    );
}

#[test]
fn lm_studio_layout() {
    let dir = TempDir::new("files-lms");
    let root = dir.path();
    gguf(&root.join("lmstudio-community/gemma-3-4b-it-GGUF/gemma-3-4b-it-Q4_K_M.gguf"));
    gguf(&root.join("lmstudio-community/gemma-3-4b-it-GGUF/mmproj-model-f16.gguf"));
    let models = scan(&[(root.to_path_buf(), Source::LmStudio)]);
    assert_eq!(ids(&models), ["gemma-3-4b-it-Q4_K_M"]);
    assert_eq!(
        (models[0].source.clone(), models[0].read_only),
        (Source::LmStudio, true)
    );
}

#[test]
fn a_file_reachable_twice_is_listed_once_and_symlink_loops_end() {
    let dir = TempDir::new("files-dedupe");
    let root = dir.path();
    gguf(&root.join("models/m.gguf"));
    symlink(root.join("models"), root.join("models/loop")).unwrap();
    symlink(root.join("models/m.gguf"), root.join("alias.gguf")).unwrap();
    let models = scan(&[
        (root.join("models"), Source::Paddock),
        (root.to_path_buf(), Source::UserFolder),
    ]);
    assert_eq!(ids(&models), ["m"]);
    assert_eq!(models[0].source, Source::Paddock, "the first folder wins");
}

#[test]
fn default_folders_follow_huggingface_hub_and_lm_studio_rules() {
    let dir = TempDir::new("files-defaults");
    let home = dir.path().join("home");
    let paddock = dir.path().join("paddock");
    for sub in [
        "paddock",
        "home/.cache/huggingface/hub",
        "home/.lmstudio/models",
        "custom-hub",
        "hf-home/hub",
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let with_env = |vars: &[(&str, PathBuf)]| {
        let vars = vars.to_vec();
        folders_from(
            &paddock,
            move |key| {
                vars.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone().into())
            },
            Some(&home),
        )
    };
    let paths =
        |folders: Vec<(PathBuf, Source)>| folders.into_iter().map(|(p, _)| p).collect::<Vec<_>>();

    let folders = with_env(&[]);
    assert_eq!(folders[0], (paddock.clone(), Source::Paddock));
    assert_eq!(folders[1], (home.join(".cache/huggingface/hub"), hf()));
    assert_eq!(
        folders[2],
        (home.join(".lmstudio/models"), Source::LmStudio)
    );
    // Listed though missing: the scan skips it, and a folder made later is found.
    assert_eq!(
        folders[3],
        (home.join(".cache/lm-studio/models"), Source::LmStudio)
    );

    let hf_home = with_env(&[("HF_HOME", dir.path().join("hf-home"))]);
    assert_eq!(paths(hf_home)[1], dir.path().join("hf-home/hub"));
    let hub = with_env(&[
        ("HF_HUB_CACHE", dir.path().join("custom-hub")),
        ("HF_HOME", dir.path().join("hf-home")),
    ]);
    assert_eq!(paths(hub)[1], dir.path().join("custom-hub"));
    let missing = with_env(&[("HF_HUB_CACHE", dir.path().join("nope"))]);
    assert_eq!(paths(missing)[1], dir.path().join("nope"));
    assert_eq!(
        paths(folders_from(&dir.path().join("no-paddock"), |_| None, None)),
        [dir.path().join("no-paddock")]
    );
    assert!(scan(&[(dir.path().join("no-paddock"), Source::Paddock)]).is_empty());
}
