//! Speculative decoding: guesses from the prompt (n-gram lookup), from a prediction, and from a
//! draft model never change greedy output, alone or under concurrency; they are really used
//! (accepted guesses are counted); a draft model with another vocabulary is refused.

use paddock::engine::{Completion, EngineError, EngineHandle, Event, Request};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::common;
use crate::engine::{chatml, engine, greedy, wait};

/// A source file to edit: code agents send the file and get it back with a small change, so
/// most of the answer is already in the prompt.
const SOURCE: &str = include_str!("data/edit_source.py");

/// The answer's code fence is opened in the prompt, so the 135M model copies the file (it is
/// too small to make the edit reliably; the copying is what matters here).
pub fn edit_prompt() -> String {
    format!(
        "{}```python\n",
        chatml(&format!(
            "Rename the function `merge_configs` to `combine_configs` in this file and print the whole file.\n\n```python\n{SOURCE}```"
        ))
    )
}

fn without_speculation(req: Request) -> Request {
    Request {
        draft_max: Some(0),
        ..req
    }
}

/// One greedy request's tokens, each with the most likely token at its position and the
/// log-probability gap to the second most likely.
struct Run {
    text: String,
    tokens: Vec<Pick>,
    done: Completion,
}

struct Pick {
    id: i32,
    best: i32,
    gap: f32,
}

fn run(engine: &EngineHandle, req: Request) -> Run {
    collect(
        engine
            .submit(Request {
                logprobs: Some(2),
                ..req
            })
            .unwrap(),
    )
}

fn collect(mut rx: UnboundedReceiver<Event>) -> Run {
    let (mut text, mut tokens) = (String::new(), Vec::new());
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Token(t) => {
                text.push_str(&t.text);
                if let Some(lp) = t.logprob {
                    tokens.push(Pick {
                        id: lp.token.id,
                        best: lp.top[0].id,
                        gap: lp.top[0].logprob - lp.top[1].logprob,
                    });
                }
            }
            Event::Done(done) => return Run { text, tokens, done },
            Event::Error(e) => panic!("request failed: {e}"),
        }
    }
    panic!("event stream ended without Done");
}

/// Closer than this, the two most likely tokens may swap places with rounding alone.
const NEAR_TIE: f32 = 0.5;

