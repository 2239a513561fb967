use std::time::{Duration, Instant};

use paddock::engine::{
    Completion, EngineError, EngineHandle, Event, FinishReason, Request, SamplingParams,
};

use crate::common;

pub fn engine(
    parallel: u32,
    ctx: u32,
    edit: impl FnOnce(&mut paddock::config::RawSettings),
) -> EngineHandle {
    let settings = common::settings(|raw| {
        raw.engine.parallel = Some(parallel);
        raw.engine.ctx_size = Some(ctx);
        edit(raw);
    });
    EngineHandle::spawn(settings.engine).expect("SmolLM2 loads")
}

pub fn greedy(engine: &EngineHandle, prompt: &str, max_tokens: u32) -> Request {
    Request {
        prompt: engine.tokenize(prompt, true),
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        max_tokens: Some(max_tokens),
        stop: Vec::new(),
        logprobs: None,
        ignore_eos: false,
        prediction: Vec::new(),
        draft_max: None,
        span: tracing::Span::none(),
    }
}

/// ChatML, as SmolLM2's template renders one user turn.
pub fn chatml(user: &str) -> String {
    format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
}

pub fn wait(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> (String, Completion) {
    let mut text = String::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Token(t) => text.push_str(&t.text),
            Event::Done(done) => return (text, done),
            Event::Error(e) => panic!("request failed: {e}"),
        }
    }
    panic!("event stream ended without Done");
}

