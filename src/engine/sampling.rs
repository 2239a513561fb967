//! Checking sampling parameters, and the llama.cpp sampler chain built from them.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use super::error::EngineError;
use super::types::{Grammar, SamplingParams};

/// One request's token picker: the sampler chain, and the grammar kept beside it. The grammar
/// is not part of the chain because the chain also sees the prompt (penalties count prompt
/// tokens) and a grammar fed the prompt would reject it.
pub struct TokenSampler {
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
}

impl TokenSampler {
    /// Engine thread only. The grammar was checked by [`check_grammar`] at submit time.
    pub fn new(
        params: &SamplingParams,
        model: &LlamaModel,
        n_ctx: u32,
        prompt: &[i32],
    ) -> Result<Self, EngineError> {
        let mut chain = params.build_chain(model.n_vocab(), n_ctx);
        if params.has_penalties() {
            chain.accept_many(prompt.iter().map(|&t| LlamaToken(t)));
        }
        let grammar = params
            .grammar
            .as_ref()
            .map(|g| grammar_sampler(model, g))
            .transpose()?;
        Ok(Self { chain, grammar })
    }

    /// Picks the next token from the logits at batch index `at` and feeds it to every sampler.
    /// `None` when the grammar allows no token at all.
    pub fn sample(&mut self, ctx: &LlamaContext<'_>, at: i32) -> Option<LlamaToken> {
        let Some(grammar) = self.grammar.as_mut() else {
            return Some(self.chain.sample(ctx, at));
        };
        // As llama.cpp's common sampler: checking the grammar over the whole vocabulary costs
        // more than a token's decode on small models, so first sample freely and check only
        // the pick; the full grammar pass runs only when the pick breaks the grammar.
        let mut candidates = ctx.token_data_array_ith(at);
        candidates.apply_sampler(&mut self.chain);
        let picked = candidates.selected_token()?;
        let token = if grammar_allows(grammar, picked) {
            picked
        } else {
            let mut candidates = ctx.token_data_array_ith(at);
            candidates.apply_sampler(grammar);
            candidates.apply_sampler(&mut self.chain);
            candidates.selected_token()?
        };
        // llama.cpp throws when a lazy grammar's trigger text does not fit the grammar;
        // `try_accept` catches that, and the output simply ends there.
        grammar.try_accept(token).ok()?;
        self.chain.accept(token);
        Some(token)
    }
}

fn grammar_allows(grammar: &mut LlamaSampler, token: LlamaToken) -> bool {
    let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
    single.apply_sampler(grammar);
    single.data[0].logit() != f32::NEG_INFINITY
}

/// llama.cpp's JSON-schema-to-GBNF converter (the one behind llama-server's `json_schema`).
pub fn schema_grammar(schema: &serde_json::Value) -> Result<String, String> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| e.to_string())
}

/// Refuses a grammar llama.cpp cannot parse (unknown rules, left recursion, bad triggers),
/// before the request reaches the engine thread.
pub fn check_grammar(model: &LlamaModel, grammar: &Grammar) -> Result<(), EngineError> {
    // llama.cpp's GBNF parser recurses once per parenthesis: a hostile grammar nested deep
    // enough would overflow the stack and take the whole server down.
    if grammar.gbnf.len() > MAX_GRAMMAR_BYTES || nesting_depth(&grammar.gbnf) > MAX_GRAMMAR_DEPTH {
        return Err(EngineError::InvalidRequest {
            param: "grammar",
            message: format!(
                "grammars are limited to {MAX_GRAMMAR_BYTES} bytes and {MAX_GRAMMAR_DEPTH} levels of parentheses"
            ),
        });
    }
    grammar_sampler(model, grammar).map(drop)
}

const MAX_GRAMMAR_BYTES: usize = 1 << 20;
const MAX_GRAMMAR_DEPTH: usize = 128;

