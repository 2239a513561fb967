//! Raw throughput of the loaded build, measured exactly as llama.cpp's `llama-bench` does so
//! the numbers compare: pp = one prompt of `n` random tokens decoded in `n_batch` chunks,
//! tg = `n` single-token decodes. Runs on the calling thread with a context of its own.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::{backend, EngineError, EngineSpec};

/// One llama-bench test: `n_prompt` tokens of prompt processing or `n_gen` of generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTest {
    pub n_prompt: u32,
    pub n_gen: u32,
}

/// Loads the model once and times tests against it.
pub struct Probe {
    model: LlamaModel,
    spec: EngineSpec,
}

impl Probe {
    pub fn load(spec: EngineSpec) -> Result<Self, EngineError> {
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(spec.n_gpu_layers)
            .with_use_mlock(spec.mlock);
        let model =
            LlamaModel::load_from_file(backend()?, &spec.model_path, &params).map_err(|e| {
                EngineError::Load {
                    path: spec.model_path.clone(),
                    reason: e.to_string(),
                }
            })?;
        Ok(Self { model, spec })
    }

    pub fn n_ctx_train(&self) -> u32 {
        self.model.n_ctx_train()
    }

    /// Runs one warm-up, then `reps` timed runs, each on an empty cache. `on_rep` is called
    /// after each run (for progress).
    pub fn run(
        &self,
        test: ProbeTest,
        reps: u32,
        mut on_rep: impl FnMut(),
    ) -> Result<Vec<Duration>, EngineError> {
        let mut ctx = self.context(test.n_prompt + test.n_gen)?;
        let n_vocab = self.model.n_vocab();
        let bos = self.model.vocab().bos();
        let mut rng = rand::rng();
        let mut random = move || LlamaToken(rand::Rng::random_range(&mut rng, 0..n_vocab));
        if test.n_prompt > 0 {
            self.prompt(&mut ctx, test.n_prompt, bos, &mut random)?;
        }
        if test.n_gen > 0 {
            self.generate(&mut ctx, 1, bos, &mut random)?;
        }
        let mut times = Vec::new();
        for _ in 0..reps {
            ctx.clear_kv_cache();
            let start = Instant::now();
            if test.n_prompt > 0 {
                self.prompt(&mut ctx, test.n_prompt, bos, &mut random)?;
            }
            if test.n_gen > 0 {
                self.generate(&mut ctx, test.n_gen, bos, &mut random)?;
            }
            ctx.synchronize();
            times.push(start.elapsed());
            on_rep();
        }
        Ok(times)
    }

    fn context(&self, n_ctx: u32) -> Result<LlamaContext<'_>, EngineError> {
        let s = &self.spec;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx.max(1)))
            .with_n_batch(s.n_batch)
            .with_n_ubatch(s.n_ubatch.min(s.n_batch))
            .with_n_threads(s.n_threads)
            .with_n_threads_batch(s.n_threads_batch)
            .with_swa_full(false) // as llama-bench
            .with_flash_attention_policy(s.flash_attn.to_llama())
            .with_type_k(s.cache_type_k.to_llama())
            .with_type_v(s.cache_type_v.to_llama());
        self.model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Context(e.to_string()))
    }

    /// `n` prompt tokens, BOS first where the model wants one, in `n_batch` chunks.
    fn prompt(
        &self,
        ctx: &mut LlamaContext<'_>,
        n: u32,
        bos: LlamaToken,
        random: &mut impl FnMut() -> LlamaToken,
    ) -> Result<(), EngineError> {
        let add_bos = self.model.vocab().should_add_bos();
        let tokens: Vec<LlamaToken> = (0..n)
            .map(|i| if i == 0 && add_bos { bos } else { random() })
            .collect();
        for chunk in tokens.chunks(self.spec.n_batch as usize) {
            let mut batch =
                LlamaBatch::get_one(chunk).map_err(|e| EngineError::Decode(e.to_string()))?;
            ctx.decode(&mut batch)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        Ok(())
    }

    /// `n` single-token decodes of random tokens, as llama-bench's tg test.
    fn generate(
        &self,
        ctx: &mut LlamaContext<'_>,
        n: u32,
        bos: LlamaToken,
        random: &mut impl FnMut() -> LlamaToken,
    ) -> Result<(), EngineError> {
        let mut token = if self.model.vocab().should_add_bos() {
            bos
        } else {
            random()
        };
        for _ in 0..n {
            let one = [token];
            let mut batch =
                LlamaBatch::get_one(&one).map_err(|e| EngineError::Decode(e.to_string()))?;
            ctx.decode(&mut batch)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
            token = random();
        }
        Ok(())
    }
}
