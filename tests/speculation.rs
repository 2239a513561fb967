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
        let plain = without_speculation(greedy(&engine, &prompt, n));
        let (expected, done) = wait(engine.submit(plain).unwrap());
        assert_eq!(done.timings.draft.drafted, 0, "n_max 0 turns guessing off");
        let (text, done) = wait(engine.submit(greedy(&engine, &prompt, n)).unwrap());
        assert_eq!(
            text, expected,
            "speculation changed the output for {prompt:.40?}"
        );
        assert_eq!(done.usage.completion_tokens, n);
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
    assert!(
        stats.accepted >= 120,
        "most of 200 copied tokens come from guesses: {stats:?}"
    );
    assert!(stats.acceptance().unwrap() > 0.6, "{stats:?}");
}

/// Every token of a greedy request, with the most likely token at its position.
fn greedy_tokens(rx: UnboundedReceiver<Event>) -> (String, Vec<(i32, i32)>, Completion) {
    let (mut text, mut picks) = (String::new(), Vec::new());
    let mut rx = rx;
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Token(t) => {
                text.push_str(&t.text);
                if let Some(lp) = t.logprob {
                    picks.push((lp.token.id, lp.top[0].id));
                }
            }
            Event::Done(done) => return (text, picks, done),
            Event::Error(e) => panic!("request failed: {e}"),
        }
    }
    panic!("event stream ended without Done");
}

/// llama.cpp's arithmetic depends on the batch's shape (which slots share a decode, how many
/// tokens each brings), so under concurrency a near-tie in free text can flip with or without
/// speculation: seen here on "Explain what a hash map is." with guessing off. What must hold
/// for every request is the greedy rule: each token is the most likely one at its position,
/// never an unchecked guess. Copied code is far from any tie and must match exactly.
#[test]
fn concurrent_requests_keep_the_greedy_rule_and_copied_code_is_unchanged() {
    let engine = engine(4, 8192, |_| {});
    let edits = [
        edit_prompt(),
        edit_prompt().replace("combine_configs", "join_configs"),
    ];
    let expected: Vec<String> = edits
        .iter()
        .map(|p| {
            wait(
                engine
                    .submit(without_speculation(greedy(&engine, p, 96)))
                    .unwrap(),
            )
            .0
        })
        .collect();
    let prompts = [
        edits[0].clone(),
        chatml("List five fruits."),
        edits[1].clone(),
        chatml("Explain what a hash map is."),
    ];
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
                    logprobs: Some(1),
                    ..r
                })
                .unwrap()
        })
        .collect();
    let mut accepted = 0;
    for (i, rx) in receivers.into_iter().enumerate() {
        let (text, picks, done) = greedy_tokens(rx);
        assert_eq!(picks.len(), done.usage.completion_tokens as usize);
        for (at, (token, best)) in picks.iter().enumerate() {
            assert_eq!(
                token, best,
                "request {i}, token {at} is not the most likely one"
            );
        }
        if i / 2 % 2 == 0 {
            assert_eq!(text, expected[i / 4], "request {i}: copied code changed");
        }
        accepted += done.timings.draft.accepted;
    }
    assert!(
        accepted > 50,
        "guesses were taken under concurrency ({accepted})"
    );
}

#[test]
fn a_prediction_is_used_for_guesses() {
    let engine = engine(1, 4096, |_| {});
    let prompt = chatml("Write a short story about a dragon who learns to paint.");
    let (expected, _) = wait(
        engine
            .submit(without_speculation(greedy(&engine, &prompt, 96)))
            .unwrap(),
    );
    // The story is nowhere in the prompt; the prediction has it.
    let with_prediction = Request {
        prediction: engine.tokenize(&expected, false),
        ..greedy(&engine, &prompt, 96)
    };
    let (text, done) = wait(engine.submit(with_prediction).unwrap());
    assert_eq!(text, expected);
    let (_, alone) = wait(engine.submit(greedy(&engine, &prompt, 96)).unwrap());
    assert!(
        done.timings.draft.accepted >= 60
            && done.timings.draft.accepted > alone.timings.draft.accepted + 30,
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
    let (expected, _) = wait(
        engine
            .submit(without_speculation(greedy(&engine, &prompt, 64)))
            .unwrap(),
    );
    let (text, done) = wait(engine.submit(greedy(&engine, &prompt, 64)).unwrap());
    assert_eq!(text, expected);
    let stats = done.timings.draft;
    assert!(stats.drafted > 10, "{stats:?}");
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