/// Polls the slots until `ok` holds; bounded so a broken engine fails instead of hanging.
fn wait_for_slots(engine: &EngineHandle, ok: impl Fn(&[paddock::engine::SlotStatus]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let slots = engine.slots().unwrap();
        if ok(&slots) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "slots never reached the expected state: {slots:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const PROMPTS: [&str; 4] = [
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "What is the capital of France?",
    "Explain what a hash map is in one sentence.",
];

#[test]
fn concurrent_greedy_requests_match_the_same_requests_run_alone() {
    let engine = engine(4, 4096, |_| {});
    let alone: Vec<_> = PROMPTS
        .iter()
        .map(|p| wait(engine.submit(greedy(&engine, &chatml(p), 48)).unwrap()))
        .collect();
    for (text, done) in &alone {
        assert!(!text.trim().is_empty(), "empty answer: {done:?}");
    }
    // All four at once: their tokens share every decode batch.
    let receivers: Vec<_> = PROMPTS
        .iter()
        .map(|p| engine.submit(greedy(&engine, &chatml(p), 48)).unwrap())
        .collect();
    let together: Vec<_> = receivers.into_iter().map(wait).collect();
    // Each answer is its own prompt's: a slot mixed up with another would start elsewhere.
    // Not always equal to the end: llama.cpp's CPU kernels sum in another order for another
    // batch shape, and a near-tie can flip late in an answer (CI once saw "making it
    // suitable" for "making it ideal" after eleven words, and once "3. 3" end where the
    // batched run went on with "These are"). So compare the first eight words, or fewer
    // where an answer ends sooner.
    let mut equal = 0;
    for (i, ((a, _), (b, _))) in alone.iter().zip(&together).enumerate() {
        let (a_words, b_words): (Vec<_>, Vec<_>) = (
            a.split_whitespace().collect(),
            b.split_whitespace().collect(),
        );
        let n = a_words.len().min(b_words.len()).min(8);
        assert!(n > 0, "prompt {i} got an empty answer when batched: {b:?}");
        assert_eq!(
            a_words[..n],
            b_words[..n],
            "prompt {i} starts differently when batched"
        );
        equal += usize::from(a == b);
    }
    assert!(equal >= PROMPTS.len() / 2, "{alone:?} vs {together:?}");
}

#[test]
fn a_request_arriving_mid_generation_starts_at_once_and_changes_nothing() {
    let engine = engine(2, 4096, |_| {});
    let long_request = || Request {
        ignore_eos: true,
        ..greedy(&engine, &chatml(PROMPTS[0]), 96)
    };
    let (long_alone, _) = wait(engine.submit(long_request()).unwrap());
    let (short_alone, _) = wait(
        engine
            .submit(greedy(&engine, &chatml(PROMPTS[1]), 16))
            .unwrap(),
    );

    let long = engine.submit(long_request()).unwrap();
    wait_for_slots(&engine, |s| {
        s.iter()
            .any(|s| s.state == "generating" && s.n_generated >= 4)
    });
    let short = engine
        .submit(greedy(&engine, &chatml(PROMPTS[1]), 16))
        .unwrap();
    // The short request finishes while the long one is still generating: it did not queue.
    let (short_text, _) = wait(short);
    let progress = engine.slots().unwrap();
    let (long_text, _) = wait(long);
    assert_eq!(short_text, short_alone);
    assert_eq!(long_text, long_alone);
    assert!(
        progress.iter().any(|s| s.state == "generating"),
        "the long request should still be running when the short one is done: {progress:?}"
    );
}

#[test]
fn next_turn_reuses_the_cached_prefix_and_answers_as_a_cold_run() {
    let history = format!("{}{}", chatml("Name a colour."), "Blue.<|im_end|>\n");
    let turn2 = format!("{history}{}", chatml("Name another one."));

    let warm = engine(1, 4096, |_| {});
    let (_, first) = wait(warm.submit(greedy(&warm, &history, 8)).unwrap());
    assert_eq!(first.usage.cached_tokens, 0);
    let (warm_text, warm_done) = wait(warm.submit(greedy(&warm, &turn2, 32)).unwrap());
    let history_tokens = warm.tokenize(&history, true).len() as u32;
    assert!(
        warm_done.usage.cached_tokens >= history_tokens - 1,
        "expected the {history_tokens}-token history to be reused, got {:?}",
        warm_done.usage
    );
    assert_eq!(
        warm_done.timings.prompt_decoded,
        warm_done.usage.prompt_tokens - warm_done.usage.cached_tokens
    );

    let cold = engine(1, 4096, |_| {});
    let (cold_text, cold_done) = wait(cold.submit(greedy(&cold, &turn2, 32)).unwrap());
    assert_eq!(cold_done.usage.cached_tokens, 0);
    assert_eq!(warm_text, cold_text);
}

#[test]
fn dropping_the_receiver_frees_the_slot() {
    let engine = engine(1, 4096, |_| {});
    let mut long = greedy(&engine, &chatml("Count to ten thousand."), 3000);
    long.ignore_eos = true;
    let mut rx = engine.submit(long).unwrap();
    for _ in 0..3 {
        assert!(matches!(rx.blocking_recv(), Some(Event::Token(_))));
    }
    drop(rx);
    wait_for_slots(&engine, |s| s[0].state == "idle");
    let cached = engine.slots().unwrap()[0].n_cached;
    assert!(
        cached < 1000,
        "generation went on after the client left: {cached} tokens cached"
    );
    // The freed slot serves the next request.
    let (text, done) = wait(
        engine
            .submit(greedy(&engine, &chatml(PROMPTS[2]), 8))
            .unwrap(),
    );
    assert!(!text.is_empty());
    assert_eq!(done.usage.completion_tokens, 8);
}

#[test]
fn generation_ends_with_length_when_the_context_is_full() {
    let engine = engine(1, 256, |_| {});
    let mut req = greedy(&engine, &chatml("Tell me a very long story."), 10_000);
    req.max_tokens = None;
    req.ignore_eos = true;
    let prompt = req.prompt.len() as u32;
    let (_, done) = wait(engine.submit(req).unwrap());
    assert_eq!(done.finish_reason, FinishReason::Length);
    // Every cell holds a token, and the token sampled from the last one is returned too.
    assert_eq!(prompt + done.usage.completion_tokens, 256 + 1);
}

#[test]
fn context_shift_keeps_generating_past_the_context() {
    let engine = engine(1, 128, |raw| raw.engine.context_shift = Some(true));
    let mut req = greedy(&engine, &chatml("Tell me a story."), 300);
    req.ignore_eos = true;
    let (_, done) = wait(engine.submit(req).unwrap());
    assert_eq!(done.usage.completion_tokens, 300);
    assert_eq!(done.finish_reason, FinishReason::Length);
}

#[test]
fn bad_requests_are_refused_before_reaching_llama_cpp() {
    let engine = engine(1, 256, |_| {});
    let too_long = Request {
        prompt: vec![1; 256],
        ..greedy(&engine, "x", 1)
    };
    assert!(matches!(
        engine.submit(too_long),
        Err(EngineError::ContextExceeded {
            prompt: 256,
            context: 256
        })
    ));
    let bad_token = Request {
        prompt: vec![1, 10_000_000],
        ..greedy(&engine, "x", 1)
    };
    assert!(matches!(
        engine.submit(bad_token),
        Err(EngineError::InvalidRequest {
            param: "prompt",
            ..
        })
    ));
    let empty = Request {
        prompt: vec![],
        ..greedy(&engine, "x", 1)
    };
    assert!(matches!(
        engine.submit(empty),
        Err(EngineError::InvalidRequest { .. })
    ));
    let mut bad_bias = greedy(&engine, "x", 1);
    bad_bias.sampling.logit_bias = vec![(-5, 1.0)];
    assert!(matches!(
        engine.submit(bad_bias),
        Err(EngineError::InvalidRequest {
            param: "logit_bias",
            ..
        })
    ));
    // Still serving.
    let (_, done) = wait(engine.submit(greedy(&engine, &chatml("Hi"), 2)).unwrap());
    assert_eq!(done.usage.completion_tokens, 2);
}

#[test]
fn a_full_queue_refuses_new_requests_as_busy() {
    let engine = engine(1, 4096, |raw| raw.engine.max_queue = Some(1));
    let mut long = greedy(&engine, &chatml("Count slowly."), 2000);
    long.ignore_eos = true;
    let running = engine.submit(long).unwrap();
    wait_for_slots(&engine, |s| s[0].state != "idle");
    let queued = engine.submit(greedy(&engine, &chatml("Hi"), 2)).unwrap();
    assert!(matches!(
        engine.submit(greedy(&engine, &chatml("Hi"), 2)),
        Err(EngineError::Busy { queued: 1 })
    ));
    drop(running);
    let (_, done) = wait(queued);
    assert_eq!(done.usage.completion_tokens, 2);
}

#[test]
fn logprobs_describe_the_greedy_choice() {
    let engine = engine(1, 4096, |_| {});
    let mut req = greedy(&engine, &chatml(PROMPTS[2]), 6);
    req.logprobs = Some(3);
    let mut rx = engine.submit(req).unwrap();
    let mut seen = 0;
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Token(t) => {
                let lp = t.logprob.expect("logprobs were asked for");
                assert_eq!(lp.top.len(), 3);
                assert_eq!(
                    lp.token.id, lp.top[0].id,
                    "greedy picks the most likely token"
                );
                assert!(lp.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
                assert!(lp.token.logprob <= 0.0);
                seen += 1;
            }
            Event::Done(done) => {
                assert_eq!(seen, done.usage.completion_tokens);
                return;
            }
            Event::Error(e) => panic!("{e}"),
        }
    }
}