/// The deepest parenthesis nesting outside string literals and character classes.
fn nesting_depth(gbnf: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = gbnf.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '[' => {
                let end = if c == '"' { '"' } else { ']' };
                while let Some(inner) = chars.next() {
                    match inner {
                        '\\' => {
                            chars.next();
                        }
                        i if i == end => break,
                        _ => {}
                    }
                }
            }
            '#' => {
                // A comment runs to the end of the line.
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '(' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn grammar_sampler(model: &LlamaModel, grammar: &Grammar) -> Result<LlamaSampler, EngineError> {
    let sampler = if grammar.triggers.is_empty() {
        LlamaSampler::grammar(model, &grammar.gbnf, "root")
    } else {
        LlamaSampler::grammar_lazy_patterns(model, &grammar.gbnf, "root", &grammar.triggers, &[])
    };
    sampler.map_err(|e| EngineError::InvalidRequest {
        param: "grammar",
        message: format!(
            "llama.cpp cannot use this grammar ({e}); see the server log for where it fails"
        ),
    })
}

impl SamplingParams {
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    fn has_penalties(&self) -> bool {
        self.repeat_last_n != 0
            && (self.repeat_penalty != 1.0
                || self.presence_penalty != 0.0
                || self.frequency_penalty != 0.0)
    }

    /// Checks values llama.cpp would assert on or misbehave with. Called before a request
    /// reaches the engine thread, so a bad value is a 400 and never an abort.
    pub fn validate(&self, n_vocab: i32) -> Result<(), EngineError> {
        let bad = |param, message: &str| {
            Err(EngineError::InvalidRequest {
                param,
                message: message.to_string(),
            })
        };
        if !self.temperature.is_finite() {
            return bad("temperature", "must be a finite number");
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad("top_p", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.typical_p) {
            return bad("typical_p", "must be between 0 and 1");
        }
        if self.top_k < 0 {
            return bad("top_k", "must be 0 (disabled) or more");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("repeat_penalty", "must be a number above 0");
        }
        if self.repeat_last_n < -1 {
            return bad("repeat_last_n", "must be -1 (whole context), 0 or more");
        }
        if !(-2.0..=2.0).contains(&self.presence_penalty) {
            return bad("presence_penalty", "must be between -2 and 2");
        }
        if !(-2.0..=2.0).contains(&self.frequency_penalty) {
            return bad("frequency_penalty", "must be between -2 and 2");
        }
        for &(token, bias) in &self.logit_bias {
            if !(0..n_vocab).contains(&token) {
                return Err(EngineError::InvalidRequest {
                    param: "logit_bias",
                    message: format!("token id {token} is not in the vocabulary (0..{n_vocab})"),
                });
            }
            if bias.is_nan() {
                return bad("logit_bias", "biases must be numbers");
            }
        }
        Ok(())
    }

    /// The chain llama-server builds, in its order: bias, penalties, top-k, typical, top-p,
    /// min-p, temperature, then a random draw (or greedy). Engine thread only.
    fn build_chain(&self, n_vocab: i32, n_ctx: u32) -> LlamaSampler {
        let mut chain = Vec::new();
        if !self.logit_bias.is_empty() {
            let biases: Vec<_> = self
                .logit_bias
                .iter()
                .map(|&(token, bias)| LlamaLogitBias::new(LlamaToken(token), bias))
                .collect();
            chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        if self.has_penalties() {
            // -1 means "the whole context", as in llama-server.
            let last_n = if self.repeat_last_n < 0 {
                i32::try_from(n_ctx).unwrap_or(i32::MAX)
            } else {
                self.repeat_last_n
            };
            chain.push(LlamaSampler::penalties(
                n_vocab,
                last_n,
                self.repeat_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.is_greedy() {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.typical_p < 1.0 {
                chain.push(LlamaSampler::typical(self.typical_p, 1));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            if self.min_p > 0.0 {
                chain.push(LlamaSampler::min_p(self.min_p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::dist(self.seed.unwrap_or_else(rand::random)));
        }
        LlamaSampler::chain_simple(chain)
    }
}

/// The log of the softmax denominator: `logit - log_sum_exp(logits)` is a token's
/// log-probability.
pub(super) fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    max + sum.ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_nesting_is_counted_outside_literals_and_comments() {
        assert_eq!(nesting_depth(r#"root ::= ("a" ("b"))"#), 2);
        assert_eq!(nesting_depth(r#"root ::= "(((" [(] # (((("#), 0);
        assert_eq!(nesting_depth(r#"root ::= "\"(" ("x")"#), 1);
        let deep = format!("root ::= {}\"a\"{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(nesting_depth(&deep), 10_000);
    }

    #[test]
    fn defaults_are_valid_and_not_greedy() {
        let p = SamplingParams::default();
        assert!(p.validate(100).is_ok());
        assert!(!p.is_greedy());
    }

    #[test]
    fn rejects_values_llama_cpp_cannot_take() {
        let bad = [
            SamplingParams {
                top_p: 1.5,
                ..Default::default()
            },
            SamplingParams {
                temperature: f32::NAN,
                ..Default::default()
            },
            SamplingParams {
                top_k: -1,
                ..Default::default()
            },
            SamplingParams {
                repeat_penalty: 0.0,
                ..Default::default()
            },
            SamplingParams {
                logit_bias: vec![(100, 1.0)],
                ..Default::default()
            },
            SamplingParams {
                logit_bias: vec![(-1, 1.0)],
                ..Default::default()
            },
        ];
        for p in bad {
            assert!(p.validate(100).is_err(), "{p:?} should be refused");
        }
    }
}
