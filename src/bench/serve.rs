//! `paddock bench serve`: the serving benchmark, measured over HTTP as a client sees it, against
//! any OpenAI-compatible server (Paddock, llama-server, ...).
//!
//! - **Concurrency sweep**: at each client count `c`, `rounds` waves of `c` simultaneous streamed
//!   chat completions, each with its own prompt of about `prompt_tokens` tokens (a random nonce
//!   first, so no request reuses another's cache) and exactly `max_tokens` generated
//!   (`ignore_eos`, temperature 0). Per row: time to first token (TTFT), inter-token latency
//!   (ITL: the gaps between content chunks), decode tokens/s per stream (completion tokens after
//!   the first ÷ first-to-last chunk), and aggregate decode tokens/s (the same tokens of every
//!   stream of a wave ÷ the first chunk of any stream to the last of any; mean over waves).
//! - **Agent loop**: a conversation of `agent_turns` turns, each resending the whole
//!   conversation plus the assistant's reply and a new user message (a tool result) of about
//!   `agent_turn_tokens` tokens, as coding agents do. Turn N's TTFT (warm: the server may reuse
//!   the shared prefix) is compared with the TTFT of a cold prompt of the same length: the same
//!   messages behind a different nonce, sent after the whole conversation so it never evicts it.
//!
//! Token counts come from the stream's `usage` (`stream_options.include_usage`); a chunk may
//! carry no text (a token that renders as nothing), so chunks are only used for timing. A chunk
//! is timed when the bytes carrying it are read; chunks that arrive in one read share a time
//! (a 0 ms gap), as they would for any client.

mod prompts;
mod report;
mod stream;

use std::net::SocketAddr;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Settings;
use crate::App;

use prompts::{lines_for, nonce, system, task, tool_result, user, GUESS_TOKENS_PER_LINE};
pub use report::{csv, markdown};
use stream::{Client, Timed};

/// What to measure, and where.
#[derive(Debug, Clone)]
pub struct ServeBenchConfig {
    /// Base URL of the server, `http://host:port` (a trailing `/v1` is accepted).
    pub url: String,
    /// Sent as `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// The `model` of every request; default: the first `GET /v1/models` lists.
    pub model: Option<String>,
    /// Concurrent client counts of the sweep; empty skips it.
    pub clients: Vec<u32>,
    /// Tokens generated per sweep request (`ignore_eos`, so exactly this many).
    pub max_tokens: u32,
    /// Approximate prompt length of sweep requests and of the agent loop's first turn.
    pub prompt_tokens: u32,
    /// Waves per client count, conversations of the agent loop.
    pub rounds: u32,
    /// Turns of the agent loop; 0 skips it.
    pub agent_turns: u32,
    /// Approximate length of the user message (tool result) each later turn adds.
    pub agent_turn_tokens: u32,
    /// Tokens the assistant generates per agent turn.
    pub agent_reply_tokens: u32,
    /// Limit on each whole request, stream included.
    pub request_timeout: Duration,
}

impl Default for ServeBenchConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            api_key: None,
            model: None,
            clients: vec![1, 2, 4, 8],
            max_tokens: 128,
            prompt_tokens: 512,
            rounds: 1,
            agent_turns: 4,
            agent_turn_tokens: 256,
            agent_reply_tokens: 32,
            request_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeBenchError {
    #[error("invalid serving benchmark settings: {0}")]
    Config(String),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} did not finish within {secs:.0} s (request timeout)")]
    Timeout { url: String, secs: f64 },
    #[error("{url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("unexpected answer from {url}: {reason}")]
    Stream { url: String, reason: String },
    #[error("{0}")]
    NoModel(String),
    #[error("starting Paddock for the benchmark: {0}")]
    Start(String),
}

/// Mean and percentiles of a set of samples, in milliseconds; NaN (JSON `null`) when empty.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
}

impl Summary {
    fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            mean: mean(&sorted),
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
        }
    }
}

/// One streamed request of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSample {
    pub wave: u32,
    pub ttft_ms: f64,
    /// Request sent to last chunk.
    pub latency_ms: f64,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: u32,
    pub cached_tokens: Option<u32>,
    /// Completion tokens after the first ÷ first to last content chunk; None below 2 tokens.
    pub decode_tps: Option<f64>,
}

