#!/usr/bin/env bash
# The one test command (README, CI): set-up, models, Rust checks and tests, the SDK tests
# (tests/python, tests/node) against a live `paddock serve`, the web UI in chromium (tests/ui) and
# the desktop app under Xvfb (tests/tauri).
#
# Environment knobs (all optional):
#   TEST_STEPS          steps to run, default "fmt clippy test build python agents load fuzz ui tauri"
#   PYTEST_ARGS         extra arguments for pytest (e.g. "-k stream -x")
#   PADDOCK_SERVER_CMD  override the server command for the python step; "{port}" is replaced by
#                       the chosen port (used to validate the tests against llama.cpp's llama-server)
#   HEALTH_TIMEOUT      seconds to wait for GET /health (default 120)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -d "$HOME/.cargo/bin" ]] && export PATH="$HOME/.cargo/bin:$PATH"

STEPS="${TEST_STEPS:-fmt clippy test build python agents load fuzz ui tauri}"
# A clean clone (CI) builds once: incremental caches are never reused, and llama.cpp's debug
# info makes each of the ~15 linked test binaries ~400 MB; a run needed 12 GB and CI's disk ran
# out. Every cargo command below sees the same settings, so llama.cpp still compiles once.
if [[ -n "${CI:-}" ]]; then
  export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_STRIP=debuginfo
fi
MODEL_FILE="models/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID="$(basename "$MODEL_FILE" .gguf)"
LOGDIR="$ROOT/build/test"
mkdir -p "$LOGDIR"
SERVER_LOG="$LOGDIR/server.log"
SERVER_PID=""
START=$(date +%s)
declare -a RESULTS=()
FAILED=0

banner() { echo; echo "==> $*"; }
has_step() { [[ " $STEPS " == *" $1 "* ]]; }

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary() {
  local secs=$(( $(date +%s) - START ))
  echo
  echo "==================== test summary ===================="
  for r in "${RESULTS[@]}"; do echo "  $r"; done
  if ((FAILED)); then
    echo "TEST RESULT: FAIL (${secs}s)"
  else
    echo "TEST RESULT: PASS (${secs}s)"
  fi
}

# run_step NAME CMD... : run, record PASS/FAIL, keep going (later steps still give information)
run_step() {
  local name="$1"; shift
  banner "$name: $*"
  local t0
  t0=$(date +%s)
  if "$@"; then
    RESULTS+=("PASS  $name ($(( $(date +%s) - t0 ))s)")
  else
    RESULTS+=("FAIL  $name ($(( $(date +%s) - t0 ))s)")
    FAILED=1
  fi
}

# must_step NAME CMD... : a prerequisite; on failure print the summary and stop
must_step() {
  run_step "$@"
  if ((FAILED)); then summary; exit 1; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_health() {  # PORT
  local port="$1" deadline=$(( $(date +%s) + ${HEALTH_TIMEOUT:-120} ))
  while (( $(date +%s) < deadline )); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server exited before becoming healthy; log ($SERVER_LOG):" >&2
      tail -n 100 "$SERVER_LOG" >&2
      return 1
    fi
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)" == "200" ]]; then
      echo "server healthy on port $port"
      return 0
    fi
    sleep 0.5
  done
  echo "server not healthy after ${HEALTH_TIMEOUT:-120}s; log ($SERVER_LOG):" >&2
  tail -n 100 "$SERVER_LOG" >&2
  return 1
}

python_tests() {
  local port cmd
  port="$(free_port)"
  if [[ -n "${PADDOCK_SERVER_CMD:-}" ]]; then
    cmd="${PADDOCK_SERVER_CMD//\{port\}/$port}"
  else
    [[ -x target/debug/paddock ]] || { echo "target/debug/paddock missing (build step failed?)" >&2; return 1; }
    cmd="target/debug/paddock serve --model $MODEL_FILE --port $port -c 4096 --parallel 2 -t 2"
  fi
  echo "starting: $cmd  (log: $SERVER_LOG)"
  # shellcheck disable=SC2086
  $cmd >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_health "$port" || return 1
  local rc=0
  # shellcheck disable=SC2086
  PADDOCK_URL="http://127.0.0.1:$port" PADDOCK_MODEL="$MODEL_ID" \
    "$ROOT/.venv/bin/python" -m pytest tests/python -ra ${PYTEST_ARGS:-} || rc=$?
  echo "--- openai Node SDK tests (tests/node)"
  PADDOCK_URL="http://127.0.0.1:$port" PADDOCK_MODEL="$MODEL_ID" \
    node --test tests/node/ || rc=1
  cleanup
  SERVER_PID=""
  if ((rc)); then echo "server log tail ($SERVER_LOG):"; tail -n 40 "$SERVER_LOG"; fi
  return $rc
}

must_step setup bash scripts/setup.sh
must_step fetch-models bash scripts/fetch-models.sh

has_step fmt && run_step "cargo fmt" cargo fmt --all -- --check
has_step clippy && run_step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
has_step test && run_step "cargo test" cargo test --workspace
if has_step build; then
  run_step "cargo build" cargo build --workspace
fi
has_step python && run_step "SDK tests (Python openai/anthropic/agents, Node openai)" python_tests
# Real coding-agent CLIs, unchanged, on SmolLM2 (scripts/agent-tests.sh): Codex and opencode
# complete a tool call; Claude Code answers a plain turn (its tool task is opt-in: the 135M
# model copies Claude Code's date reminder instead of the call).
has_step agents && run_step "agent CLIs (Codex, opencode, Claude Code)" \
  env AGENT_CLIS=codex,opencode,claude_code_chat bash scripts/agent-tests.sh
# 64 clients on 4 slots and a queue of 16 for a minute: only 200s and 503 + Retry-After, memory
# flat, every slot free after, exit 0 on SIGTERM (docs/reliability.md has the 5-minute figures).
has_step load && run_step "load (64 clients, 60 s)" "$ROOT/.venv/bin/python" scripts/load_test.py \
  --binary target/debug/paddock --model "$MODEL_FILE" --seconds 60 --out "$LOGDIR/load"
# Coverage-guided fuzzing of the request parsers, chat templates, tool-call parsers and the GGUF
# reader from the kept seeds, briefly (fuzz/README.md; longer runs by hand).
has_step fuzz && run_step "fuzz (cargo-fuzz, 30 s a target)" bash scripts/fuzz.sh 30
has_step ui && run_step "web UI (Playwright + chromium)" env PADDOCK_UI_DIR= bash scripts/ui-tests.sh
has_step tauri && run_step "desktop app (Tauri under Xvfb)" bash scripts/tauri-tests.sh

summary
exit "$FAILED"
