//! `paddock bench`: llama-bench's definitions (token counts checked with llama.cpp's own
//! counters), the result format, the history, and benchmarks through the admin API (they run
//! alone, show progress, can be cancelled, and give the model back afterwards).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use paddock::bench::{self, Plan};
use paddock::library::Library;

use crate::common::{self, get, send, TestServer};

fn temp_history(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("history.jsonl")
}

#[test]
fn a_pp512_run_decodes_exactly_512_prompt_tokens_even_in_chunks_and_after_a_depth() {
    let mut settings = common::settings(|_| {});
    // Smaller batches than the prompt: llama-bench feeds pp512 in n_batch chunks.
    settings.engine.n_batch = 128;
    settings.engine.n_ubatch = 128;
    let library = Library::new(
        Some(&settings.model_path),
        paddock::library::budget_settings(&settings.engine),
    );
    let plan = Plan {
        n_prompt: vec![128, 512],
        n_gen: vec![16],
        n_depth: vec![0, 64],
        repetitions: 2,
    };
    let job = bench::prepare(
        &library,
        Library::file_at(&settings.model_path),
        settings.engine.clone(),
        plan,
    )
    .expect("SmolLM2 fits");
    let mut seen = Vec::new();
    let run = bench::run(job, |p| {
        seen.push((p.done, p.total, p.current.clone()));
        true
    })
    .expect("benchmark runs");

    let names: Vec<&str> = run.results.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(
        names,
        [
            "pp128",
            "pp128 @ d64",
            "pp512",
            "pp512 @ d64",
            "tg16",
            "tg16 @ d64"
        ]
    );
    for r in &run.results {
        // llama.cpp's perf counters, not our own loop: the depth fill is not counted.
        assert_eq!(r.n_prompt_decoded, vec![r.n_prompt; 2], "{}", r.test);
        assert_eq!(r.n_gen_decoded, vec![r.n_gen; 2], "{}", r.test);
        assert_eq!(r.samples_ts.len(), 2);
        let mean = r.samples_ts.iter().sum::<f64>() / 2.0;
        assert!((r.avg_ts - mean).abs() < 1e-9 * mean.max(1.0));
        let n = f64::from(r.n_prompt + r.n_gen);
        for (ts, ns) in r.samples_ts.iter().zip(&r.samples_ns) {
            assert!(
                (ts - n * 1e9 / *ns as f64).abs() < 1e-6 * ts,
                "{ts} vs {ns} ns"
            );
        }
    }
    // Progress: 12 repetitions in all, announced one by one, each test named as it starts.
    assert_eq!(seen.last().map(|s| (s.0, s.1)), Some((12, 12)));
    assert!(seen.iter().any(|s| s.2.as_deref() == Some("pp512 @ d64")));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));

    let retention = run.derived.retention.as_ref().expect("two prompt sizes");
    assert_eq!(
        (retention.from.as_str(), retention.to.as_str()),
        ("pp128", "pp512")
    );
    let pp = |name: &str| run.results.iter().find(|r| r.test == name).unwrap().avg_ts;
    assert!((retention.ratio - pp("pp512") / pp("pp128")).abs() < 1e-9);
    // Bandwidth is measured here (no Apple chip), so there is a ceiling and a share of it.
    let ceiling = run
        .derived
        .tg_ceiling_ts
        .expect("a measured bandwidth gives a ceiling");
    let expected = run.machine.bandwidth_bytes_per_s.unwrap() / run.model.active_bytes as f64;
    assert!((ceiling - expected).abs() < 1e-6 * expected);
    assert_eq!(run.derived.tg_best_ts, Some(pp("tg16")));
    assert_eq!(run.machine.bandwidth_source.as_deref(), Some("measured"));
    assert_eq!(run.model.architecture, "llama");
    assert_eq!(run.model.quant, "Q4_1");
    assert!(!run.model.moe);
    assert!(
        run.notes.iter().any(|n| n.starts_with("dense:")),
        "{:?}",
        run.notes
    );
    assert_eq!(run.settings.n_batch, 128);
    assert!(run.versions.llama_cpp.starts_with("llama-cpp-sys-2 "));

    schema(&serde_json::to_value(&run).unwrap());
}

