#!/usr/bin/env python3
"""A bounded loopback load on `paddock serve`: N clients, each on its own connection, send chat
completions back to back (half of them streamed) for a while. Passes when:

- every answer is a 200, or a 503 in OpenAI's error shape with a Retry-After header (the queue
  bound; the client waits that long and goes on), never anything else, never a dropped
  connection or a hang;
- the server's resident memory after the warm-up is flat: its growth from the first to the last
  quarter of the run stays under --max-growth-mib (a leak of a few KiB a request shows);
- at the end every slot is idle and a fresh request is answered.

It records p50/p90/p99 latency (and time to first token for streams), throughput and the memory
series, writes them as JSON, and draws the memory and latency as an SVG for docs/reliability.md.

    .venv/bin/python scripts/load_test.py --binary target/release/paddock \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --clients 64 --seconds 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROMPTS = [
    "Write a Python function that reverses a string.",
    "What is a hash map?",
    "List three prime numbers.",
    "Explain recursion in one sentence.",
    "Name a sorting algorithm and its complexity.",
    "What does HTTP 503 mean?",
    "Give a haiku about servers.",
    "How do I read a file in Rust?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Load:
    def __init__(self, base: str, seconds: float, max_tokens: int):
        self.base = base
        self.deadline = time.monotonic() + seconds
        self.max_tokens = max_tokens
        self.latency: list[float] = []
        self.ttft: list[float] = []
        self.tokens = 0
        self.busy = 0  # 503s
        self.failures: list[str] = []

    def fail(self, what: str) -> None:
        if len(self.failures) < 20:
            print(f"FAIL {what}", file=sys.stderr)
        self.failures.append(what)

    async def client(self, index: int) -> None:
        rng = random.Random(index)
        # One connection per client, as 64 separate agents would have.
        async with httpx.AsyncClient(base_url=self.base, timeout=httpx.Timeout(600.0)) as http:
            while time.monotonic() < self.deadline:
                body = {
                    "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                    "max_tokens": rng.randint(self.max_tokens // 2, self.max_tokens),
                    "temperature": 0.7,
                    "seed": rng.randint(0, 1 << 30),
                }
                stream = index % 2 == 0
                started = time.monotonic()
                try:
                    wait = await (self.streamed(http, body, started) if stream else self.plain(http, body))
                except (httpx.HTTPError, json.JSONDecodeError, KeyError) as e:
                    self.fail(f"client {index}: {type(e).__name__}: {e}")
                    await asyncio.sleep(1)
                    continue
                if wait is None:
                    self.latency.append(time.monotonic() - started)
                else:
                    await asyncio.sleep(wait)

    def busy_answer(self, r: httpx.Response, text: str) -> float | None:
        """None when `r` is not a 503; else how long to wait (its Retry-After)."""
        if r.status_code != 503:
            self.fail(f"status {r.status_code}: {text[:200]}")
            return 1.0
        error = json.loads(text).get("error", {})
        after = r.headers.get("retry-after")
        if not after or not error.get("message"):
            self.fail(f"503 without Retry-After or an OpenAI error: {r.headers} {text[:200]}")
            return 1.0
        self.busy += 1
        return float(after)

    async def plain(self, http: httpx.AsyncClient, body: dict) -> float | None:
        r = await http.post("/v1/chat/completions", json=body)
        if r.status_code != 200:
            return self.busy_answer(r, r.text)
        done = r.json()
        if done["choices"][0]["finish_reason"] not in ("stop", "length"):
            self.fail(f"finish_reason {done['choices'][0]['finish_reason']}")
        self.tokens += done["usage"]["completion_tokens"]
        return None

    async def streamed(self, http: httpx.AsyncClient, body: dict, started: float) -> float | None:
        async with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            if r.status_code != 200:
                return self.busy_answer(r, (await r.aread()).decode())
            first, ended, pieces = None, False, 0
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    ended = True
                    break
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    first = first or time.monotonic()
                    pieces += 1
            if not ended:
                self.fail("a stream ended without [DONE]")
            if first is not None:
                self.ttft.append(first - started)
            self.tokens += pieces
        return None


async def sample_memory(pid: int, every: float, until: float, series: list) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        series.append((round(time.monotonic() - start, 1), round(rss_mib(pid), 1)))
        await asyncio.sleep(every)


def svg(series: list, latency: list[float], title: str) -> str:
    """Two small panels: resident memory over time, and the latency distribution."""
    w, h, pad = 720, 260, 48
    xs = [t for t, _ in series] or [0]
    ys = [m for _, m in series] or [0]
    lo, hi = 0.0, max(ys) * 1.15 + 1
    tmax = max(xs) or 1

    def px(t, m):
        return pad + (t / tmax) * (w / 2 - pad - 10), h - pad - (m - lo) / (hi - lo) * (h - 2 * pad)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (px(t, m) for t, m in series))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w/2}" y="16" text-anchor="middle" font-size="13">{title}</text>',
           f'<text x="{pad}" y="34">resident memory (MiB) over the run (s)</text>',
           f'<polyline fill="none" stroke="#2a6fdb" stroke-width="2" points="{points}"/>',
           f'<line x1="{pad}" y1="{h-pad}" x2="{w/2-10}" y2="{h-pad}" stroke="#888"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="#888"/>']
    for frac in (0, 0.5, 1):
        m = lo + frac * (hi - lo)
        out.append(f'<text x="{pad-4}" y="{px(0, m)[1]+4:.1f}" text-anchor="end">{m:.0f}</text>')
        out.append(f'<text x="{px(frac*tmax, 0)[0]:.1f}" y="{h-pad+14}" text-anchor="middle">{frac*tmax:.0f}</text>')
    # Latency histogram, right panel.
    if latency:
        left, right = w / 2 + pad, w - 16
        top = h - pad
        bins = 24
        edge = percentile(latency, 99.5) or 1
        counts = [0] * bins
        for v in latency:
            counts[min(bins - 1, int(v / edge * bins))] += 1
        peak = max(counts) or 1
        bw = (right - left) / bins
        out.append(f'<text x="{left}" y="34">request latency (s), p50 / p99 marked</text>')
        for i, c in enumerate(counts):
            bh = c / peak * (h - 2 * pad)
            out.append(f'<rect x="{left+i*bw:.1f}" y="{top-bh:.1f}" width="{bw-1:.1f}" height="{bh:.1f}" fill="#7aa6e8"/>')
        for p, colour, y in ((50, "#333", pad + 10), (99, "#d33", pad + 24)):
            x = left + min(percentile(latency, p) / edge, 1) * (right - left)
            out.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{top}" stroke="{colour}" stroke-dasharray="4 3"/>')
            # Labels near the right edge go on the line's left, so they are not cut off.
            anchor, dx = ("end", -3) if x > right - 60 else ("start", 3)
            out.append(f'<text x="{x+dx:.1f}" y="{y}" fill="{colour}" text-anchor="{anchor}">'
                       f'p{p} {percentile(latency, p):.1f}</text>')
        out.append(f'<line x1="{left}" y1="{top}" x2="{right}" y2="{top}" stroke="#888"/>')
        for frac in (0, 0.5, 1):
            out.append(f'<text x="{left+frac*(right-left):.1f}" y="{top+14}" text-anchor="middle">{frac*edge:.1f}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/paddock")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--warmup", type=float, default=None, help="seconds before memory counts (default: a quarter)")
    ap.add_argument("--parallel", type=int, default=4, help="slots")
    ap.add_argument("--max-queue", type=int, default=16, help="the queue bound (64 clients > slots + queue: 503s happen)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-growth-mib", type=float, default=24.0)
    ap.add_argument("--out", default="build/load")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(out / "server.log", "w")
    server = subprocess.Popen(
        [args.binary, "serve", "-m", args.model, "--port", str(port), "-t", str(args.threads),
         "-np", str(args.parallel), "-c", str(1024 * args.parallel), "--max-queue", str(args.max_queue)],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()
        if "http://" not in line:
            print(f"the server did not start: {line!r}; see {out/'server.log'}", file=sys.stderr)
            return 1
        base = f"http://127.0.0.1:{port}"
        load = Load(base, args.seconds, args.max_tokens)
        series: list = []

        async def run():
            sampler = asyncio.create_task(sample_memory(server.pid, 2.0, load.deadline, series))
            await asyncio.gather(*(load.client(i) for i in range(args.clients)))
            await sampler

        began = time.monotonic()
        asyncio.run(run())
        elapsed = time.monotonic() - began

        # Every slot idle, nothing queued, and a fresh request answered.
        slots = httpx.get(f"{base}/slots").json()
        idle = all(s["state"] == "idle" for s in slots)
        fresh = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0})
        served_after = fresh.status_code == 200 and fresh.json()["usage"]["completion_tokens"] > 0

        warm = args.warmup if args.warmup is not None else args.seconds / 4
        after_warmup = [m for t, m in series if t >= warm]
        quarter = max(1, len(after_warmup) // 4)
        growth = (statistics.median(after_warmup[-quarter:]) - statistics.median(after_warmup[:quarter])
                  if after_warmup else float("nan"))
        summary = {
            "date": time.strftime("%Y-%m-%d"),
            "clients": args.clients, "seconds": round(elapsed, 1), "slots": args.parallel,
            "max_queue": args.max_queue, "max_tokens": args.max_tokens,
            "requests_ok": len(load.latency), "busy_503": load.busy, "failures": len(load.failures),
            "tokens": load.tokens, "tokens_per_s": round(load.tokens / elapsed, 1),
            "latency_s": {p: round(percentile(load.latency, q), 2) for p, q in (("p50", 50), ("p90", 90), ("p99", 99))},
            "ttft_s": {p: round(percentile(load.ttft, q), 2) for p, q in (("p50", 50), ("p99", 99))},
            "rss_mib": {"start": series[0][1] if series else None, "peak": max((m for _, m in series), default=None),
                        "end": series[-1][1] if series else None, "growth_after_warmup": round(growth, 1)},
            "slots_idle_at_end": idle, "served_after": served_after,
            "rss_series": series,
        }
        (out / "load.json").write_text(json.dumps(summary, indent=1))
        (out / "load.svg").write_text(svg(series, load.latency,
                                          f"{args.clients} clients, {args.parallel} slots, queue {args.max_queue}, {elapsed:.0f} s"))
        shown = {k: v for k, v in summary.items() if k != "rss_series"}
        print(json.dumps(shown, indent=1))

        problems = []
        if load.failures:
            problems.append(f"{len(load.failures)} failed requests (first: {load.failures[0]})")
        if not load.latency:
            problems.append("no request succeeded")
        if not idle:
            problems.append(f"slots still busy at the end: {slots}")
        if not served_after:
            problems.append(f"no answer after the load: {fresh.status_code} {fresh.text[:200]}")
        if not growth < args.max_growth_mib:
            problems.append(f"resident memory grew {growth:.1f} MiB after the warm-up (limit {args.max_growth_mib})")
        # SIGTERM as a service manager sends it: the server drains and exits 0.
        server.terminate()
        code = server.wait(timeout=120)
        if code != 0:
            problems.append(f"the server exited {code} after SIGTERM")
        for p in problems:
            print(f"LOAD TEST FAILED: {p}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        if server.poll() is None:
            server.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
