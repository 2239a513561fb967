#!/usr/bin/env bash
# Peer comparison benchmark (see docs/benchmarks.md). Builds what it needs, then runs
# scripts/bench.py; arguments are passed through (e.g. --only peer, --sections engine, --rounds 5).
# Run on a quiet machine: nothing else busy, on AC power.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -d "$HOME/.cargo/bin" ]] && export PATH="$HOME/.cargo/bin:$PATH"

only="both"
prev=""
for arg in "$@"; do
  [[ "$prev" == "--only" ]] && only="$arg"
  [[ "$arg" == --only=* ]] && only="${arg#--only=}"
  prev="$arg"
done

bash scripts/setup.sh
bash scripts/fetch-models.sh smollm2
if [[ "$only" != "paddock" ]]; then
  bash scripts/build-peer.sh
fi
if [[ "$only" != "peer" ]]; then
  echo "[bench] cargo build --release"
  cargo build --release
fi
exec "$ROOT/.venv/bin/python" scripts/bench.py "$@"
