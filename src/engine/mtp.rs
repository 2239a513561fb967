//! The model's own multi-token-prediction heads as the guesser (llama-server's
//! `--spec-type draft-mtp`). Models such as GLM-4.5, Qwen3.5 and DeepSeek-V3 end in extra
//! "nextn" layers trained to predict the token after next from the trunk's last hidden state.
//! llama.cpp runs them in a second context over the same weights. That context keeps a KV cache
//! of its own for the MTP layer, so it must see every batch the model decodes and every cut of
//! the model's cache: [`Target`] is the engine's context with that bookkeeping built in.
//!
//! The crate binds llama.cpp's MTP state to sequence 0, so the heads guess only where the
//! engine has a single slot.

use std::ops::Deref;

use llama_cpp_2::context::kv_cache::KvCacheConversionError;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaContextType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::speculative::{MtpSpeculative, MtpSpeculativeParams};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;

use super::speculation::Speculation;
use super::types::TokenId;

/// The sequence llama.cpp's MTP state is bound to (the crate's wrapper fixes it).
const MTP_SEQ: i32 = 0;

/// The engine's llama.cpp context, alone or driving the model's MTP heads. Read access goes
/// straight to the context; whatever changes its cache goes through here.
pub enum Target<'m> {
    Plain(LlamaContext<'m>),
    Mtp {
        heads: Box<MtpSpeculative<'m>>,
        /// A guess was made and not yet settled (llama.cpp refuses the next guess until then).
        pending: bool,
    },
}

/// How many MTP layers the GGUF says the model has (`<arch>.nextn_predict_layers`).
pub fn mtp_layers(model: &LlamaModel) -> u32 {
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    super::meta_u32(model, &format!("{arch}.nextn_predict_layers"))
}

/// The MTP context's parameters, from the model's context's. As llama-server: as many tokens,
/// and no recurrent-state copies.
pub fn heads_params(params: &LlamaContextParams) -> LlamaContextParams {
    params
        .clone()
        .with_context_type(LlamaContextType::Mtp)
        .with_n_rs_seq(0)
}

impl<'m> Target<'m> {
    /// The engine's context, driving the model's MTP heads when `heads` (the model's context
    /// parameters) is given. A failed MTP set-up is logged and leaves a plain context.
    pub fn new(
        model: &'m LlamaModel,
        backend: &LlamaBackend,
        ctx: LlamaContext<'m>,
        heads: Option<LlamaContextParams>,
        speculation: &Speculation,
    ) -> Result<Self, String> {
        let Some(params) = heads else {
            return Ok(Self::Plain(ctx));
        };
        match Self::with_mtp(model, backend, ctx, params, speculation) {
            Ok(target) => Ok(target),
            Err((why, ctx)) => {
                tracing::warn!(reason = %why, "MTP heads not used");
                ctx.map(Self::Plain)
                    .ok_or_else(|| format!("context lost setting up MTP heads: {why}"))
            }
        }
    }

    /// Sets up MTP drafting over `ctx` (made from `params`). When llama.cpp cannot, says why
    /// and gives back a plain context, made again if the failed set-up consumed it.
    fn with_mtp(
        model: &'m LlamaModel,
        backend: &LlamaBackend,
        ctx: LlamaContext<'m>,
        params: LlamaContextParams,
        speculation: &Speculation,
    ) -> Result<Self, (String, Option<LlamaContext<'m>>)> {
        let draft = match model.new_context(backend, heads_params(&params)) {
            Ok(draft) => draft,
            Err(e) => return Err((format!("MTP context: {e}"), Some(ctx))),
        };
        let heads = MtpSpeculativeParams {
            n_max: speculation.draft_max.max(1) as i32,
            n_min: speculation.draft_min as i32,
            p_min: speculation.draft_p_min,
        };
        match MtpSpeculative::new(ctx, draft, heads) {
            Ok(heads) => Ok(Self::Mtp {
                heads: Box::new(heads),
                pending: false,
            }),
            Err(e) => Err((e.to_string(), model.new_context(backend, params).ok())),
        }
    }