/// llama.cpp's arithmetic depends on the batch's shape (which slots share a decode, how many
/// tokens each brings): rounding differs in the last bits, with or without guesses, and a
/// near-tie can come out either way; from there on the texts differ. So `run` must follow
/// `reference` token for token up to the reference's first near-tie (all of it if it has
/// none), and every token of `run` must be the most likely one at its position: never an
/// unchecked guess.
fn assert_same_greedy_output(run: &Run, reference: &Run, what: &str) {
    for (at, pick) in run.tokens.iter().enumerate() {
        assert_eq!(
            pick.id, pick.best,
            "{what}: token {at} is not the most likely one"
        );
    }
    let until = reference
        .tokens
        .iter()
        .position(|p| p.gap < NEAR_TIE)
        .unwrap_or(reference.tokens.len());
    let ids = |r: &Run| {
        r.tokens
            .iter()
            .take(until)
            .map(|p| p.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(run),
        ids(reference),
        "{what}: differs before the first near-tie ({until})"
    );
    if until == reference.tokens.len() {
        assert_eq!(run.text, reference.text, "{what}");
    }
}

#[test]
fn greedy_output_is_the_same_with_and_without_guesses() {
    let engine = engine(1, 4096, |_| {});
    for (prompt, n) in [
        (edit_prompt(), 200),
        (
            chatml("Write a short story about a dragon who learns to paint."),
            120,
        ),
    ] {
        let plain = run(&engine, without_speculation(greedy(&engine, &prompt, n)));
        assert_eq!(
            plain.done.timings.draft.drafted, 0,
            "n_max 0 turns guessing off"
        );
        let guessed = run(&engine, greedy(&engine, &prompt, n));
        assert_same_greedy_output(&guessed, &plain, &format!("{prompt:.40?}"));
        assert_eq!(guessed.done.usage.completion_tokens, n);
        assert!(guessed.done.timings.draft.drafted > 0, "guesses were made");
    }
}

#[test]
fn copied_code_is_mostly_accepted_guesses() {
    let engine = engine(1, 4096, |_| {});
    let (text, done) = wait(engine.submit(greedy(&engine, &edit_prompt(), 200)).unwrap());
    assert!(
        text.starts_with("import json\nimport os\n"),
        "the model copies the file: {text}"
    );
    let stats = done.timings.draft;
    // How many guesses pay depends on what checking one costs on this machine (learnt from
    // the decode times): on two CPU cores about half a decode, so only likely ones are made.
    assert!(
        stats.accepted >= 40,
        "copied tokens come from guesses: {stats:?}"
    );
    assert!(stats.acceptance().unwrap() > 0.6, "{stats:?}");
}

#[test]
fn concurrent_requests_with_and_without_guesses_agree() {
    let engine = engine(4, 8192, |_| {});
    let prompts = [
        edit_prompt(),
        chatml("List five fruits."),
        edit_prompt().replace("combine_configs", "join_configs"),
        chatml("Explain what a hash map is."),
    ];
    let alone: Vec<Run> = prompts
        .iter()
        .map(|p| run(&engine, without_speculation(greedy(&engine, p, 96))))
        .collect();
    // Each prompt twice at once, with and without guessing: 8 requests on 4 slots.
    let receivers: Vec<_> = prompts
        .iter()
        .flat_map(|p| {
            [
                greedy(&engine, p, 96),
                without_speculation(greedy(&engine, p, 96)),
            ]
        })
        .map(|r| {
            engine
                .submit(Request {
                    logprobs: Some(2),
                    ..r
                })
                .unwrap()
        })
        .collect();
    let mut accepted = 0;
    for (i, rx) in receivers.into_iter().enumerate() {
        let together = collect(rx);
        assert_same_greedy_output(&together, &alone[i / 2], &format!("request {i}"));
        accepted += together.done.timings.draft.accepted;
    }
    // How many guesses are made depends on what a step costs on this machine at that moment
    // (the policy learns it from decode times; 29 to 60 were taken on two CPU cores): the
    // point here is that some were, in a shared batch, without changing the output.
    assert!(
        accepted >= 10,
        "guesses were taken under concurrency ({accepted})"
    );
}

#[test]
fn a_prediction_is_used_for_guesses() {
    let engine = engine(1, 4096, |_| {});
    let prompt = chatml("Write a short story about a dragon who learns to paint.");
    let plain = run(&engine, without_speculation(greedy(&engine, &prompt, 96)));
    // The story is nowhere in the prompt; the prediction has it.
    let with_prediction = Request {
        prediction: engine.tokenize(&plain.text, false),
        ..greedy(&engine, &prompt, 96)
    };
    let predicted = run(&engine, with_prediction);
    assert_same_greedy_output(&predicted, &plain, "with a prediction");
    let done = predicted.done;
    let (_, alone) = wait(engine.submit(greedy(&engine, &prompt, 96)).unwrap());
    assert!(
        done.timings.draft.accepted >= 48
            && done.timings.draft.accepted > alone.timings.draft.accepted + 20,
        "with the prediction {:?}, without {:?}",
        done.timings.draft,
        alone.timings.draft
    );
}

fn with_draft(
    target: std::path::PathBuf,
    draft: std::path::PathBuf,
) -> Result<EngineHandle, EngineError> {
    let settings = common::settings(|raw| {
        raw.model.path = Some(target);
        raw.engine.parallel = Some(2);
        raw.engine.spec_ngram = Some(false);
        raw.engine.model_draft = Some(draft);
        raw.engine.draft_max = Some(4);
    });
    EngineHandle::spawn(settings.engine)
}

#[test]
fn a_draft_model_guesses_without_changing_the_output() {
    // The model as its own draft: every guess it is sure of is right.
    let engine = with_draft(common::smollm2(), common::smollm2()).expect("draft loads");
    let prompt = chatml("Write a short story about a dragon who learns to paint.");
    let plain = run(&engine, without_speculation(greedy(&engine, &prompt, 64)));
    let guessed = run(&engine, greedy(&engine, &prompt, 64));
    assert_same_greedy_output(&guessed, &plain, "draft model");
    let done = guessed.done;
    let stats = done.timings.draft;
    // How many guesses pay depends on what checking costs on this machine at the moment (on
    // 2 busy cores, as much as a decode: then few are made); the first steps always guess.
    assert!(stats.drafted > 0, "{stats:?}");
    assert!(stats.acceptance().unwrap() > 0.9, "{stats:?}");
}

#[test]
fn a_draft_model_with_another_vocabulary_is_refused() {
    let err = with_draft(common::gemma3(), common::smollm2())
        .err()
        .expect("SmolLM2 cannot draft for Gemma 3");
    let text = err.to_string();
    assert!(text.contains("cannot draft for this model"), "{text}");
    assert!(
        text.contains("vocabulary") || text.contains("token"),
        "{text}"
    );
}

#[tokio::test]
async fn the_memory_budget_counts_the_draft_model() {
    let server = common::TestServer::start(common::settings(|raw| {
        raw.engine.model_draft = Some(common::smollm2());
    }));
    let (_, status) = common::get(&server, "/api/status").await;
    assert_eq!(
        status["model"]["speculation"]["draft_model"],
        common::SMOLLM2_ID
    );
    let b = &status["models"][0]["predicted"];
    let part = |k: &str| b[k].as_u64().unwrap();
    assert!(
        part("draft") > part("weights_cpu"),
        "weights plus its own KV cache: {b}"
    );
    assert_eq!(
        part("total"),
        part("weights_gpu")
            + part("weights_cpu")
            + part("kv_cache")
            + part("compute")
            + part("draft")
            + part("os_reserve"),
        "{b}"
    );
}