/// One client count of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencyRow {
    pub clients: u32,
    /// Requests that completed.
    pub requests: u32,
    pub errors: u32,
    pub first_error: Option<String>,
    /// Mean prompt tokens per request (server's count).
    pub prompt_tokens: f64,
    pub completion_tokens: u64,
    pub ttft_ms: Summary,
    pub itl_ms: Summary,
    /// Mean over streams of each stream's decode tokens/s.
    pub stream_tps: f64,
    /// Mean over waves of the wave's aggregate decode tokens/s.
    pub aggregate_tps: f64,
    pub samples: Vec<StreamSample>,
}

/// Turn N of the agent loop, means over rounds.
#[derive(Debug, Clone, Serialize)]
pub struct AgentTurn {
    pub turn: u32,
    /// Prompt tokens of the warm request (the conversation so far), server's count.
    pub prompt_tokens: f64,
    /// `cached_tokens` of the warm request, when the server reports it.
    pub cached_tokens: Option<f64>,
    pub ttft_warm_ms: f64,
    pub cold_prompt_tokens: f64,
    pub cold_cached_tokens: Option<f64>,
    pub ttft_cold_ms: f64,
    pub warm_over_cold: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServeReport {
    pub url: String,
    pub model: String,
    /// Context and slots as the server reports them (Paddock's `/v1/models` `meta`).
    pub server_n_ctx: Option<u32>,
    pub server_n_parallel: Option<u32>,
    pub max_tokens: u32,
    pub prompt_tokens: u32,
    pub rounds: u32,
    pub agent_turn_tokens: u32,
    pub agent_reply_tokens: u32,
    pub concurrency: Vec<ConcurrencyRow>,
    pub agent: Vec<AgentTurn>,
    /// Whether the server reports `usage.prompt_tokens_details.cached_tokens`.
    pub cached_tokens_reported: bool,
    /// Anything that makes the numbers mean less than they seem.
    pub notes: Vec<String>,
}

/// Runs the sweep, then the agent loop; `progress(done, total)` after every request.
pub async fn run(
    cfg: &ServeBenchConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<ServeReport, ServeBenchError> {
    validate(cfg)?;
    let client = Client::new(&cfg.url, cfg.api_key.clone(), cfg.request_timeout)?;
    let models = client.models().await?;
    let listed = |id: &str| models.iter().find(|m| m.id == id);
    let model = match &cfg.model {
        Some(id) => id.clone(),
        None => models.first().map(|m| m.id.clone()).ok_or_else(|| {
            ServeBenchError::NoModel(format!(
                "{}/v1/models lists no model; name one with --model",
                client.base()
            ))
        })?,
    };
    let meta = listed(&model).or(models.first());
    let bench = Bench {
        client,
        model: model.clone(),
    };

    let total = 1
        + u64::from(cfg.rounds) * cfg.clients.iter().map(|&c| u64::from(c)).sum::<u64>()
        + u64::from(cfg.rounds) * u64::from(cfg.agent_turns) * 2;
    let mut done = 0;
    let mut tick = || {
        done += 1;
        progress(done, total);
    };

    // Warm-up (weights paged in, first allocations), which also learns this tokenizer's
    // tokens per filler line so that prompts come out near the asked length.
    let guess = lines_for(cfg.prompt_tokens, GUESS_TOKENS_PER_LINE);
    let warm_up = bench
        .stream(
            vec![system(&nonce()), user(&task(guess, 0))],
            2.min(cfg.max_tokens),
        )
        .await?;
    tick();
    let per_line = match warm_up.usage {
        Some(u) if u.prompt_tokens > 0 => f64::from(u.prompt_tokens) / guess as f64,
        _ => GUESS_TOKENS_PER_LINE,
    };

    let mut notes = Vec::new();
    let mut cached_reported = warm_up.usage.is_some_and(|u| u.cached_tokens.is_some());
    let mut usage_missing = warm_up.usage.is_none();

    let mut concurrency = Vec::new();
    for &clients in &cfg.clients {
        let mut waves = Vec::new();
        for _ in 0..cfg.rounds {
            let mut pending: FuturesUnordered<_> = (0..clients)
                .map(|_| {
                    let messages = vec![
                        system(&nonce()),
                        user(&task(lines_for(cfg.prompt_tokens, per_line), 0)),
                    ];
                    bench.stream(messages, cfg.max_tokens)
                })
                .collect();
            let mut wave = Vec::new();
            while let Some(result) = pending.next().await {
                tick();
                wave.push(result);
            }
            waves.push(wave);
        }
        let row = row(clients, waves);
        cached_reported |= row.samples.iter().any(|s| s.cached_tokens.is_some());
        usage_missing |= row.samples.iter().any(|s| s.prompt_tokens.is_none());
        let off = row
            .samples
            .iter()
            .filter(|s| s.completion_tokens != cfg.max_tokens)
            .count();
        if off > 0 {
            notes.push(format!(
                "{clients} clients: {off} stream(s) did not produce exactly {} completion tokens \
                 (does the server honour ignore_eos?)",
                cfg.max_tokens
            ));
        }
        if row.errors > 0 {
            notes.push(format!(
                "{clients} clients: {} request(s) failed, first: {}",
                row.errors,
                row.first_error.as_deref().unwrap_or("?")
            ));
        }
        concurrency.push(row);
    }

    let mut rounds = Vec::new();
    for _ in 0..cfg.rounds {
        rounds.push(bench.agent_loop(cfg, per_line, &mut tick).await?);
    }
    let agent = agent_turns(&rounds);
    cached_reported |= rounds
        .iter()
        .flatten()
        .any(|(w, _)| w.usage.is_some_and(|u| u.cached_tokens.is_some()));
    usage_missing |= rounds.iter().flatten().any(|(w, _)| w.usage.is_none());

    if !cached_reported {
        notes.push(
            "the server does not report usage.prompt_tokens_details.cached_tokens".to_string(),
        );
    }
    if usage_missing {
        notes.push(
            "the server sent no usage in some streams: their token counts are content chunks"
                .to_string(),
        );
    }
    if let Some(slots) = meta.and_then(|m| m.n_parallel) {
        if let Some(&most) = cfg.clients.iter().filter(|&&c| c > slots).max() {
            notes.push(format!(
                "the server has {slots} slot(s): up to {most} clients, the rest wait in its queue \
                 (their TTFT includes the wait)"
            ));
        }
    }

    Ok(ServeReport {
        url: bench.client.base().to_string(),
        model,
        server_n_ctx: meta.and_then(|m| m.n_ctx),
        server_n_parallel: meta.and_then(|m| m.n_parallel),
        max_tokens: cfg.max_tokens,
        prompt_tokens: cfg.prompt_tokens,
        rounds: cfg.rounds,
        agent_turn_tokens: cfg.agent_turn_tokens,
        agent_reply_tokens: cfg.agent_reply_tokens,
        concurrency,
        agent,
        cached_tokens_reported: cached_reported,
        notes,
    })
}

/// Starts Paddock in this process on `127.0.0.1:0` with `settings` (`paddock bench serve -m`),
/// benchmarks it, and stops it.
pub async fn run_in_process(
    mut settings: Settings,
    cfg: &ServeBenchConfig,
    progress: impl FnMut(u64, u64),
) -> Result<ServeReport, ServeBenchError> {
    settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let api_key = settings.api_key.clone();
    let app = App::start(settings)
        .await
        .map_err(|e| ServeBenchError::Start(e.to_string()))?;
    let cfg = ServeBenchConfig {
        url: format!("http://{}", app.addr()),
        api_key: api_key.or_else(|| cfg.api_key.clone()),
        ..cfg.clone()
    };
    let report = run(&cfg, progress).await;
    app.stop(Duration::from_secs(5)).await;
    report
}

fn validate(cfg: &ServeBenchConfig) -> Result<(), ServeBenchError> {
    let bad = |m: &str| Err(ServeBenchError::Config(m.to_string()));
    if cfg.clients.contains(&0) {
        return bad("client counts must be at least 1");
    }
    if cfg.clients.is_empty() && cfg.agent_turns == 0 {
        return bad("nothing to measure: no client counts and no agent turns");
    }
    if cfg.max_tokens < 2 || cfg.agent_reply_tokens < 1 {
        return bad(
            "max_tokens must be at least 2 (ITL needs two tokens) and the agent reply at least 1",
        );
    }
    if cfg.rounds == 0 || cfg.prompt_tokens == 0 {
        return bad("rounds and prompt_tokens must be at least 1");
    }
    if cfg.request_timeout.is_zero() {
        return bad("the request timeout must be above 0");
    }
    Ok(())
}

struct Bench {
    client: Client,
    model: String,
}

impl Bench {
    async fn stream(
        &self,
        messages: Vec<Value>,
        max_tokens: u32,
    ) -> Result<Timed, ServeBenchError> {
        self.client
            .stream_chat(json!({
                "model": self.model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": 0,
                "ignore_eos": true,
            }))
            .await
    }

    /// One conversation: every warm turn, then a cold twin of each. Returns (warm, cold) per turn.
    async fn agent_loop(
        &self,
        cfg: &ServeBenchConfig,
        per_line: f64,
        tick: &mut impl FnMut(),
    ) -> Result<Vec<(Timed, Timed)>, ServeBenchError> {
        let mut messages = vec![
            system(&nonce()),
            user(&task(lines_for(cfg.prompt_tokens, per_line), 0)),
        ];
        let mut warm: Vec<(Vec<Value>, Timed)> = Vec::new();
        for turn in 0..cfg.agent_turns {
            if let Some((_, previous)) = warm.last() {
                messages.push(json!({"role": "assistant", "content": previous.text}));
                messages.push(user(&tool_result(
                    lines_for(cfg.agent_turn_tokens, per_line),
                    turn,
                )));
            }
            let timed = self
                .stream(messages.clone(), cfg.agent_reply_tokens)
                .await?;
            tick();
            warm.push((messages.clone(), timed));
        }
        let mut turns = Vec::new();
        for (mut messages, warm) in warm {
            // The same conversation behind another nonce: same length, no shared prefix.
            messages[0] = system(&nonce());
            let cold = self.stream(messages, cfg.agent_reply_tokens).await?;
            tick();
            turns.push((warm, cold));
        }
        Ok(turns)
    }
}

fn row(clients: u32, waves: Vec<Vec<Result<Timed, ServeBenchError>>>) -> ConcurrencyRow {
    let mut samples = Vec::new();
    let mut itl = Vec::new();
    let mut aggregate = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for (wave, results) in waves.into_iter().enumerate() {
        let mut ok = Vec::new();
        for result in results {
            match result {
                Ok(t) => ok.push(t),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        for t in &ok {
            itl.extend(t.chunks.windows(2).map(|w| ms(w[1] - w[0])));
            let n = t.completion_tokens();
            let decode = (t.last() - t.first()).as_secs_f64();
            samples.push(StreamSample {
                wave: wave as u32,
                ttft_ms: ms(t.first() - t.sent),
                latency_ms: ms(t.last() - t.sent),
                prompt_tokens: t.usage.map(|u| u.prompt_tokens),
                completion_tokens: n,
                cached_tokens: t.usage.and_then(|u| u.cached_tokens),
                decode_tps: (n > 1 && decode > 0.0).then(|| f64::from(n - 1) / decode),
            });
        }
        let first = ok.iter().map(Timed::first).min();
        let last = ok.iter().map(Timed::last).max();
        if let (Some(first), Some(last)) = (first, last) {
            let span = (last - first).as_secs_f64();
            let tokens: u32 = ok
                .iter()
                .map(|t| t.completion_tokens().saturating_sub(1))
                .sum();
            if span > 0.0 {
                aggregate.push(f64::from(tokens) / span);
            }
        }
    }
    let ttft: Vec<f64> = samples.iter().map(|s| s.ttft_ms).collect();
    let prompt: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.prompt_tokens.map(f64::from))
        .collect();
    let tps: Vec<f64> = samples.iter().filter_map(|s| s.decode_tps).collect();
    ConcurrencyRow {
        clients,
        requests: samples.len() as u32,
        errors,
        first_error,
        prompt_tokens: mean(&prompt),
        completion_tokens: samples.iter().map(|s| u64::from(s.completion_tokens)).sum(),
        ttft_ms: Summary::of(&ttft),
        itl_ms: Summary::of(&itl),
        stream_tps: mean(&tps),
        aggregate_tps: mean(&aggregate),
        samples,
    }
}

fn agent_turns(rounds: &[Vec<(Timed, Timed)>]) -> Vec<AgentTurn> {
    let turns = rounds.first().map_or(0, Vec::len);
    (0..turns)
        .map(|i| {
            let pairs: Vec<&(Timed, Timed)> = rounds.iter().map(|r| &r[i]).collect();
            let avg = |f: &dyn Fn(&(Timed, Timed)) -> f64| {
                mean(&pairs.iter().map(|p| f(p)).collect::<Vec<_>>())
            };
            let tokens = |t: &Timed| t.usage.map_or(f64::NAN, |u| f64::from(u.prompt_tokens));
            let cached = |pick: &dyn Fn(&(Timed, Timed)) -> &Timed| {
                let values: Option<Vec<f64>> = pairs
                    .iter()
                    .map(|p| pick(p).usage?.cached_tokens.map(f64::from))
                    .collect();
                values.map(|v| mean(&v))
            };
            let warm = avg(&|(w, _)| ms(w.first() - w.sent));
            let cold = avg(&|(_, c)| ms(c.first() - c.sent));
            AgentTurn {
                turn: i as u32 + 1,
                prompt_tokens: avg(&|(w, _)| tokens(w)),
                cached_tokens: cached(&|(w, _)| w),
                ttft_warm_ms: warm,
                cold_prompt_tokens: avg(&|(_, c)| tokens(c)),
                cold_cached_tokens: cached(&|(_, c)| c),
                ttft_cold_ms: cold,
                warm_over_cold: warm / cold,
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Linear interpolation between closest ranks (numpy's default) on sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = p / 100.0 * (n - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert!((percentile(&s, 95.0) - 3.85).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
        let sum = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((sum.mean, sum.p50), (2.0, 2.0));
    }

    fn timed(sent: Instant, chunks_ms: &[u64], completion: u32) -> Timed {
        Timed {
            sent,
            chunks: chunks_ms
                .iter()
                .map(|&m| sent + Duration::from_millis(m))
                .collect(),
            text: String::new(),
            usage: Some(stream::Usage {
                prompt_tokens: 10,
                completion_tokens: completion,
                cached_tokens: Some(0),
            }),
        }
    }

    #[test]
    fn rows_count_tokens_from_usage_and_span_every_stream() {
        let t0 = Instant::now();
        // Stream a: 5 tokens in 4 chunks (one empty-text token), first at 100 ms, last at 400.
        let a = timed(t0, &[100, 200, 300, 400], 5);
        // Stream b: 3 tokens, first at 200 ms, last at 600.
        let b = timed(t0, &[200, 400, 600], 3);
        let err = ServeBenchError::Timeout {
            url: "u".into(),
            secs: 1.0,
        };
        let row = row(2, vec![vec![Ok(a), Ok(b), Err(err)]]);
        assert_eq!((row.requests, row.errors, row.completion_tokens), (2, 1, 8));
        assert!(row.first_error.unwrap().contains("timeout"));
        assert_eq!(row.ttft_ms.mean, 150.0);
        // (5-1) + (3-1) tokens over 100..600 ms.
        assert!((row.aggregate_tps - 6.0 / 0.5).abs() < 1e-9);
        // a: 4 / 0.3 s, b: 2 / 0.4 s.
        assert!((row.stream_tps - (4.0 / 0.3 + 2.0 / 0.4) / 2.0).abs() < 1e-9);
        // gaps: 100,100,100,200,200.
        assert!((row.itl_ms.mean - 140.0).abs() < 1e-9);
        assert!((row.itl_ms.p50 - 100.0).abs() < 1e-9);
    }

    #[test]
    fn bad_settings_are_refused() {
        let cfg = |edit: fn(&mut ServeBenchConfig)| {
            let mut c = ServeBenchConfig::default();
            edit(&mut c);
            validate(&c)
        };
        assert!(cfg(|_| {}).is_ok());
        assert!(cfg(|c| c.clients = vec![0]).is_err());
        assert!(cfg(|c| c.max_tokens = 1).is_err());
        assert!(cfg(|c| {
            c.clients.clear();
            c.agent_turns = 0
        })
        .is_err());
    }
}
