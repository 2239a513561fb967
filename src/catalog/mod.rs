//! The model catalog's file layer: which GGUF models are on disk and what each one is, read from
//! the file header alone (no weights are loaded, llama.cpp is not involved).
//!
//! - [`files`]: finds models in Paddock's folder, user folders, the Hugging Face cache and
//!   LM Studio's folder; groups split files.
//! - [`gguf`]: parses a GGUF header (metadata and tensor infos), safely on hostile input.
//! - [`ggml`]: bytes per element of every ggml tensor type.
//! - [`facts`](mod@facts): turns headers into [`ModelFacts`]: parameters, quantization, MoE,
//!   layers, attention shape, sliding windows, recurrent state: what the memory budget needs.
//!
//! From disk to facts: `scan(&default_folders(dir))` lists [`ModelFile`]s, and [`describe`]
//! reads one's headers into [`ModelFacts`].

use std::path::PathBuf;

pub mod download;
pub mod facts;
pub mod files;
pub mod ggml;
pub mod gguf;

#[cfg(test)]
mod test_gguf;

pub use facts::{facts, FactsError, ModelFacts, MoeFacts, Quantization, SsmFacts};
pub use files::{default_folders, scan, ModelFile, Source};
pub use gguf::{GgufError, GgufFile, MetaValue, TensorInfo};

#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("{id}: split model is missing part(s) {missing:?}")]
    MissingParts { id: String, missing: Vec<u32> },
    #[error("{}: {source}", path.display())]
    Gguf { path: PathBuf, source: GgufError },
    #[error("{id}: {source}")]
    Facts { id: String, source: FactsError },
}

/// Reads the header of every part of `model` and describes it.
pub fn describe(model: &ModelFile) -> Result<ModelFacts, DescribeError> {
    if !model.missing_parts.is_empty() {
        return Err(DescribeError::MissingParts {
            id: model.id.clone(),
            missing: model.missing_parts.clone(),
        });
    }
    let mut parts = Vec::with_capacity(model.parts.len());
    let mut file_bytes = 0u64;
    for path in &model.parts {
        let gguf_error = |source| DescribeError::Gguf {
            path: path.clone(),
            source,
        };
        parts.push(gguf::read(path).map_err(gguf_error)?);
        let len = std::fs::metadata(path)
            .map_err(|e| gguf_error(e.into()))?
            .len();
        file_bytes = file_bytes.saturating_add(len);
    }
    facts(&parts, file_bytes).map_err(|source| DescribeError::Facts {
        id: model.id.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::test_gguf::{real_model, TempDir, Writer, F32};
    use super::*;

    #[test]
    fn the_real_models_folder_scans_and_describes() {
        let folder = real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
        let folder = folder.parent().unwrap().to_path_buf();
        let models = scan(&[(folder, Source::Paddock)]);
        let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
        assert!(
            ids.contains(&"SmolLM2-135M-Instruct.Q4_1") && ids.contains(&"gemma-3-270m-q4_k_m")
        );
        for model in &models {
            let f = describe(model).unwrap();
            assert_eq!(
                f.file_bytes,
                std::fs::metadata(&model.parts[0]).unwrap().len()
            );
        }
    }

    #[test]
    fn split_sets_describe_when_complete_and_refuse_when_not() {
        let dir = TempDir::new("describe-split");
        for no in 0..2u16 {
            let w = Writer::new()
                .str("general.architecture", "llama")
                .u32("llama.block_count", 1)
                .u32("llama.context_length", 512)
                .u32("llama.embedding_length", 64)
                .kv("split.no", MetaValue::U16(no))
                .kv("split.count", MetaValue::U16(2))
                .tensor(&format!("t{no}"), &[64], F32);
            let name = format!("tiny-{:05}-of-00002.gguf", no + 1);
            std::fs::write(dir.path().join(name), w.file()).unwrap();
        }
        let models = scan(&[(dir.path().to_path_buf(), Source::UserFolder)]);
        let f = describe(&models[0]).unwrap();
        assert_eq!((models.len(), f.total_params), (1, 128));

        std::fs::remove_file(dir.path().join("tiny-00002-of-00002.gguf")).unwrap();
        let models = scan(&[(dir.path().to_path_buf(), Source::UserFolder)]);
        let err = describe(&models[0]).unwrap_err();
        assert!(matches!(err, DescribeError::MissingParts { ref missing, .. } if missing == &[2]));
    }
}
