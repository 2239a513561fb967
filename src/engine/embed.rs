//! Embeddings: a second llama.cpp context on the same weights, made with embeddings on the
//! first time one is asked for, beside the chat context. It pools every input into one
//! vector (the GGUF's pooling; mean for models that name none, such as chat models) and
//! L2-normalises it, as OpenAI's embeddings are.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::error::EngineError;
use super::TokenId;

/// Longest input the embedding context takes: the whole input is one batch (pooling needs
/// every token of a sequence in one micro-batch), and the compute buffer grows with it.
pub const MAX_EMBED_TOKENS: u32 = 2048;

pub struct Embedder<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
}

impl<'m> Embedder<'m> {
    pub fn new(model: &'m LlamaModel, n_threads: i32) -> Result<Self, EngineError> {
        let n = MAX_EMBED_TOKENS.min(model.n_ctx_train().max(1));
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n))
            .with_n_batch(n)
            .with_n_ubatch(n)
            .with_n_seq_max(1)
            .with_embeddings(true)
            .with_pooling_type(pooling(model))
            .with_n_threads(n_threads)
            .with_n_threads_batch(n_threads);
        let ctx = model
            .new_context(super::backend()?, params)
            .map_err(|e| EngineError::Context(e.to_string()))?;
        Ok(Self {
            ctx,
            batch: LlamaBatch::new(n as usize, 1),
        })
    }

    /// One normalised vector per input, each computed on its own (so a batch gives exactly
    /// what single requests give).
    pub fn embed(&mut self, inputs: &[Vec<TokenId>]) -> Result<Vec<Vec<f32>>, EngineError> {
        inputs.iter().map(|tokens| self.embed_one(tokens)).collect()
    }

    fn embed_one(&mut self, tokens: &[TokenId]) -> Result<Vec<f32>, EngineError> {
        let decode_err = |e: String| EngineError::Decode(e);
        self.ctx.clear_kv_cache();
        self.batch.clear();
        for (pos, &t) in tokens.iter().enumerate() {
            self.batch
                .add(LlamaToken(t), pos as i32, &[0], true)
                .map_err(|e| decode_err(e.to_string()))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| decode_err(e.to_string()))?;
        let pooled = self
            .ctx
            .embeddings_seq_ith(0)
            .map_err(|_| decode_err("llama.cpp returned no pooled embedding".into()))?;
        Ok(normalize(pooled))
    }
}

/// The GGUF's `<arch>.pooling_type` (0 none, 1 mean, 2 cls, 3 last); chat models have none,
/// and a sentence vector needs one: mean is the usual choice there.
fn pooling(model: &LlamaModel) -> LlamaPoolingType {
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    let declared = model
        .meta_val_str(&format!("{arch}.pooling_type"))
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    match declared.map(LlamaPoolingType::from) {
        Some(p @ (LlamaPoolingType::Mean | LlamaPoolingType::Cls | LlamaPoolingType::Last)) => p,
        _ => LlamaPoolingType::Mean,
    }
}

fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn vectors_come_out_unit_length() {
        let v = normalize(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalize(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
