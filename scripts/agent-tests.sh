#!/usr/bin/env bash
# End-to-end tests with real coding-agent CLIs, unchanged: Claude Code (/v1/messages), Codex CLI
# (/v1/responses) and opencode (/v1/chat/completions) each complete a task that needs a tool call,
# against a `paddock serve` this script starts on loopback with SmolLM2-135M.
#
#   1. installs the CLIs pinned in tests/agents/package-lock.json (`npm ci`, skipped while the
#      lock file is unchanged since the last install)
#   2. starts its own server on a free port and waits for GET /health
#   3. runs tests/agents/test_agent_clis.py with .venv/bin/python (scripts/setup.sh makes it)
#   4. stops the server; exits with pytest's status
#
# Run from a clean clone after scripts/setup.sh, scripts/fetch-models.sh and `cargo build`.
# scripts/test.sh runs AGENT_CLIS=codex,opencode,claude_code_chat: with the server greedy,
# SmolLM2-135M copies the spelled-out call and Codex and opencode run it; Claude Code answers a
# plain turn. Claude Code's tool task (claude_code_tool_call) is opt-in: the 135M model copies
# the date reminder Claude Code puts before the prompt instead of the call.
#
# Environment knobs (all optional):
#   PADDOCK_BIN       server binary (default target/debug/paddock)
#   AGENT_MODEL_FILE  model to serve (default models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   AGENT_SERVER_ARGS extra server flags (default "--temp 0": greedy where a client sends no
#                     temperature)
#   AGENT_CLIS        which tests to run, by name: any of claude_code (both of its tests),
#                     claude_code_chat, claude_code_tool_call, codex, opencode (default all)
#   AGENT_DUMP_DIR    keep each test's requests and answers there as files (for debugging)
#   PYTEST_ARGS       extra pytest arguments (e.g. "-x")
#   AGENT_BUDGET      seconds one agent test may take, retries included (default 300)
#   AGENT_ATTEMPTS    runs of an agent when the model does not make the call (default 3)
#   AGENTS_TIMEOUT    seconds for the whole pytest run before it is killed (default 1080)
#   HEALTH_TIMEOUT    seconds to wait for GET /health (default 120)
#   NPM_TIMEOUT       seconds for `npm ci` (default 600)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PADDOCK_BIN="${PADDOCK_BIN:-target/debug/paddock}"
MODEL_FILE="${AGENT_MODEL_FILE:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
MODEL_ID="$(basename "$MODEL_FILE" .gguf)"
AGENTS_DIR="$ROOT/tests/agents"
LOGDIR="$ROOT/build/test"
SERVER_LOG="$LOGDIR/agents-server.log"
SERVER_PID=""
TMPD=""
START=$(date +%s)
log() { echo "[agent-tests] $*"; }

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  [[ -n "$TMPD" ]] && rm -rf "$TMPD"
  TMPD=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bounded TIMEOUT CMD... : coreutils timeout where there is one (not on stock macOS)
bounded() {
  local secs="$1"; shift
  if command -v timeout >/dev/null 2>&1; then
    timeout --kill-after=30 "$secs" "$@"
  else
    "$@"
  fi
}

# --- 1. the CLIs -------------------------------------------------------------------------------
command -v npm >/dev/null || { echo "npm not found (scripts/setup.sh installs it)" >&2; exit 1; }
[[ -x "$ROOT/.venv/bin/python" ]] || { echo ".venv missing: run scripts/setup.sh" >&2; exit 1; }
STAMP="$AGENTS_DIR/node_modules/.lock.sha256"
want="$(sha256sum "$AGENTS_DIR/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
  log "installing the agent CLIs (tests/agents, $(node --version))"
  # opencode-ai lists one optional binary package per platform; a registry that lacks some of
  # them (404) yields a lock without them, which `npm ci` refuses as "not in sync". `npm install
  # --no-save` then installs the same pinned versions from the lock and leaves it untouched.
  mkdir -p "$LOGDIR"
  if ! (cd "$AGENTS_DIR" && bounded "${NPM_TIMEOUT:-600}" npm ci --no-audit --no-fund --loglevel=error) \
      >"$LOGDIR/agents-npm.log" 2>&1; then
    grep -m3 -E 'npm error (code|Missing|`npm ci`)' "$LOGDIR/agents-npm.log" || tail -n 5 "$LOGDIR/agents-npm.log"
    log "npm ci failed (log: $LOGDIR/agents-npm.log); installing from the lock with npm install --no-save"
    (cd "$AGENTS_DIR" && bounded "${NPM_TIMEOUT:-600}" npm install --no-save --no-audit --no-fund --loglevel=error)
  fi
  echo "$want" >"$STAMP"
else
  log "agent CLIs up to date"
fi

# --- 2. the server -----------------------------------------------------------------------------
[[ -x "$PADDOCK_BIN" ]] || { echo "$PADDOCK_BIN missing: run cargo build" >&2; exit 1; }
[[ -f "$MODEL_FILE" ]] || { echo "$MODEL_FILE missing: run scripts/fetch-models.sh" >&2; exit 1; }
mkdir -p "$LOGDIR"
TMPD="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
# 32k shared by 2 slots: agents send 2.5-7k-token prompts, and opencode runs two requests at once.
# The CLIs send no temperature: the server's default for the model decides, and greedy makes a
# tiny model's copying of the spelled-out call repeatable (AGENT_SERVER_ARGS overrides).
# shellcheck disable=SC2206  # a list of words on purpose
cmd=("$PADDOCK_BIN" serve --model "$MODEL_FILE" --port "$port" -c 32768 --parallel 2 -t 2
     ${AGENT_SERVER_ARGS:---temp 0})
log "starting: ${cmd[*]}  (log: $SERVER_LOG)"
# No user config file or PADDOCK_* settings leak into the server (PADDOCK_API_KEY does, and the
# tests send it).
env -u PADDOCK_CONFIG -u PADDOCK_MODEL -u PADDOCK_HOST -u PADDOCK_PORT \
  XDG_CONFIG_HOME="$TMPD/config" "${cmd[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

deadline=$(( $(date +%s) + ${HEALTH_TIMEOUT:-120} ))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)" == "200" ]]; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server exited before becoming healthy; log:" >&2; tail -n 60 "$SERVER_LOG" >&2; exit 1
  fi
  if (( $(date +%s) >= deadline )); then
    echo "server not healthy after ${HEALTH_TIMEOUT:-120}s; log:" >&2; tail -n 60 "$SERVER_LOG" >&2; exit 1
  fi
  sleep 0.5
done
log "server healthy on port $port"

# --- 3. the tests ------------------------------------------------------------------------------
rc=0
only="$(echo "${AGENT_CLIS:-claude_code,codex,opencode}" | sed 's/,/ or /g')"
# shellcheck disable=SC2086
PADDOCK_URL="http://127.0.0.1:$port" PADDOCK_MODEL="$MODEL_ID" \
  bounded "${AGENTS_TIMEOUT:-1080}" "$ROOT/.venv/bin/python" -m pytest "$AGENTS_DIR" \
  -p no:cacheprovider -ra -s -k "$only" ${PYTEST_ARGS:-} || rc=$?
if ((rc)); then
  echo "server log tail ($SERVER_LOG):"; tail -n 40 "$SERVER_LOG"
fi

# --- 4. done -----------------------------------------------------------------------------------
cleanup
log "exit $rc after $(( $(date +%s) - START ))s"
exit "$rc"
