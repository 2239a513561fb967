#!/usr/bin/env bash
# Runs the web UI tests (tests/ui): each test starts a real `paddock serve` with the two small
# models and drives the page through Playwright and Debian's chromium. Installs nothing; needs:
#   .venv with playwright and pytest   (.venv/bin/pip install playwright pytest)
#   chromium at /usr/bin/chromium      (apt install chromium; Playwright's own browsers are not used)
#   models/ with SmolLM2 and gemma-3-270m (scripts/fetch-models.sh smollm2 gemma3)
#
# Environment knobs (all optional):
#   PADDOCK_BIN     server binary (default target/debug/paddock)
#   PADDOCK_UI_DIR  folder the server reads the UI from (default ui/ of this checkout; empty: the
#                   copy embedded in the binary)
#   CHROMIUM        browser binary (default /usr/bin/chromium)
#   PYTEST_ARGS     extra pytest arguments, split on spaces (e.g. "-x -k chat")
# Arguments to this script go to pytest as they are: scripts/ui-tests.sh -k "lan or chat"
# Screenshots of every section, light and dark, are written to build/test/ui/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export PADDOCK_BIN="${PADDOCK_BIN:-target/debug/paddock}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
PYTHON="$ROOT/.venv/bin/python"

fail() { echo "ui-tests: $*" >&2; exit 2; }
[[ -x "$PADDOCK_BIN" ]] || fail "no server binary at $PADDOCK_BIN (cargo build, or set PADDOCK_BIN)"
[[ -x "$CHROMIUM" ]] || fail "no chromium at $CHROMIUM (apt install chromium, or set CHROMIUM)"
[[ -x "$PYTHON" ]] || fail "no .venv (python3 -m venv .venv)"
"$PYTHON" -c 'import playwright, pytest' 2>/dev/null \
  || fail ".venv lacks playwright or pytest (.venv/bin/pip install playwright pytest)"
for model in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
  [[ -f "models/$model" ]] || fail "models/$model is missing (scripts/fetch-models.sh)"
done

mkdir -p build/test/ui
# shellcheck disable=SC2086  # PYTEST_ARGS is a list of words on purpose
exec "$PYTHON" -m pytest tests/ui -p no:cacheprovider ${PYTEST_ARGS:-} "$@"
