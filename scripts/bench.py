#!/usr/bin/env python3
"""Peer comparison: Paddock vs llama.cpp's own tools, same model, same threads, same machine.

Reports RATIOS Paddock / llama.cpp (absolute numbers depend on the machine; ratios much less):

  a. engine   pp512, a long pp (4096) and tg128 tokens/s: `paddock bench` vs `llama-bench` (goal >= 0.98)
  b. http     streamed decode tokens/s over HTTP, 1 client and 4 concurrent clients (aggregate):
              `paddock serve` vs `llama-server` (goal >= 1.0)
  c. prefix   TTFT of a second chat turn that shares a ~6000-token prefix, divided by the TTFT of
              the cold first turn, per server (goal <= 0.10)

Servers are run one at a time (never both), restarted every round, and the order alternates
between rounds so slow drift of the machine (heat, background load) hits both sides equally.

Usage: scripts/bench.sh [args]   (builds everything first)   or   .venv/bin/python scripts/bench.py --help
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("paddock", "peer")
LABEL = {"paddock": "Paddock", "peer": "llama.cpp"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# a. engine
# --------------------------------------------------------------------------------------------


def parse_bench_json(text: str, who: str) -> dict:
    """llama-bench's JSON array, or Paddock's run object (its `results` are llama-bench's rows)
    -> {"pp512": {"avg_ts", "stddev_ts", ...}, "pp4096": ..., "tg128": ...}."""
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise RuntimeError(f"{who}: no JSON in output:\n{text[-2000:]}")
    data = json.loads(text[start:])
    rows = data["results"] if isinstance(data, dict) else data
    out = {}
    for r in rows:
        n_prompt, n_gen = int(r.get("n_prompt", 0)), int(r.get("n_gen", 0))
        if int(r.get("n_depth", 0)):
            continue
        key = f"pp{n_prompt}" if n_gen == 0 else f"tg{n_gen}" if n_prompt == 0 else None
        if key:
            out[key] = {"avg_ts": float(r["avg_ts"]), "stddev_ts": float(r.get("stddev_ts", 0.0)),
                        "n_prompt": n_prompt, "n_gen": n_gen}
    return out


def engine_cmd(side: str, a) -> list[str]:
    common = ["-p", ",".join(map(str, a.n_prompt)), "-n", str(a.n_gen), "-t", str(a.threads),
              "-r", str(a.reps), "-o", "json"]
    if side == "peer":
        return [str(a.peer_dir / "llama-bench"), "-m", str(a.model), *common]
    return [str(a.paddock_bin), "bench", "--model", str(a.model), "--no-history", *common]


def run_engine(side: str, a) -> dict:
    cmd = engine_cmd(side, a)
    log(f"engine/{side}: {' '.join(cmd)}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.cmd_timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{side} bench failed (rc={p.returncode}):\n{p.stderr[-3000:]}")
    res = parse_bench_json(p.stdout, side)
    missing = [t for t in engine_tests(a) if t not in res]
    if missing:
        raise RuntimeError(f"{side}: no result for {missing} in {sorted(res)}")
    log(f"engine/{side}: " + ", ".join(f"{t} {res[t]['avg_ts']:.1f} t/s" for t in engine_tests(a)))
    return res


def engine_tests(a) -> list[str]:
    return [f"pp{n}" for n in a.n_prompt] + [f"tg{a.n_gen}"]


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, side: str, a, logdir: Path):
        self.side, self.a = side, a
        self.port = free_port()
        flags = ["--port", str(self.port), "-c", str(a.ctx), "--parallel", str(a.parallel), "-t", str(a.threads)]
        if side == "peer":
            self.cmd = [str(a.peer_dir / "llama-server"), "-m", str(a.model), "--host", "127.0.0.1",
                        "--alias", a.model_id, *flags, *a.peer_server_args.split()]
        else:
            self.cmd = [str(a.paddock_bin), "serve", "--model", str(a.model), *flags, *a.paddock_server_args.split()]
        self.logpath = logdir / f"server-{side}.log"
        self.proc = None

    def __enter__(self):
        log(f"start {self.side}: {' '.join(self.cmd)}")
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + self.a.health_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.side} server exited rc={self.proc.returncode}; see {self.logpath}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    c.close()
                    return self
                c.close()
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.side} server not healthy after {self.a.health_timeout}s; see {self.logpath}")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()
        time.sleep(0.5)  # let the OS settle (page cache, CPU) before the next side starts


def stream_chat(port: int, body: dict, timeout: float = 600) -> dict:
    """POST a streaming chat completion; return timing of content tokens and the usage."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body=json.dumps(body),
              headers={"Content-Type": "application/json", "Authorization": "Bearer none"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:2000]!r}")
    t_first = t_last = None
    n_content = 0
    usage = None
    text = []
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        if ev.get("usage"):
            usage = ev["usage"]
        for ch in ev.get("choices") or []:
            piece = (ch.get("delta") or {}).get("content")
            if piece:
                now = time.perf_counter()
                t_first = t_first if t_first is not None else now
                t_last = now
                n_content += 1
                text.append(piece)
    c.close()
    if t_first is None:
        raise RuntimeError("stream produced no content")
    return {"t0": t0, "t_first": t_first, "t_last": t_last, "ttft": t_first - t0,
            "n_content_chunks": n_content, "usage": usage, "text": "".join(text)}


