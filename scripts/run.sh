#!/usr/bin/env bash
# Install and run: prepare the machine, fetch the small test model, and serve it.
# Extra arguments go to `paddock serve` (e.g. --port 8080 -c 8192).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -d "$HOME/.cargo/bin" ]] && export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
bash scripts/fetch-models.sh smollm2
exec cargo run --release -- serve --model models/SmolLM2-135M-Instruct.Q4_1.gguf "$@"