/// The first generated token's five most likely candidates (id, log-probability), and the
/// completion.
fn first_candidates(engine: &EngineHandle, prompt: &str) -> (Vec<(i32, f32)>, Completion) {
    let mut request = greedy(engine, prompt, 1);
    request.logprobs = Some(5);
    let mut rx = engine.submit(request).unwrap();
    let mut top = Vec::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Token(t) => {
                let logprob = t.logprob.expect("logprobs were asked for");
                top = logprob.top.iter().map(|c| (c.id, c.logprob)).collect();
            }
            Event::Done(done) => return (top, done),
            Event::Error(e) => panic!("request failed: {e}"),
        }
    }
    panic!("event stream ended without Done");
}

/// Gemma 3 keeps only the last 512 positions in its sliding-window layers: a cached prefix may
/// be extended, but cutting it back past the window must fall back to a full prompt, never to
/// a cache with holes. Either way the answer is the cold one's.
#[test]
fn sliding_window_caches_are_reused_only_where_they_are_whole() {
    let spec = |path| {
        let mut s = common::settings(|raw| raw.engine.parallel = Some(1)).engine;
        s.model_path = path;
        s
    };
    let warm = EngineHandle::spawn(spec(common::gemma3())).unwrap();
    let cold = || EngineHandle::spawn(spec(common::gemma3())).unwrap();
    let story: String = (0..200)
        .map(|i| format!("Line {i}: the quick brown fox jumps. "))
        .collect();
    let long = format!("{story}\nSummary:");
    let extended = format!("{story}\nSummary: foxes jump.\nAnother summary:");
    let diverging = format!("{}\nSomething else entirely:", &story[..200]);
    assert!(
        warm.tokenize(&long, true).len() > 1600,
        "the prompt must outgrow the window and the SWA cache (512 + ubatch)"
    );

    wait(warm.submit(greedy(&warm, &long, 8)).unwrap());
    let (reused, done) = first_candidates(&warm, &extended);
    assert!(
        done.usage.cached_tokens > 1600,
        "an extended prompt reuses the cache: {:?}",
        done.usage
    );
    // Only the new tokens are decoded, in batches of another shape than the cold run's (and
    // so through other CPU kernels), so log-probabilities differ by up to ~0.15 and near-ties
    // may go either way (they do on AVX-512); a cache with holes gives another distribution
    // altogether.
    let fresh = cold();
    let (recomputed, _) = first_candidates(&fresh, &extended);
    for (id, logprob) in reused.iter().take(3) {
        let cold = recomputed.iter().find(|(c, _)| c == id).unwrap_or_else(|| {
            panic!("{id} is not in the cold top 5: {reused:?} vs {recomputed:?}")
        });
        assert!(
            (logprob - cold.1).abs() < 0.25,
            "{reused:?} vs {recomputed:?}"
        );
    }

    let (text, done) = wait(warm.submit(greedy(&warm, &diverging, 8)).unwrap());
    assert_eq!(
        done.usage.cached_tokens, 0,
        "cutting back past the window recomputes: {:?}",
        done.usage
    );
    let fresh = cold();
    assert_eq!(
        text,
        wait(fresh.submit(greedy(&fresh, &diverging, 8)).unwrap()).0
    );
}