def decode_request(a, client_idx: int) -> dict:
    return {
        "model": a.model_id,
        "messages": [{"role": "user", "content": f"Client {client_idx}: write a long story about a lighthouse keeper."}],
        "max_tokens": a.n_gen,
        "temperature": 0,
        "ignore_eos": True,
    }


def decoded_tokens(res: dict) -> int:
    u = res["usage"] or {}
    n = int(u.get("completion_tokens") or res["n_content_chunks"])
    return max(n - 1, 0)  # the first token comes out of prefill


def run_http(srv: Server, a) -> dict:
    # warm-up: page in weights, first-request allocations
    stream_chat(srv.port, dict(decode_request(a, 99), max_tokens=8))
    one = stream_chat(srv.port, decode_request(a, 0))
    tps1 = decoded_tokens(one) / (one["t_last"] - one["t_first"])

    results: list[dict | Exception] = [None] * a.clients  # type: ignore[list-item]

    def worker(i):
        try:
            results[i] = stream_chat(srv.port, decode_request(a, i + 1))
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errs = [r for r in results if isinstance(r, Exception)]
    if errs:
        raise RuntimeError(f"{srv.side}: concurrent client failed: {errs[0]}")
    span = max(r["t_last"] for r in results) - min(r["t_first"] for r in results)
    tpsN = sum(decoded_tokens(r) for r in results) / span
    if (one["usage"] or {}).get("completion_tokens") not in (None, a.n_gen):
        log(f"warning: {srv.side} produced {one['usage'].get('completion_tokens')} tokens, not {a.n_gen} (ignore_eos unsupported?)")
    log(f"http/{srv.side}: 1 client {tps1:.1f} t/s, {a.clients} clients {tpsN:.1f} t/s aggregate")
    return {"tg_1": tps1, f"tg_{a.clients}": tpsN, "ttft_1": one["ttft"]}


def prefix_text(n_tokens_approx: int) -> str:
    # Source-code-like text; roughly 30 tokens per line for common BPE tokenizers.
    lines = []
    i = 0
    while len(lines) * 30 < n_tokens_approx:
        lines.append(f"    let value_{i} = compute_{i % 17}(input[{i}], &config.field_{i % 11})?; // step {i}")
        i += 1
    return "fn pipeline(input: &[u32], config: &Config) -> Result<u32> {\n" + "\n".join(lines) + "\n}\n"


