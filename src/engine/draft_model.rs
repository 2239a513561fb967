//! A small model that guesses the big one's next tokens (llama-server's `--model-draft`). It
//! keeps its own KV cache per slot, in step with the slot's tokens: each step it decodes what
//! is new since its last guess, then guesses greedily one token at a time while it is sure
//! enough (`draft_p_min`).

use std::num::NonZeroU32;
use std::path::Path;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::error::EngineError;
use super::scheduler::common_prefix;
use super::speculation::top_token;
use super::types::TokenId;

/// llama-server's tolerance: vocabularies may differ in size by this many (padding tokens).
const MAX_VOCAB_SIZE_DIFFERENCE: i32 = 128;

/// Checks that every token id means the same text in both models, as llama-server does; a
/// draft with another vocabulary would only ever guess wrong. Names the first difference.
pub fn check_vocab(target: &LlamaModel, draft: &LlamaModel) -> Result<(), String> {
    let (t, d) = (target.vocab(), draft.vocab());
    if t.vocab_type() != d.vocab_type() {
        return Err("its tokenizer is of another kind".into());
    }
    let (nt, nd) = (t.n_tokens(), d.n_tokens());
    if (nt - nd).abs() > MAX_VOCAB_SIZE_DIFFERENCE {
        return Err(format!(
            "its vocabulary has {nd} tokens, the model's has {nt}"
        ));
    }
    if t.bos() != d.bos() || t.eos() != d.eos() {
        return Err("its BOS/EOS tokens differ".into());
    }
    for id in 0..nt.min(nd) {
        let (a, b) = (t.text(LlamaToken(id)), d.text(LlamaToken(id)));
        if a != b {
            let show = |s: Option<&std::ffi::CStr>| {
                s.map_or_else(
                    || "nothing".into(),
                    |s| format!("{:?}", s.to_string_lossy()),
                )
            };
            return Err(format!(
                "token {id} is {} in it but {} in the model",
                show(b),
                show(a)
            ));
        }
    }
    Ok(())
}

/// Loads `path` as a draft for `target`, refusing one whose vocabulary differs.
pub fn load(
    backend: &LlamaBackend,
    target: &LlamaModel,
    path: &Path,
    n_gpu_layers: u32,
) -> Result<LlamaModel, EngineError> {
    let fail = |reason: String| EngineError::Load {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(fail("no such draft model file".into()));
    }
    let params = LlamaModelParams::default().with_n_gpu_layers(n_gpu_layers);
    let draft = LlamaModel::load_from_file(backend, path, &params)
        .map_err(|e| fail(format!("draft model: {e}")))?;
    check_vocab(target, &draft)
        .map_err(|why| fail(format!("cannot draft for this model: {why}")))?;
    Ok(draft)
}

pub struct DraftModel<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_ctx: usize,
    n_batch: usize,
    /// Per slot: the tokens whose KV this context holds for that sequence.
    caches: Vec<Vec<TokenId>>,
}

impl<'m> DraftModel<'m> {
    /// A context like the target's: one sequence per slot in one pool of `n_ctx` cells.
    pub fn new(
        model: &'m LlamaModel,
        backend: &LlamaBackend,
        params: LlamaContextParams,
        n_slots: u32,
    ) -> Result<Self, String> {
        let n_ctx = params.n_ctx().map_or(0, NonZeroU32::get) as usize;
        let n_batch = params.n_batch() as usize;
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| format!("draft model context: {e}"))?;
        Ok(Self {
            ctx,
            batch: LlamaBatch::new(n_batch, 1),
            n_ctx,
            n_batch,
            caches: vec![Vec::new(); n_slots as usize],
        })
    }

    /// Up to `max` guesses of what follows `history` in sequence `seq`; fewer when the draft
    /// model is unsure or something fails (a failed guess is only a lost speed-up).
    pub fn draft(&mut self, seq: i32, history: &[TokenId], max: usize, p_min: f32) -> Vec<TokenId> {
        if max == 0 || history.is_empty() || history.len() + max > self.n_ctx {
            return Vec::new();
        }
        match self.try_draft(seq, history, max, p_min) {
            Ok(draft) => draft,
            Err(e) => {
                tracing::debug!(seq, error = %e, "draft model failed; no guesses this step");
                let _ = self.ctx.kv_cache_seq_rm(seq, None, None);
                self.caches[seq as usize].clear();
                Vec::new()
            }
        }
    }

    fn try_draft(
        &mut self,
        seq: i32,
        history: &[TokenId],
        max: usize,
        p_min: f32,
    ) -> Result<Vec<TokenId>, String> {
        let s = seq as usize;
        // Decode what is new; at least the last token, whose logits give the first guess.
        let keep = common_prefix(&self.caches[s], history).min(history.len() - 1);
        self.ctx
            .kv_cache_seq_rm(seq, u32::try_from(keep).ok(), None)
            .map_err(|e| e.to_string())?;
        self.caches[s].truncate(keep);
        self.make_room(s, history.len() - keep + max);
        let mut at = 0;
        for chunk_start in (keep..history.len()).step_by(self.n_batch) {
            let end = (chunk_start + self.n_batch).min(history.len());
            at = self.decode(seq, &history[chunk_start..end], chunk_start)?;
        }
        let mut draft = Vec::with_capacity(max);
        while let Some((token, p)) = top_token(self.ctx.get_logits_ith(at)) {
            if p < p_min {
                break;
            }
            draft.push(token);
            if draft.len() == max {
                break;
            }
            let pos = self.caches[s].len();
            at = self.decode(seq, &[token], pos)?;
        }
        Ok(draft)
    }

    /// Decodes `tokens` at positions from `pos` on, logits for the last; returns its index.
    fn decode(&mut self, seq: i32, tokens: &[TokenId], pos: usize) -> Result<i32, String> {
        self.batch.clear();
        let last = tokens.len() - 1;
        for (i, &token) in tokens.iter().enumerate() {
            self.batch
                .add(LlamaToken(token), (pos + i) as i32, &[seq], i == last)
                .map_err(|e| e.to_string())?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| e.to_string())?;
        self.caches[seq as usize].extend_from_slice(tokens);
        Ok(last as i32)
    }

    /// The pool is shared by all slots: drop other slots' draft caches when this one needs
    /// the cells (they are decoded again when their slot next drafts).
    fn make_room(&mut self, s: usize, need: usize) {
        let used: usize = self.caches.iter().map(Vec::len).sum();
        if used + need <= self.n_ctx {
            return;
        }
        for (other, cache) in self.caches.iter_mut().enumerate() {
            if other != s && !cache.is_empty() {
                let _ = self.ctx.kv_cache_seq_rm(other as i32, None, None);
                cache.clear();
            }
        }
    }
}