/// Two prompts that cannot both fit the shared context: the second waits for the first to
/// finish instead of squeezing it out (which would end the first early with `length`).
#[test]
fn prompts_that_do_not_fit_together_take_turns() {
    let engine = engine(2, 1024, |_| {});
    let prompt = |topic: &str| {
        let filler: String = (0..90)
            .map(|i| format!("{topic} fact number {i}. "))
            .collect();
        chatml(&format!("{filler}\nSummarize."))
    };
    let (a, b) = (prompt("Cats"), prompt("Dogs"));
    assert!(
        engine.tokenize(&a, true).len() > 520,
        "each prompt must take over half the context"
    );
    let alone: Vec<_> = [&a, &b]
        .iter()
        .map(|p| wait(engine.submit(greedy(&engine, p, 16)).unwrap()))
        .collect();
    // Clear the caches so neither request can reuse anything.
    wait(engine.submit(greedy(&engine, &chatml("x"), 1)).unwrap());
    wait(engine.submit(greedy(&engine, &chatml("y"), 1)).unwrap());
    let both = [
        engine.submit(greedy(&engine, &a, 16)).unwrap(),
        engine.submit(greedy(&engine, &b, 16)).unwrap(),
    ];
    for ((text, done), (alone_text, _)) in both.into_iter().map(wait).zip(&alone) {
        assert_eq!(done.finish_reason, FinishReason::Length);
        assert_eq!(done.usage.completion_tokens, 16);
        assert_eq!(&text, alone_text);
    }
}
