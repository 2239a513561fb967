#!/usr/bin/env python3
"""Speculative decoding: generation speed with guessing on and off, on a code edit (the answer
copies a file from the prompt) and on free text, for Paddock (n-gram lookup, its default) and
llama-server (`--spec-type ngram-simple`), same model, threads and machine.

Per side, a server with guessing off and one with it on run side by side (started fresh per
round, sides alternating between rounds), and requests alternate between them. Greedy output should be the same with and without guessing: the table shows how much
of it is (llama.cpp's rounding depends on the batch's shape, so a near-tie late in a long answer
can flip, for either server).
Reports decode tokens/s (each server's own `timings.predicted_per_second`), the acceptance, and
the ratios on/off and Paddock/llama.cpp.

With --mtp the guesses come from the model's own MTP heads instead (Paddock with the lookup
off, llama-server with `--spec-type draft-mtp`, both at most 3 a step, llama-server's default),
on a model that has them, e.g. the synthetic ones of scripts/fetch-models.sh synthetic.

Usage: scripts/bench.sh builds everything; then .venv/bin/python scripts/bench_spec.py [--rounds 3]
       .venv/bin/python scripts/bench_spec.py --mtp --model models/synthetic/mtp-echo.gguf
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, Server, git_rev, log, machine_info, mean, order_for_round, sd  # noqa: E402

SOURCE = (ROOT / "tests/data/edit_source.py").read_text()


def chatml(user: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


# The same prompts as tests/speculation.rs: the answer's code fence is opened in the prompt.
WORKLOADS = {
    "code edit": chatml("Rename the function `merge_configs` to `combine_configs` in this file and print "
                        f"the whole file.\n\n```python\n{SOURCE}```") + "```python\n",
    "free text": chatml("Write a short story about a dragon who learns to paint."),
}

# Per side, a server with guessing off and one with it on (each side's own default lookup),
# both started fresh per round; requests alternate between the two, so both see the same
# machine. An idle server takes no CPU.
SERVERS = {
    "Paddock": ("paddock", ["--draft-max", "0"], []),
    "llama.cpp": ("peer", [], ["--spec-type", "ngram-simple"]),
}
MTP_SERVERS = {
    "Paddock": ("paddock", ["--draft-max", "0"], ["--no-spec-ngram", "--draft-max", "3"]),
    "llama.cpp": ("peer", [], ["--spec-type", "draft-mtp", "--spec-draft-n-max", "3"]),
}
# The synthetic MTP models' output does not depend on what is asked; one prompt is enough.
MTP_WORKLOADS = {"chat": chatml("Hello there")}


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def complete(port: int, prompt: str, n: int) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = {"prompt": prompt, "max_tokens": n, "temperature": 0}
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read())
    c.close()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {data}")
    t = data["timings"]
    return {"text": data["choices"][0]["text"], "tps": t["predicted_per_second"],
            "drafted": t.get("draft_n", 0), "accepted": t.get("draft_n_accepted", 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", "-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="server starts per side and mode")
    ap.add_argument("--pairs", type=int, default=3, help="off/on request pairs per workload and start")
    ap.add_argument("--n-gen", type=int, default=256)
    ap.add_argument("--peer-dir", type=Path, default=ROOT / "build/peer")
    ap.add_argument("--paddock-bin", type=Path, default=ROOT / "target/release/paddock")
    ap.add_argument("--out", type=Path, default=ROOT / "build/bench")
    ap.add_argument("--sides", default="Paddock,llama.cpp", help="comma list of Paddock,llama.cpp")
    ap.add_argument("--server-args", default="", help="extra flags for every server (e.g. -ngl 99)")
    ap.add_argument("--mtp", action="store_true", help="guess with the model's MTP heads")
    a = ap.parse_args()
    servers_of, workloads = (MTP_SERVERS, MTP_WORKLOADS) if a.mtp else (SERVERS, WORKLOADS)
    a.ctx, a.parallel, a.health_timeout = 4096, 1, 120
    a.model_id = a.model.name.removesuffix(".gguf")
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], list[dict]] = {}
    names = [n for n in servers_of if n in a.sides.split(",")]
    for r in range(a.rounds):
        for name in order_for_round(r, names):
            side, off_flags, on_flags = servers_of[name]
            with contextlib.ExitStack() as stack:
                servers = {}
                for mode, flags in (("off", off_flags), ("on", on_flags)):
                    a.peer_server_args = a.paddock_server_args = " ".join([*flags, a.server_args])
                    servers[mode] = stack.enter_context(Server(side, a, a.out))
                    complete(servers[mode].port, "Hello", 8)  # warm-up
                for wl, prompt in workloads.items():
                    for i in range(a.pairs):
                        modes = ["off", "on"] if (r + i) % 2 == 0 else ["on", "off"]
                        for mode in modes:
                            res = complete(servers[mode].port, prompt, a.n_gen)
                            log(f"round {r} {name:9} {mode:3} {wl:9} {res['tps']:7.1f} t/s  "
                                f"drafted {res['drafted']} accepted {res['accepted']}")
                            results.setdefault((f"{name} {mode}", wl), []).append(res)
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "commit": git_rev(),
              "machine": machine_info(), "model": a.model_id, "mtp": a.mtp, "threads": a.threads, "n_gen": a.n_gen,
              "rounds": a.rounds, "pairs": a.pairs, "rows": []}
    lines = ["| workload | server | off t/s | on t/s | speed-up | guesses accepted | same output as off |",
             "|---|---|---:|---:|---:|---:|---|"]
    for wl in workloads:
        on_tps = {}
        for label in names:
            off = results[(f"{label} off", wl)]
            on = results[(f"{label} on", wl)]
            off_tps, on_tps[label] = [x["tps"] for x in off], [x["tps"] for x in on]
            drafted = sum(x["drafted"] for x in on)
            accepted = sum(x["accepted"] for x in on)
            ref = off[0]["text"]
            same = min(common_prefix(x["text"], ref) for x in on + off) / max(len(ref), 1)
            row = {"workload": wl, "server": label, "off_tps": mean(off_tps), "off_sd": sd(off_tps),
                   "on_tps": mean(on_tps[label]), "on_sd": sd(on_tps[label]),
                   "speedup": mean(on_tps[label]) / mean(off_tps),
                   "acceptance": accepted / drafted if drafted else None, "same_output_share": same}
            report["rows"].append(row)
            acc = f"{row['acceptance']:.0%} of {drafted // len(on)}" if drafted else "-"
            lines.append(f"| {wl} | {label} | {row['off_tps']:.1f} ± {row['off_sd']:.1f} | "
                         f"{row['on_tps']:.1f} ± {row['on_sd']:.1f} | {row['speedup']:.2f}x | {acc} | "
                         f"{'all' if same == 1 else f'first {same:.0%}'} |")
        if len(on_tps) == 2:
            ratio = mean(on_tps["Paddock"]) / mean(on_tps["llama.cpp"])
            lines.append(f"| {wl} | Paddock ÷ llama.cpp, on | | | {ratio:.2f} | | |")
    table = "\n".join(lines)
    stem = "spec-mtp" if a.mtp else "spec"
    (a.out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (a.out / f"{stem}.md").write_text(table + "\n")
    print(f"{report['date']} · commit {report['commit']} · {report['machine']['cpu']} · "
          f"{a.threads} threads · {a.model_id} · {a.n_gen} tokens · {a.rounds} rounds\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
