//! Downloads over real HTTP from `tests/fakehub/fakehub.py`, a standard-library Python stand-in for
//! the hub (tree API, 302 to a CDN route, ranges, gated and missing repos), started per test on a
//! free port with `python3` from `PATH`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::catalog::test_gguf::{real_model, TempDir};
use crate::catalog::{describe, scan, Source};

/// sha256 of `models/SmolLM2-135M-Instruct.Q4_1.gguf` (fetched by `scripts/fetch-models.sh`).
const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// A running fakehub.py; killed when dropped.
struct FakeHub {
    child: Child,
    url: String,
}

impl FakeHub {
    fn start(root: &Path, options: &[&str]) -> FakeHub {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakehub/fakehub.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--root")
            .arg(root)
            .args(["--port", "0"])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {}: {e} (is python3 on PATH?)", script.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("fakehub prints its address");
        let url = line.trim().strip_prefix("listening on ").map(str::to_owned);
        let url = url.unwrap_or_else(|| panic!("fakehub did not start: {line:?}"));
        FakeHub { child, url }
    }

    fn hub(&self) -> Hub {
        Hub::new(&self.url, None).unwrap()
    }

    /// Body bytes the fake CDN has sent so far, and the `Range` header of each request.
    async fn stats(&self) -> (u64, Vec<Option<String>>) {
        let body = reqwest::get(format!("{}/_fakehub/stats", self.url))
            .await
            .unwrap();
        let stats: serde_json::Value =
            serde_json::from_slice(&body.bytes().await.unwrap()).unwrap();
        let ranges = stats["ranges"].as_array().unwrap();
        let ranges = ranges
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect();
        (stats["cdn_bytes"].as_u64().unwrap(), ranges)
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `files` into the repo folder `root/<repo>/` as the fake hub serves it.
fn put_repo(root: &Path, repo: &str, files: &[(&str, &[u8])]) {
    for (path, bytes) in files {
        let path = root.join(repo).join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Deterministic noise (xorshift), so no two blocks of a test file are alike.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

const BIG: usize = 3 << 20;

/// A repo `o/small` holding one 3 MiB file, and a fake hub serving it with `options`.
fn small_repo(options: &[&str]) -> (TempDir, Vec<u8>, FakeHub) {
    let root = TempDir::new("download-root");
    let data = noise(BIG, 7);
    put_repo(root.path(), "o/small", &[("small.gguf", &data)]);
    let fake = FakeHub::start(root.path(), options);
    (root, data, fake)
}

async fn files_of(hub: &Hub, repo: &str) -> Vec<RemoteFile> {
    let models = list_files(hub, repo).await.unwrap();
    models.into_iter().flat_map(|m| m.files).collect()
}

fn part_len(path: &Path) -> Option<u64> {
    std::fs::metadata(names::part_path(path))
        .ok()
        .map(|m| m.len())
}

#[tokio::test]
async fn listing_keeps_gguf_models_and_groups_split_parts() {
    let root = TempDir::new("download-list");
    let parts: Vec<Vec<u8>> = (1..=3).map(|n| noise(1000 + n, n as u64)).collect();
    put_repo(
        root.path(),
        "o/mixed",
        &[
            ("m-Q4_K_M.gguf", b"GGUF single"),
            ("Q8_0/m-Q8_0-00001-of-00003.gguf", &parts[0]),
            ("Q8_0/m-Q8_0-00002-of-00003.gguf", &parts[1]),
            ("Q8_0/m-Q8_0-00003-of-00003.gguf", &parts[2]),
            ("README.md", b"# readme"),
            ("mmproj-m-f16.gguf", b"GGUF projector"),
        ],
    );
    // Two entries a page: the listing is only complete if every `Link: rel="next"` is followed.
    let fake = FakeHub::start(root.path(), &["--page-size", "2"]);

    let models = list_files(&fake.hub(), "o/mixed").await.unwrap();
    let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m-Q8_0", "m-Q4_K_M"]);
    let split = &models[0];
    let paths: Vec<_> = split.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Q8_0/m-Q8_0-00001-of-00003.gguf",
            "Q8_0/m-Q8_0-00002-of-00003.gguf",
            "Q8_0/m-Q8_0-00003-of-00003.gguf",
        ]
    );
    assert_eq!(split.total_size, 1001 + 1002 + 1003);
    for (file, bytes) in split.files.iter().zip(&parts) {
        assert_eq!(
            (file.size, file.sha256.as_deref()),
            (bytes.len() as u64, Some(&*sha256(bytes)))
        );
    }
}

#[tokio::test]
async fn download_writes_the_files_and_progress_reaches_the_total() {
    let (root, data, fake) = small_repo(&[]);
    let tiny = noise(5000, 3);
    put_repo(root.path(), "o/small", &[("sub/tiny.gguf", &tiny)]);
    let hub = fake.hub();
    let files = files_of(&hub, "o/small").await;
    let dest = TempDir::new("download-dest");

    let mut reports = Vec::new();
    let cancel = CancellationToken::new();
    let paths = download(
        &hub,
        "o/small",
        &files,
        dest.path(),
        |p| reports.push(p),
        &cancel,
    )
    .await
    .unwrap();

    let folder = dest.path().join("o--small");
    assert_eq!(
        paths,
        [folder.join("small.gguf"), folder.join("sub/tiny.gguf")]
    );
    assert_eq!(std::fs::read(&paths[0]).unwrap(), data);
    assert_eq!(std::fs::read(&paths[1]).unwrap(), tiny);
    assert!(
        paths.iter().all(|p| part_len(p).is_none()),
        "a .part was left behind"
    );
    let total = (BIG + tiny.len()) as u64;
    let last = reports.last().unwrap();
    assert_eq!((last.done_bytes, last.total_bytes), (total, total));
    assert!(reports
        .windows(2)
        .all(|w| w[0].done_bytes <= w[1].done_bytes));
    assert!(reports.iter().any(|p| p.file == "sub/tiny.gguf"));
}

#[tokio::test]
async fn complete_files_are_not_fetched_again_and_other_files_not_overwritten() {
    let (_root, _data, fake) = small_repo(&[]);
    let hub = fake.hub();
    let files = files_of(&hub, "o/small").await;
    let dest = TempDir::new("download-again");
    let cancel = CancellationToken::new();
    download(&hub, "o/small", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap();
    let (served, _) = fake.stats().await;

    let mut last = None;
    download(
        &hub,
        "o/small",
        &files,
        dest.path(),
        |p| last = Some(p),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(
        fake.stats().await.0,
        served,
        "a complete file was fetched again"
    );
    assert_eq!(last.unwrap().done_bytes, BIG as u64);

    let other = dest.path().join("o--small/small.gguf");
    std::fs::write(&other, b"someone else's model").unwrap();
    let err = download(&hub, "o/small", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Exists { ref path } if *path == other),
        "{err}"
    );
    assert_eq!(std::fs::read(&other).unwrap(), b"someone else's model");
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_the_part() {
    let (_root, data, fake) = small_repo(&["--fail-after", "1000000"]);
    let hub = fake.hub();
    let files = files_of(&hub, "o/small").await;
    let dest = TempDir::new("download-resume");
    let cancel = CancellationToken::new();

    let err = download(&hub, "o/small", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Network { .. }), "{err}");
    let path = dest.path().join("o--small/small.gguf");
    let kept = part_len(&path).expect("the part is kept");
    assert!(kept > 0 && kept < BIG as u64, "kept {kept} bytes");
    assert!(!path.exists());

    let (before, _) = fake.stats().await;
    download(&hub, "o/small", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap();
    let (after, ranges) = fake.stats().await;
    assert_eq!(
        after - before,
        BIG as u64 - kept,
        "only the rest was fetched"
    );
    assert_eq!(
        ranges.last().unwrap().as_deref(),
        Some(&*format!("bytes={kept}-"))
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn a_server_ignoring_the_range_restarts_the_file() {
    let (root, data, failing) = small_repo(&["--fail-after", "1000000"]);
    let files = files_of(&failing.hub(), "o/small").await;
    let dest = TempDir::new("download-no-range");
    let cancel = CancellationToken::new();
    let hub = failing.hub();
    let first = download(&hub, "o/small", &files, dest.path(), |_| {}, &cancel).await;
    assert!(
        matches!(first, Err(DownloadError::Network { .. })),
        "{first:?}"
    );

    let whole = FakeHub::start(root.path(), &["--ignore-range"]);
    let mut last = None;
    let hub = whole.hub();
    download(
        &hub,
        "o/small",
        &files,
        dest.path(),
        |p| last = Some(p),
        &cancel,
    )
    .await
    .unwrap();
    let (served, ranges) = whole.stats().await;
    assert!(ranges[0].is_some(), "the kept part was offered as a range");
    assert_eq!(served, BIG as u64);
    assert_eq!(
        last.unwrap().done_bytes,
        BIG as u64,
        "the discarded part is not counted twice"
    );
    assert_eq!(
        std::fs::read(dest.path().join("o--small/small.gguf")).unwrap(),
        data
    );
}

#[tokio::test]
async fn a_corrupt_download_is_detected_and_its_part_removed() {
    let (_root, data, fake) = small_repo(&["--corrupt"]);
    let hub = fake.hub();
    let files = files_of(&hub, "o/small").await;
    let dest = TempDir::new("download-corrupt");

    let cancel = CancellationToken::new();
    let err = download(&hub, "o/small", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap_err();
    let mut corrupted = data.clone();
    corrupted[BIG / 2] ^= 0xFF;
    match &err {
        DownloadError::Checksum {
            file,
            expected,
            actual,
        } => {
            assert_eq!(
                (file.as_str(), expected, actual),
                ("small.gguf", &sha256(&data), &sha256(&corrupted))
            );
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&sha256(&data)) && message.contains(&sha256(&corrupted)),
        "{message}"
    );
    let path = dest.path().join("o--small/small.gguf");
    assert_eq!((part_len(&path), path.exists()), (None, false));
}

/// A small filesystem of its own (tmpfs; needs root, as on CI), unmounted when dropped.
#[cfg(target_os = "linux")]
struct Tmpfs(std::path::PathBuf);

#[cfg(target_os = "linux")]
impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs(dir.to_path_buf())
    }
}

#[cfg(target_os = "linux")]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
#[cfg(target_os = "linux")]
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
}

/// The disk fills up while a file arrives (another program took the space after the free-space
/// check): a disk-full error, nothing under the model's name, the part kept, and once space is
/// freed the next call resumes it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_disk_filling_up_mid_file_is_a_disk_full_error_and_resumes_once_freed() {
    let (root, data, slow) = small_repo(&["--throttle", "1000000"]);
    let hub = slow.hub();
    let files = files_of(&hub, "o/small").await;
    let dest = TempDir::new("download-full");
    let _disk = Tmpfs::mount(dest.path(), space::SPACE_MARGIN + (16 << 20));
    let filler = dest.path().join("filler");
    let take_the_space = |p: Progress| {
        if p.done_bytes > 0 && !filler.exists() {
            fill(&filler);
        }
    };
    let cancel = CancellationToken::new();
    let err = download(
        &hub,
        "o/small",
        &files,
        dest.path(),
        take_the_space,
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DownloadError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().starts_with("disk full writing "), "{err}");
    let path = dest.path().join("o--small/small.gguf");
    assert!(!path.exists(), "nothing under the model's name");
    let kept = part_len(&path).expect("the part is kept");
    assert!(kept < BIG as u64, "kept {kept} bytes");

    std::fs::remove_file(&filler).unwrap();
    let fast = FakeHub::start(root.path(), &[]);
    download(&fast.hub(), "o/small", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap();
    assert_eq!(fast.stats().await.0, BIG as u64 - kept, "resumed");
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn cancel_keeps_the_part_and_the_next_call_resumes_it() {
    let (root, data, slow) = small_repo(&["--throttle", "1000000"]);
    let hub = slow.hub();
    let files = files_of(&hub, "o/small").await;
    let dest = TempDir::new("download-cancel");
    let cancel = CancellationToken::new();

    // Cancelled from the progress callback once bytes flow: mid-file on any machine, since the
    // server sends at most 1 MB/s of the 3 MiB.
    let stop = |p: Progress| {
        if p.done_bytes > 0 {
            cancel.cancel();
        }
    };
    let err = download(&hub, "o/small", &files, dest.path(), stop, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Cancelled), "{err}");
    let path = dest.path().join("o--small/small.gguf");
    let kept = part_len(&path).expect("the part is kept");
    assert!(kept > 0 && kept < BIG as u64, "kept {kept} bytes");
    assert!(!path.exists());

    let fast = FakeHub::start(root.path(), &[]);
    let fresh = CancellationToken::new();
    download(&fast.hub(), "o/small", &files, dest.path(), |_| {}, &fresh)
        .await
        .unwrap();
    assert_eq!(fast.stats().await.0, BIG as u64 - kept);
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn a_gated_repo_needs_a_token() {
    let root = TempDir::new("download-gated");
    put_repo(root.path(), "o/gated", &[("g.gguf", b"GGUF gated")]);
    let fake = FakeHub::start(root.path(), &["--gated", "o/gated"]);
    let dest = TempDir::new("download-gated-dest");
    let cancel = CancellationToken::new();

    let err = list_files(&fake.hub(), "o/gated").await.unwrap_err();
    assert!(
        matches!(err, DownloadError::NeedsToken { status: 401, .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("needs a Hugging Face token (HF_TOKEN)"),
        "{message}"
    );
    assert!(
        message.contains("is restricted"),
        "the hub's own words are kept: {message}"
    );
    let file = RemoteFile {
        path: "g.gguf".into(),
        size: 10,
        sha256: None,
    };
    let err = download(
        &fake.hub(),
        "o/gated",
        &[file],
        dest.path(),
        |_| {},
        &cancel,
    )
    .await;
    assert!(
        matches!(err, Err(DownloadError::NeedsToken { .. })),
        "{err:?}"
    );

    let with_token = Hub::new(&fake.url, Some("hf_test".into())).unwrap();
    let files = files_of(&with_token, "o/gated").await;
    let paths = download(&with_token, "o/gated", &files, dest.path(), |_| {}, &cancel)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), b"GGUF gated");
}

#[tokio::test]
async fn unknown_repos_and_files_are_not_found() {
    let (_root, _data, fake) = small_repo(&[]);
    let hub = fake.hub();
    let dest = TempDir::new("download-404");
    let cancel = CancellationToken::new();

    let err = list_files(&hub, "o/missing").await.unwrap_err();
    assert!(
        matches!(err, DownloadError::NotFound { ref what, .. } if what == "o/missing"),
        "{err}"
    );
    assert!(err.to_string().contains("Repository not found"), "{err}");

    let missing = RemoteFile {
        path: "nope.gguf".into(),
        size: 10,
        sha256: None,
    };
    let err = download(&hub, "o/small", &[missing], dest.path(), |_| {}, &cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::NotFound { ref what, .. } if what == "o/small: nope.gguf"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dest.path()).unwrap().count(),
        0,
        "nothing is created for a 404"
    );
}

#[tokio::test]
async fn hostile_names_are_refused_before_anything_is_written() {
    // Nothing listens here: every case must fail before a request is made.
    let hub = Hub::new("http://127.0.0.1:9", None).unwrap();
    let dest = TempDir::new("download-hostile");
    let cancel = CancellationToken::new();
    let file = |path: &str| RemoteFile {
        path: path.into(),
        size: 1,
        sha256: None,
    };
    for bad in [
        "../evil.gguf",
        "/etc/evil.gguf",
        "a\\..\\evil.gguf",
        "a/../../evil.gguf",
    ] {
        let files = [file("fine.gguf"), file(bad)];
        let err = download(&hub, "o/n", &files, dest.path(), |_| {}, &cancel)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::UnsafePath { .. }),
            "{bad}: {err}"
        );
    }
    for bad in ["../n", "o/..", "o/n/x", "o--x/n", "o/n?x"] {
        let err = download(&hub, bad, &[file("m.gguf")], dest.path(), |_| {}, &cancel).await;
        assert!(
            matches!(err, Err(DownloadError::InvalidRepo { .. })),
            "{bad}: {err:?}"
        );
        let err = list_files(&hub, bad).await;
        assert!(
            matches!(err, Err(DownloadError::InvalidRepo { .. })),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

/// End to end: a real GGUF through the fake hub, checked against its known sha256, then found
/// and described by the catalog where the download put it.
#[tokio::test]
async fn the_real_smollm2_downloads_and_the_catalog_finds_it() {
    let model = real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let root = TempDir::new("download-real");
    let repo_dir = root.path().join("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF");
    std::fs::create_dir_all(&repo_dir).unwrap();
    std::os::unix::fs::symlink(&model, repo_dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let fake = FakeHub::start(root.path(), &[]);
    let hub = fake.hub();

    let models = list_files(&hub, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
        .await
        .unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].id, "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(models[0].files[0].sha256.as_deref(), Some(SMOLLM2_SHA256));
    let size = std::fs::metadata(&model).unwrap().len();
    assert_eq!(models[0].total_size, size);

    let dest = TempDir::new("download-real-dest");
    let mut last = None;
    let cancel = CancellationToken::new();
    let repo = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
    let paths = download(
        &hub,
        repo,
        &models[0].files,
        dest.path(),
        |p| last = Some(p),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(last.map(|p| p.done_bytes), Some(size));
    assert_eq!(sha256(&std::fs::read(&paths[0]).unwrap()), SMOLLM2_SHA256);

    let found = scan(&[(dest.path().to_path_buf(), Source::Paddock)]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].id.as_str(), &found[0].parts),
        ("SmolLM2-135M-Instruct.Q4_1", &paths)
    );
    assert_eq!(describe(&found[0]).unwrap().file_bytes, size);
}
