#!/usr/bin/env python3
"""Paddock over RPC workers vs llama.cpp's own tools over theirs, on one machine (loopback).

Four setups, each measured by its own tool, alternating over rounds (the order flips each
round, so neither side always runs on a warmer machine):

  local     paddock bench                      llama-bench
  1 worker  paddock bench --rpc (paddock       llama-bench --rpc (rpc-server)
            worker)

Prints a markdown table of tokens/s (mean over rounds) and the ratios Paddock / llama.cpp.
Needs build/peer/{llama-bench,rpc-server} (scripts/build-peer.sh) and a release build of
Paddock. docs/rpc.md has the results.

    python3 scripts/bench_rpc.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf --rounds 2
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import free_port, log, mean, parse_bench_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Worker:
    """A worker (Paddock's or llama.cpp's) on a free loopback port, for one measurement."""

    def __init__(self, side: str, a):
        self.port = free_port()
        if side == "paddock":
            cmd = [str(a.paddock_bin), "worker", "--port", str(self.port), "-t", str(a.threads)]
        else:
            cmd = [str(a.peer_dir / "rpc-server"), "-H", "127.0.0.1", "-p", str(self.port),
                   "-t", str(a.threads)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{side} worker never listened: {cmd}")
                time.sleep(0.1)
        # A connection that sends nothing is served and closed; let the worker go back to accept.
        time.sleep(0.5)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(side: str, remote: bool, a) -> dict:
    worker = Worker(side, a) if remote else None
    common = ["-p", str(a.n_prompt), "-n", str(a.n_gen), "-t", str(a.threads),
              "-r", str(a.reps), "-o", "json"]
    if worker:
        common += ["--rpc", f"127.0.0.1:{worker.port}"]
    if side == "paddock":
        cmd = [str(a.paddock_bin), "bench", "--model", str(a.model), "--no-history", *common]
    else:
        cmd = [str(a.peer_dir / "llama-bench"), "-m", str(a.model), "-ngl", "99", *common]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    finally:
        if worker:
            worker.close()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    res = parse_bench_json(p.stdout, side)
    out = {t: res[t]["avg_ts"] for t in (f"pp{a.n_prompt}", f"tg{a.n_gen}")}
    log(f"{side} {'1 worker' if remote else 'local'}: {out}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--paddock-bin", type=Path, default=ROOT / "target/release/paddock")
    ap.add_argument("--peer-dir", type=Path, default=ROOT / "build/peer")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()

    setups = [("local", False), ("1 worker", True)]
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(a.rounds):
        sides = ["paddock", "llama.cpp"] if r % 2 == 0 else ["llama.cpp", "paddock"]
        for name, remote in setups:
            for side in sides:
                runs.setdefault((name, side), []).append(measure(side, remote, a))

    tests = [f"pp{a.n_prompt}", f"tg{a.n_gen}"]
    print(f"| setup | {' | '.join(f'{t} Paddock | {t} llama.cpp | ratio' for t in tests)} |")
    print("|---|" + "---|---|---|" * len(tests))
    for name, _ in setups:
        cells = []
        for t in tests:
            ours = mean([x[t] for x in runs[(name, "paddock")]])
            theirs = mean([x[t] for x in runs[(name, "llama.cpp")]])
            cells += [f"{ours:.1f}", f"{theirs:.1f}", f"{ours / theirs:.2f}"]
        print(f"| {name} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
