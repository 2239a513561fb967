//! A model's own multi-token-prediction heads as the guesser. No small real model has them, so
//! these run on synthetic GLM-4.5-shaped files (`scripts/synth_mtp_gguf.py`): `echo`, whose
//! head always agrees with the model, and `mixed`, whose head is often wrong. Either way the
//! greedy output must be the one decoding without guesses gives.

use paddock::engine::{EngineHandle, Request};

use crate::common;
use crate::engine::{greedy, wait};

fn mtp_engine(variant: &str, edit: impl FnOnce(&mut paddock::config::RawSettings)) -> EngineHandle {
    let settings = common::settings(|raw| {
        raw.model.path = Some(common::mtp_model(variant));
        raw.engine.parallel = Some(1);
        raw.engine.ctx_size = Some(2048);
        // Guesses from the heads only: the lookup would find the synthetic text's cycles.
        raw.engine.spec_ngram = Some(false);
        raw.engine.draft_max = Some(4);
        edit(raw);
    });
    EngineHandle::spawn(settings.engine).expect("the synthetic MTP model loads")
}

/// Greedy, past end-of-generation tokens (the synthetic model's walk may meet one).
fn request(engine: &EngineHandle, draft_max: Option<u32>) -> Request {
    Request {
        ignore_eos: true,
        draft_max,
        ..greedy(engine, "<|im_start|>user\nHello there<|im_end|>\n", 96)
    }
}

#[test]
fn heads_that_agree_with_the_model_have_their_guesses_taken() {
    let engine = mtp_engine("echo", |_| {});
    assert!(
        engine.info().speculation.mtp,
        "{:?}",
        engine.info().speculation
    );
    let (plain, plain_done) = wait(engine.submit(request(&engine, Some(0))).unwrap());
    let (guessed, done) = wait(engine.submit(request(&engine, None)).unwrap());
    assert_eq!(guessed, plain);
    assert_eq!(done.usage.completion_tokens, 96);
    assert_eq!(plain_done.timings.draft.drafted, 0);
    let stats = done.timings.draft;
    assert!(stats.drafted >= 20, "{stats:?}");
    assert!(stats.acceptance().unwrap() > 0.9, "{stats:?}");
}

#[test]
fn heads_that_guess_wrong_do_not_change_the_output() {
    let engine = mtp_engine("mixed", |_| {});
    assert!(engine.info().speculation.mtp);
    for prompt in ["Hello there", "Write a poem about the sea.", "1, 2, 3,"] {
        let req = |draft_max| Request {
            ignore_eos: true,
            draft_max,
            ..greedy(
                &engine,
                &format!("<|im_start|>user\n{prompt}<|im_end|>\n"),
                80,
            )
        };
        let (plain, _) = wait(engine.submit(req(Some(0))).unwrap());
        let (guessed, done) = wait(engine.submit(req(None)).unwrap());
        assert_eq!(guessed, plain, "{prompt:?}");
        let stats = done.timings.draft;
        assert!(stats.drafted > 0, "{prompt:?}: {stats:?}");
        assert!(
            stats.accepted < stats.drafted,
            "{prompt:?}: some guesses are wrong: {stats:?}"
        );
    }
}

#[test]
fn with_several_slots_or_switched_off_the_heads_stay_unused() {
    let several = mtp_engine("echo", |raw| raw.engine.parallel = Some(2));
    assert!(!several.info().speculation.mtp);
    let (_, done) = wait(several.submit(request(&several, None)).unwrap());
    assert_eq!(done.timings.draft.drafted, 0);
    drop(several);
    let off = mtp_engine("echo", |raw| raw.engine.spec_mtp = Some(false));
    assert!(!off.info().speculation.mtp);
    assert!(!off.info().speculation.is_on());
}

#[tokio::test]
async fn the_budget_counts_what_the_heads_take() {
    // With one slot the MTP layers guess, with their own KV cache and compute buffer; with two
    // they are not loaded. Either way the prediction is what llama.cpp then allocates.
    for (parallel, guessing) in [(1, true), (2, false)] {
        let server = common::TestServer::start(common::settings(|raw| {
            raw.model.path = Some(common::mtp_model("echo"));
            raw.engine.parallel = Some(parallel);
            raw.engine.ctx_size = Some(4096);
        }));
        let (_, status) = common::get(&server, "/api/status").await;
        let model = &status["models"][0];
        assert_eq!(model["speculation"]["mtp"], guessing, "{model}");
        let (predicted, measured) = (&model["predicted"], &model["measured"]);
        assert_eq!(predicted["kv_cache"], measured["kv_cache"], "{model}");
        assert_eq!(predicted["compute"], measured["compute"], "{model}");
        // One layer of 2 KV heads x 32 dims x 4096 cells, K and V in f16: 1 MiB per layer.
        let layers = if guessing { 3 } else { 2 };
        assert_eq!(measured["kv_cache"], layers << 20, "{model}");
    }
}