def run_prefix(srv: Server, a) -> dict:
    body_text = prefix_text(a.prefix_tokens)
    msgs = [
        {"role": "system", "content": f"Review session {uuid.uuid4().hex}. You are a careful code reviewer."},
        {"role": "user", "content": body_text + "\nSummarize what this function does in one sentence."},
    ]
    base = {"model": a.model_id, "temperature": 0, "max_tokens": 16}
    cold = stream_chat(srv.port, dict(base, messages=msgs))
    msgs2 = msgs + [
        {"role": "assistant", "content": cold["text"]},
        {"role": "user", "content": "Is there any error handling?"},
    ]
    warm = stream_chat(srv.port, dict(base, messages=msgs2))
    cu, wu = cold["usage"] or {}, warm["usage"] or {}
    cached = ((wu.get("prompt_tokens_details") or {}).get("cached_tokens"))
    ratio = warm["ttft"] / cold["ttft"]
    log(f"prefix/{srv.side}: prompt {cu.get('prompt_tokens')} tok, cold TTFT {cold['ttft']*1000:.0f} ms, "
        f"warm TTFT {warm['ttft']*1000:.0f} ms (cached {cached}), warm/cold {ratio:.3f}")
    return {"cold_ttft": cold["ttft"], "warm_ttft": warm["ttft"], "warm_over_cold": ratio,
            "cold_prompt_tokens": cu.get("prompt_tokens"), "warm_prompt_tokens": wu.get("prompt_tokens"),
            "warm_cached_tokens": cached}


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "loadavg": os.getloadavg()}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001
        return "unknown"


def mean(xs):
    return statistics.fmean(xs) if xs else None