    /// Decodes `batch`, then lets the MTP heads read the hidden states it produced (their
    /// cache follows the model's). A failure there only costs guesses, never output.
    pub fn decode(&mut self, batch: &mut LlamaBatch<'_>) -> Result<(), DecodeError> {
        match self {
            Self::Plain(ctx) => ctx.decode(batch),
            Self::Mtp { heads, .. } => {
                heads.target_context_mut().decode(batch)?;
                if let Err(e) = heads.process(batch) {
                    tracing::debug!(error = %e, "MTP heads could not read the batch");
                }
                Ok(())
            }
        }
    }

    /// Removes positions `[p0, p1)` of `seq` from the cache, the MTP heads' cache too.
    pub fn seq_rm(
        &mut self,
        seq: i32,
        p0: Option<u32>,
        p1: Option<u32>,
    ) -> Result<(), KvCacheConversionError> {
        match self {
            Self::Plain(ctx) => ctx.kv_cache_seq_rm(seq, p0, p1),
            Self::Mtp { heads, .. } => {
                heads.target_context_mut().kv_cache_seq_rm(seq, p0, p1)?;
                let _ = heads.draft_context_mut().kv_cache_seq_rm(seq, p0, p1);
                Ok(())
            }
        }
    }

    /// Shifts positions `[p0, p1)` of `seq` by `delta` (context shift), in both caches.
    pub fn seq_add(
        &mut self,
        seq: i32,
        p0: Option<u32>,
        p1: Option<u32>,
        delta: i32,
    ) -> Result<(), KvCacheConversionError> {
        match self {
            Self::Plain(ctx) => ctx.kv_cache_seq_add(seq, p0, p1, delta),
            Self::Mtp { heads, .. } => {
                heads
                    .target_context_mut()
                    .kv_cache_seq_add(seq, p0, p1, delta)?;
                heads
                    .draft_context_mut()
                    .kv_cache_seq_add(seq, p0, p1, delta)
            }
        }
    }

    /// A request's prompt is decoded and it starts generating in `seq`.
    pub fn begin(&mut self, seq: i32, prompt: &[TokenId]) {
        if let Self::Mtp { heads, pending } = self {
            if seq == MTP_SEQ {
                *pending = false;
                if let Err(e) = heads.begin(&tokens(prompt)) {
                    tracing::debug!(error = %e, "MTP heads could not start");
                }
            }
        }
    }

    /// Up to `max` guesses from the MTP heads of what follows `last`, the token at `pos` of
    /// `seq` not yet decoded. Empty without heads or when they are unsure (`draft_p_min`).
    pub fn draft(
        &mut self,
        seq: i32,
        pos: usize,
        last: TokenId,
        history: &[TokenId],
        max: usize,
    ) -> Vec<TokenId> {
        let Self::Mtp { heads, pending } = self else {
            return Vec::new();
        };
        if seq != MTP_SEQ || max == 0 || *pending {
            return Vec::new();
        }
        let Ok(pos_i32) = i32::try_from(pos) else {
            return Vec::new();
        };
        let mut draft = match heads.draft(pos_i32, LlamaToken(last), &tokens(history)) {
            Ok(draft) => draft,
            Err(e) => {
                tracing::debug!(error = %e, "MTP heads made no guess");
                return Vec::new();
            }
        };
        // Guessing wrote the guesses into the heads' cache; the model's decode of them writes
        // them again (as llama-server, which drops them here too).
        let _ = heads
            .draft_context_mut()
            .kv_cache_seq_rm(seq, u32::try_from(pos).ok(), None);
        *pending = !draft.is_empty();
        draft.truncate(max);
        draft.into_iter().map(|t| t.0).collect()
    }

    /// The model checked the last guesses and took `accepted` of them.
    pub fn accept(&mut self, accepted: usize) {
        if let Self::Mtp { heads, pending } = self {
            if std::mem::take(pending) {
                let n = u16::try_from(accepted).unwrap_or(u16::MAX);
                if let Err(e) = heads.accept(n) {
                    tracing::debug!(error = %e, "MTP heads refused the verdict");
                }
            }
        }
    }
}

impl<'m> Deref for Target<'m> {
    type Target = LlamaContext<'m>;

    fn deref(&self) -> &LlamaContext<'m> {
        match self {
            Self::Plain(ctx) => ctx,
            Self::Mtp { heads, .. } => heads.target_context(),
        }
    }
}

fn tokens(ids: &[TokenId]) -> Vec<LlamaToken> {
    ids.iter().map(|&t| LlamaToken(t)).collect()
}
