//! Which of a repo's models the user meant: an id as `GET /api/hub` lists it, a file path or
//! name in the repo, or a quantization tag (`Q4_K_M`) that names exactly one model.

use super::{DownloadError, RemoteModel};

/// The model `wanted` names among `models` of `repo`.
pub fn pick<'a>(
    models: &'a [RemoteModel],
    repo: &str,
    wanted: &str,
) -> Result<&'a RemoteModel, DownloadError> {
    let name = wanted.trim_end_matches(".gguf");
    let exact = models.iter().find(|m| {
        m.id == name
            || m.files
                .iter()
                .any(|f| f.path == wanted || f.path.rsplit('/').next() == Some(wanted))
    });
    if let Some(model) = exact {
        return Ok(model);
    }
    let tagged: Vec<&RemoteModel> = models.iter().filter(|m| has_tag(m, wanted)).collect();
    match tagged.as_slice() {
        [one] => Ok(one),
        [] => Err(DownloadError::NotFound {
            what: format!("{repo}: {wanted}"),
            message: format!("the repo's GGUF models are: {}", ids(models.iter())),
        }),
        many => Err(DownloadError::Ambiguous {
            wanted: wanted.to_owned(),
            matches: ids(many.iter().copied()),
        }),
    }
}

/// Whether `tag` is one of the `.`/`-`/`/`-separated words of the model's id or file paths,
/// ignoring case: `Q4_K_M` matches `model-Q4_K_M` and `Q4_K_M/x-00001-of-00002.gguf`, but
/// `Q4_K` does not match `Q4_K_M`.
fn has_tag(model: &RemoteModel, tag: &str) -> bool {
    let words = |s: &str| {
        s.trim_end_matches(".gguf")
            .split(['.', '-', '/'])
            .any(|w| w.eq_ignore_ascii_case(tag))
    };
    !tag.is_empty() && (words(&model.id) || model.files.iter().any(|f| words(&f.path)))
}

fn ids<'a>(models: impl Iterator<Item = &'a RemoteModel>) -> String {
    let ids: Vec<&str> = models.map(|m| m.id.as_str()).collect();
    if ids.is_empty() {
        "(none)".to_owned()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::download::RemoteFile;

    fn model(id: &str, paths: &[&str]) -> RemoteModel {
        RemoteModel {
            id: id.into(),
            files: paths
                .iter()
                .map(|p| RemoteFile {
                    path: (*p).into(),
                    size: 1,
                    sha256: None,
                })
                .collect(),
            total_size: paths.len() as u64,
        }
    }

    #[test]
    fn ids_files_and_quant_tags_name_one_model() {
        let models = [
            model("Smol-Q4_K_M", &["Smol-Q4_K_M.gguf"]),
            model("Smol-Q4_K_S", &["Smol-Q4_K_S.gguf"]),
            model(
                "Big",
                &[
                    "Q8_0/Big-00001-of-00002.gguf",
                    "Q8_0/Big-00002-of-00002.gguf",
                ],
            ),
        ];
        let id = |w| pick(&models, "o/n", w).map(|m| m.id.as_str());
        assert_eq!(id("Smol-Q4_K_S").unwrap(), "Smol-Q4_K_S");
        assert_eq!(id("Smol-Q4_K_S.gguf").unwrap(), "Smol-Q4_K_S");
        assert_eq!(id("Q8_0/Big-00001-of-00002.gguf").unwrap(), "Big");
        assert_eq!(id("q4_k_m").unwrap(), "Smol-Q4_K_M");
        assert_eq!(id("Q8_0").unwrap(), "Big");
        let err = id("Q4_K").unwrap_err().to_string();
        assert!(err.contains("Smol-Q4_K_M, Smol-Q4_K_S, Big"), "{err}");
        assert!(matches!(
            pick(&models, "o/n", "Smol"),
            Err(DownloadError::Ambiguous { .. })
        ));
    }
}
