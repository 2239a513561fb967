//! Raw throughput of the loaded build, measured exactly as llama.cpp's `llama-bench` does so
//! the numbers compare: pp = one prompt of `n` random tokens decoded in `n_batch` chunks,
//! tg = `n` single-token decodes, each after an untimed fill of `n_depth` tokens when asked,
//! with a synchronize after every decode as llama-bench does. Runs on the calling thread with
//! a context of its own.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::{backend, EngineError, EngineSpec};

/// One llama-bench test: `n_prompt` tokens of prompt processing or `n_gen` of generation,
/// after `n_depth` tokens already in the context (llama-bench's `-d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTest {
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
}

/// One timed repetition, with the tokens llama.cpp itself counted as decoded in it (its perf
/// counters): proof that a pp512 run really processed 512 prompt tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSample {
    pub elapsed: Duration,
    pub n_prompt_decoded: u32,
    pub n_gen_decoded: u32,
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

    /// Runs one warm-up, then `reps` timed runs, each on an empty cache (filled to the test's
    /// depth first, untimed). `on_rep` is called after each run and stops the test early by
    /// returning `false` (the samples so far are returned).
    pub fn run(
        &self,
        test: ProbeTest,
        reps: u32,
        mut on_rep: impl FnMut() -> bool,
    ) -> Result<Vec<ProbeSample>, EngineError> {
        let mut ctx = self.context(test.n_depth + test.n_prompt + test.n_gen)?;
        let n_vocab = self.model.n_vocab();
        let mut rng = rand::rng();
        let mut random = move || LlamaToken(rand::Rng::random_range(&mut rng, 0..n_vocab));
        // Warm-up, as llama-bench: one prompt pass and one generated token.
        if test.n_prompt > 0 {
            self.prompt(&mut ctx, test.n_prompt, &mut random)?;
        }
        if test.n_gen > 0 {
            self.generate(&mut ctx, 1, &mut random)?;
        }
        let mut samples = Vec::new();
        for _ in 0..reps {
            empty(&mut ctx)?;
            if test.n_depth > 0 {
                self.prompt(&mut ctx, test.n_depth, &mut random)?;
            }
            ctx.reset_timings();
            let start = Instant::now();
            if test.n_prompt > 0 {
                self.prompt(&mut ctx, test.n_prompt, &mut random)?;
            }
            if test.n_gen > 0 {
                self.generate(&mut ctx, test.n_gen, &mut random)?;
            }
            let elapsed = start.elapsed();
            samples.push(ProbeSample {
                elapsed,
                n_prompt_decoded: counted(test.n_prompt, ctx.timings().n_p_eval()),
                n_gen_decoded: counted(test.n_gen, ctx.timings().n_eval()),
            });
            if !on_rep() {
                break;
            }
        }
        Ok(samples)
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

    /// `n` prompt tokens, BOS first where the model wants one, in `n_batch` chunks, waited for
    /// at the end (llama-bench's test_prompt, also for the depth fill).
    fn prompt(
        &self,
        ctx: &mut LlamaContext<'_>,
        n: u32,
        random: &mut impl FnMut() -> LlamaToken,
    ) -> Result<(), EngineError> {
        let vocab = self.model.vocab();
        let bos = vocab.should_add_bos();
        let tokens: Vec<LlamaToken> = (0..n)
            .map(|i| if i == 0 && bos { vocab.bos() } else { random() })
            .collect();
        for chunk in tokens.chunks(self.spec.n_batch as usize) {
            decode(ctx, chunk)?;
        }
        ctx.synchronize();
        Ok(())
    }

    /// `n` single-token decodes of random tokens, each waited for (llama-bench's test_gen;
    /// llama.cpp books its token counters at the synchronize, one-token batches as generation).
    fn generate(
        &self,
        ctx: &mut LlamaContext<'_>,
        n: u32,
        random: &mut impl FnMut() -> LlamaToken,
    ) -> Result<(), EngineError> {
        let vocab = self.model.vocab();
        let mut token = if vocab.should_add_bos() {
            vocab.bos()
        } else {
            random()
        };
        for _ in 0..n {
            decode(ctx, &[token])?;
            ctx.synchronize();
            token = random();
        }
        Ok(())
    }
}

/// Frees every cell of the KV cache and leaves the K/V buffers' bytes as they are, as llama-bench
/// does between repetitions (`llama_memory_clear(mem, false)`). The crate's `clear_kv_cache`
/// also zeroes the buffers (`data = true`), and on an H100 that made the MoE's tg1024 7 % slower
/// than llama-bench's once pp8192 had run in the process (docs/gpu.md, issue 9).
fn empty(ctx: &mut LlamaContext<'_>) -> Result<(), EngineError> {
    match ctx.clear_kv_cache_seq(None, None, None) {
        Ok(true) => Ok(()),
        Ok(false) => Err(EngineError::Context(
            "the KV cache could not be emptied".into(),
        )),
        Err(e) => Err(EngineError::Context(e.to_string())),
    }
}

fn decode(ctx: &mut LlamaContext<'_>, tokens: &[LlamaToken]) -> Result<(), EngineError> {
    let mut batch = LlamaBatch::get_one(tokens).map_err(|e| EngineError::Decode(e.to_string()))?;
    ctx.decode(&mut batch)
        .map_err(|e| EngineError::Decode(e.to_string()))
}

/// llama.cpp reports at least 1 for an empty counter; a test that asked for none decoded none.
fn counted(asked: u32, reported: i32) -> u32 {
    if asked == 0 {
        0
    } else {
        u32::try_from(reported).unwrap_or(0)
    }
}