/// A field name and a check of its JSON type.
type Field = (&'static str, fn(&Value) -> bool);

/// The JSON a run is stored and served as: every documented field, with its type.
fn schema(run: &Value) {
    let kinds = |obj: &Value, fields: &[Field]| {
        for (name, ok) in fields {
            assert!(ok(&obj[name]), "field {name} is {:?} in {obj}", obj[name]);
        }
    };
    let s: fn(&Value) -> bool = Value::is_string;
    let u: fn(&Value) -> bool = Value::is_u64;
    let f: fn(&Value) -> bool = Value::is_number;
    let a: fn(&Value) -> bool = Value::is_array;
    let o: fn(&Value) -> bool = Value::is_object;
    let b: fn(&Value) -> bool = Value::is_boolean;
    let of: fn(&Value) -> bool = |v| v.is_null() || v.is_number();
    kinds(
        run,
        &[
            ("id", s),
            ("started_at", s),
            ("finished_at", s),
            ("model", o),
            ("settings", o),
        ],
    );
    kinds(
        run,
        &[
            ("machine", o),
            ("versions", o),
            ("results", a),
            ("derived", o),
        ],
    );
    kinds(run, &[("notes", a), ("warnings", a)]);
    kinds(
        &run["model"],
        &[
            ("id", s),
            ("file", s),
            ("architecture", s),
            ("quant", s),
            ("size_bytes", u),
        ],
    );
    kinds(
        &run["model"],
        &[
            ("params", u),
            ("active_params", u),
            ("active_bytes", u),
            ("moe", b),
            ("n_ctx_train", u),
        ],
    );
    kinds(
        &run["settings"],
        &[
            ("n_threads", u),
            ("n_batch", u),
            ("n_ubatch", u),
            ("flash_attn", s),
            ("type_k", s),
        ],
    );
    kinds(
        &run["settings"],
        &[("type_v", s), ("n_gpu_layers", u), ("repetitions", u)],
    );
    kinds(
        &run["machine"],
        &[
            ("cpu", s),
            ("cores", u),
            ("memory_bytes", u),
            ("os", s),
            ("bandwidth_bytes_per_s", of),
        ],
    );
    kinds(&run["versions"], &[("paddock", s), ("llama_cpp", s)]);
    kinds(
        &run["derived"],
        &[
            ("tg_ceiling_ts", of),
            ("tg_best_ts", of),
            ("tg_ceiling_pct", of),
        ],
    );
    for r in run["results"].as_array().unwrap() {
        kinds(
            r,
            &[
                ("test", s),
                ("n_prompt", u),
                ("n_gen", u),
                ("n_depth", u),
                ("avg_ns", u),
            ],
        );
        kinds(
            r,
            &[
                ("stddev_ns", u),
                ("avg_ts", f),
                ("stddev_ts", f),
                ("samples_ns", a),
                ("samples_ts", a),
            ],
        );
        kinds(r, &[("n_prompt_decoded", a), ("n_gen_decoded", a)]);
    }
    assert!(run["started_at"].as_str().unwrap() <= run["finished_at"].as_str().unwrap());
}

fn paddock_bench(history: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg("bench")
        .args(args)
        .env("PADDOCK_BENCH_HISTORY", history)
        .output()
        .expect("paddock runs");
    assert!(
        out.status.success(),
        "paddock bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_keeps_a_history_that_round_trips_in_every_format() {
    let history = temp_history("cli");
    let model = common::smollm2();
    let model = model.to_str().unwrap();
    let run: Value = serde_json::from_str(&paddock_bench(
        &history,
        &[
            "-m", model, "-t", "2", "-p", "64", "-n", "8", "-r", "1", "-o", "json",
        ],
    ))
    .expect("-o json prints the run");
    schema(&run);
    assert_eq!(run["results"][0]["test"], "pp64");
    assert_eq!(run["results"][0]["n_prompt_decoded"], json!([64]));
    assert_eq!(run["results"][1]["n_gen_decoded"], json!([8]));

    let markdown = paddock_bench(
        &history,
        &[
            "-m",
            model,
            "-t",
            "2",
            "-p",
            "32",
            "-n",
            "0",
            "-r",
            "1",
            "--no-history",
        ],
    );
    assert!(markdown.contains("| pp32 |"), "{markdown}");

    let listed: Value =
        serde_json::from_str(&paddock_bench(&history, &["history", "-o", "json"])).unwrap();
    assert_eq!(
        listed,
        json!([run]),
        "the stored run is the printed one, and only it"
    );
    let csv = paddock_bench(&history, &["history", "-o", "csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[1].starts_with(run["id"].as_str().unwrap()));
    let avg = run["results"][0]["avg_ts"].as_f64().unwrap();
    assert!(
        rows[1].contains(&format!(",pp64,64,0,0,{avg:.4},")),
        "{csv}"
    );
}

#[test]
fn a_plan_that_measures_nothing_or_too_much_is_refused_before_loading() {
    let history = temp_history("refused");
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["bench", "-m"])
        .arg(common::smollm2())
        .args(["-p", "0", "-n", "0"])
        .env("PADDOCK_BENCH_HISTORY", &history)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing to measure"), "{stderr}");
    assert!(!history.exists());
}

fn bench_server(name: &str) -> TestServer {
    let mut settings = common::settings(|_| {});
    settings.bench_history = Some(temp_history(name));
    TestServer::start(settings)
}

#[tokio::test]
async fn the_api_runs_a_benchmark_alone_with_progress_then_serves_again() {
    let server = bench_server("api");
    let base = server.url.clone();
    let watcher = tokio::spawn(common::watch_status(base.clone(), |s| {
        s["bench"]["state"] == "done" && s["model"]["id"] == common::SMOLLM2_ID
    }));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body = json!({"model": common::SMOLLM2_ID, "n_prompt": [64, 128], "n_gen": [32], "repetitions": 2});
    let (code, started) = send(&server, reqwest::Method::POST, "/api/bench", body.clone()).await;
    assert_eq!(code, 202, "{started}");
    assert_eq!(started["state"], "running");
    assert!(
        started["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("unloaded SmolLM2"),
        "{started}"
    );

    // It has the machine: inference is refused with a reason and a retry hint, a second
    // benchmark is refused, and the status says why.
    let chat = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&common::chat("Hi", 4))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status().as_u16(), 503);
    assert_eq!(chat.headers()["retry-after"], "60");
    let error: Value = chat.json().await.unwrap();
    assert_eq!(error["error"]["code"], "paused");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("benchmark"));
    let (code, again) = send(&server, reqwest::Method::POST, "/api/bench", body).await;
    assert_eq!(code, 409, "{again}");
    assert_eq!(again["error"]["code"], "benchmark_running");

    let events = watcher.await.unwrap();
    let running: Vec<&Value> = events
        .iter()
        .filter(|s| s["bench"]["state"] == "running")
        .collect();
    assert!(running
        .iter()
        .any(|s| s["paused"].is_string() && s["model"].is_null()));
    assert!(
        running.iter().any(|s| s["bench"]["current"] == "pp128"),
        "progress names the test"
    );
    let dones: Vec<u64> = running
        .iter()
        .filter_map(|s| s["bench"]["done"].as_u64())
        .collect();
    assert!(dones.windows(2).all(|w| w[0] <= w[1]), "{dones:?}");
    assert!(running.iter().any(|s| s["bench"]["total"] == 6));
    let last = events.last().unwrap();
    assert!(last["paused"].is_null());
    let run_id = last["bench"]["run_id"].as_str().expect("saved").to_string();

    // Serving again, with the same model.
    let (code, chat) = send(
        &server,
        reqwest::Method::POST,
        "/v1/chat/completions",
        common::chat("Hi", 4),
    )
    .await;
    assert_eq!(code, 200, "{chat}");

    let (_, runs) = get(&server, "/api/bench/runs").await;
    let run = &runs["runs"][0];
    assert_eq!(run["id"], run_id.as_str());
    schema(run);
    assert_eq!(run["results"][1]["n_prompt_decoded"], json!([128, 128]));
    assert!(run["notes"][0].as_str().unwrap().starts_with("unloaded"));

    let md = reqwest::get(server.url(&format!("/api/bench/runs/{run_id}?format=md")))
        .await
        .unwrap();
    assert!(md.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let md = md.text().await.unwrap();
    let pp64 = run["results"][0]["avg_ts"].as_f64().unwrap();
    assert!(md.contains(&format!("| pp64 | {pp64:.2} ±")), "{md}");
    let (_, csv) = get(&server, &format!("/api/bench/runs/{run_id}?format=csv")).await;
    let csv = csv.as_str().unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let (code, bad) = get(&server, &format!("/api/bench/runs/{run_id}?format=xml")).await;
    assert_eq!(
        (code, bad["error"]["param"].as_str()),
        (400, Some("format"))
    );

    let path = format!("/api/bench/runs/{run_id}");
    let (code, _) = send(&server, reqwest::Method::DELETE, &path, Value::Null).await;
    assert_eq!(code, 204);
    let (code, gone) = send(&server, reqwest::Method::DELETE, &path, Value::Null).await;
    assert_eq!(code, 404, "{gone}");
}

#[tokio::test]
async fn a_cancelled_benchmark_saves_nothing_and_gives_the_model_back() {
    let server = bench_server("cancel");
    let (code, none) = send(&server, reqwest::Method::DELETE, "/api/bench", Value::Null).await;
    assert_eq!(code, 404, "{none}");
    let watcher = tokio::spawn(common::watch_status(server.url.clone(), |s| {
        s["bench"]["done"].as_u64() >= Some(1)
    }));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body =
        json!({"model": common::SMOLLM2_ID, "n_prompt": [256], "n_gen": [], "repetitions": 100});
    let (code, started) = send(&server, reqwest::Method::POST, "/api/bench", body).await;
    assert_eq!(code, 202, "{started}");
    watcher.await.unwrap();
    let (code, _) = send(&server, reqwest::Method::DELETE, "/api/bench", Value::Null).await;
    assert_eq!(code, 202);
    let events = common::watch_status(server.url.clone(), |s| {
        s["bench"]["state"] == "cancelled" && s["model"]["id"] == common::SMOLLM2_ID
    })
    .await;
    assert!(events.last().unwrap()["bench"]["done"].as_u64().unwrap() < 100);
    let (_, runs) = get(&server, "/api/bench/runs").await;
    assert_eq!(runs["runs"], json!([]));
}

#[tokio::test]
async fn bad_benchmark_requests_get_openai_errors_and_change_nothing() {
    let server = bench_server("bad");
    let cases = [
        (json!({"model": "no-such-model"}), 404, Some("model")),
        (
            json!({"model": common::SMOLLM2_ID, "n_prompt": [0], "n_gen": [0]}),
            400,
            None,
        ),
        (
            json!({"model": common::SMOLLM2_ID, "repetitions": 1000}),
            400,
            None,
        ),
        (
            json!({"model": common::SMOLLM2_ID, "n_prompt": [4294967295u32]}),
            400,
            None,
        ),
        (
            json!({"model": common::SMOLLM2_ID, "n_promt": [64]}),
            400,
            None,
        ),
        (
            json!({"model": common::SMOLLM2_ID, "n_prompt": "512"}),
            400,
            None,
        ),
        (json!({"n_prompt": [64]}), 400, None),
    ];
    for (body, status, param) in cases {
        let (code, error) = send(&server, reqwest::Method::POST, "/api/bench", body.clone()).await;
        assert_eq!(code, status, "{body} → {error}");
        assert!(error["error"]["message"].is_string(), "{error}");
        if param.is_some() {
            assert_eq!(error["error"]["param"].as_str(), param);
        }
    }
    let (code, missing) = get(&server, "/api/bench/runs/nope").await;
    assert_eq!(code, 404, "{missing}");
    let (_, status) = get(&server, "/api/status").await;
    assert!(status["bench"].is_null() && status["paused"].is_null());
    assert_eq!(status["model"]["id"], common::SMOLLM2_ID);
}