def sd(xs):
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def order_for_round(r: int, sides: list[str]) -> list[str]:
    return sides if r % 2 == 0 else list(reversed(sides))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", "-t", type=int, default=2)
    ap.add_argument("--only", choices=["both", "peer", "paddock"], default="both",
                    help="measure only one side (ratios need both)")
    ap.add_argument("--sections", default="engine,http,prefix", help="comma list of engine,http,prefix")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per section (default 3)")
    ap.add_argument("--reps", "-r", type=int, default=3, help="llama-bench -r inside one engine run")
    ap.add_argument("--n-prompt", type=lambda v: [int(x) for x in v.split(",")], default=[512, 4096],
                    help="comma list of prompt sizes; ratios for each (default 512,4096: pp512 and a long one)")
    ap.add_argument("--n-gen", type=int, default=128)
    ap.add_argument("--ctx", "-c", type=int, default=8192)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--prefix-tokens", type=int, default=6000)
    ap.add_argument("--peer-dir", type=Path, default=ROOT / "build/peer")
    ap.add_argument("--paddock-bin", type=Path, default=ROOT / "target/release/paddock")
    ap.add_argument("--peer-server-args", default="--kv-unified",
                    help="extra llama-server flags (default --kv-unified: one shared KV pool, so a single "
                         "slot may use the whole -c, which the 6000-token prefix needs with --parallel 4)")
    ap.add_argument("--paddock-server-args", default="")
    ap.add_argument("--health-timeout", type=float, default=120)
    ap.add_argument("--cmd-timeout", type=float, default=600)
    ap.add_argument("--out", type=Path, default=ROOT / "build/bench/result.json")
    ap.add_argument("--strict-quiet", action="store_true", help="abort if the machine is not quiet")
    a = ap.parse_args()
    a.model_id = a.model.stem
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    sides = list(SIDES) if a.only == "both" else [a.only]

    if not a.model.is_file():
        log(f"model missing: {a.model} (run scripts/fetch-models.sh)")
        return 2
    for side in sides:
        need = [a.peer_dir / "llama-bench", a.peer_dir / "llama-server"] if side == "peer" else [a.paddock_bin]
        for p in need:
            if not os.access(p, os.X_OK):
                log(f"missing binary {p} (run scripts/build-peer.sh / cargo build --release)")
                return 2
    for name in ("llama-server", "paddock"):
        if shutil.which("pgrep") and subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0:
            log(f"warning: a '{name}' process is already running; results will be disturbed")

    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        log(f"WARNING: machine is not quiet (1-min load average {load1:.2f} > 0.5); numbers will be noisy")
        if a.strict_quiet:
            return 3

    logdir = a.out.parent
    logdir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    raw: dict = {s: {sec: [] for sec in sections} for s in sides}

    if "engine" in sections:
        for r in range(a.rounds):
            for side in order_for_round(r, sides):
                raw[side]["engine"].append(run_engine(side, a))

    if "http" in sections or "prefix" in sections:
        for r in range(a.rounds):
            for side in order_for_round(r, sides):
                with Server(side, a, logdir) as srv:
                    if "http" in sections:
                        raw[side]["http"].append(run_http(srv, a))
                    if "prefix" in sections:
                        raw[side]["prefix"].append(run_prefix(srv, a))

    # ---- aggregate -------------------------------------------------------------------------
    metrics: dict = {}  # name -> {side: (mean, sd)}

    def put(name, side, xs):
        metrics.setdefault(name, {})[side] = {"mean": mean(xs), "sd": sd(xs), "n": len(xs), "values": xs}

    for side in sides:
        if raw[side].get("engine"):
            for t in engine_tests(a):
                put(f"{t} t/s (engine)", side, [x[t]["avg_ts"] for x in raw[side]["engine"]])
        if raw[side].get("http"):
            put("HTTP stream tg t/s, 1 client", side, [x["tg_1"] for x in raw[side]["http"]])
            put(f"HTTP stream tg t/s, {a.clients} clients aggregate", side,
                [x[f"tg_{a.clients}"] for x in raw[side]["http"]])
        if raw[side].get("prefix"):
            put(f"prefix cold TTFT s (~{a.prefix_tokens} tok)", side, [x["cold_ttft"] for x in raw[side]["prefix"]])
            put("prefix warm TTFT s (2nd turn)", side, [x["warm_ttft"] for x in raw[side]["prefix"]])
            put("prefix warm/cold TTFT", side, [x["warm_over_cold"] for x in raw[side]["prefix"]])

    goals = {  # metric -> (kind, goal) ; kind "ratio>=" compares paddock/peer, "each<=" each side's value
        **{f"{t} t/s (engine)": ("ratio>=", 0.98) for t in engine_tests(a)},
        "HTTP stream tg t/s, 1 client": ("ratio>=", 1.0),
        f"HTTP stream tg t/s, {a.clients} clients aggregate": ("ratio>=", 1.0),
        "prefix warm/cold TTFT": ("each<=", 0.10),
    }

    rows = []
    ratios = {}
    for name, by_side in metrics.items():
        pm = by_side.get("paddock", {}).get("mean")
        qm = by_side.get("peer", {}).get("mean")
        ratio = pm / qm if pm is not None and qm else None
        ratios[name] = ratio
        kind, goal = goals.get(name, (None, None))
        verdict = ""
        if kind == "ratio>=" and ratio is not None:
            verdict = "ok" if ratio >= goal else "MISS"
        elif kind == "each<=":
            parts = []
            if pm is not None:
                parts.append("ok" if pm <= goal else "MISS")
            if qm is not None:
                parts.append(f"(peer {'ok' if qm <= goal else 'miss'})")
            verdict = " ".join(parts)
        goal_s = "" if goal is None else (f"≥ {goal}" if kind == "ratio>=" else f"≤ {goal} (each)")

        def fmt(side):
            d = by_side.get(side)
            if not d:
                return "n/a"
            return f"{d['mean']:.3f} ± {d['sd']:.3f}" if d["mean"] < 10 else f"{d['mean']:.1f} ± {d['sd']:.1f}"

        rows.append((name, fmt("paddock"), fmt("peer"), "n/a" if ratio is None else f"{ratio:.3f}", goal_s, verdict))

    peer_version = ""
    vfile = a.peer_dir / "VERSION"
    if vfile.is_file():
        peer_version = vfile.read_text().strip()

    header = ["metric", "Paddock", "llama.cpp", "Paddock ÷ llama.cpp", "goal", "verdict"]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    md = "\n".join(table)

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_at_start": load1,
        "paddock_rev": git_rev(),
        "peer_version": peer_version,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "sides": sides,
        "metrics": metrics,
        "ratios_paddock_over_peer": ratios,
        "raw": raw,
        "table_markdown": md,
        "runtime_s": round(time.time() - t_start, 1),
    }
    a.out.write_text(json.dumps(result, indent=2))
    print()
    print(f"model {a.model.name}, threads {a.threads}, rounds {a.rounds}; peer: {peer_version.splitlines()[0] if peer_version else '?'}")
    print(md)
    print()
    log(f"wrote {a.out} ({result['runtime_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
