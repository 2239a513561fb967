#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of what hostile input reaches: the GGUF header
# reader, the request parsers and adapters, chat templates and tool-call parsing (fuzz/README.md).
# Builds every target in fuzz/ and runs each for SECONDS_PER_TARGET seconds (default 30), from
# the seeds in fuzz/corpus/<target>/. Exits non-zero if any target crashes, panics, hangs past
# the timeout or goes over the memory limit, and prints where the failing input was saved.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
#   FUZZ_TARGETS    targets to run (default: every target in fuzz/fuzz_targets)
#   FUZZ_SANITIZER  cargo-fuzz's -s. Default none: the code reached is Rust without unsafe
#                   blocks, plus llama.cpp's JSON-schema converter, whose C++ is not instrumented
#                   either way. "address" adds malloc-size checks but runs these allocation-heavy
#                   targets ~10x slower and takes longer to build.
#
# Works on a stable toolchain: cargo-fuzz passes nightly-only flags, which RUSTC_BOOTSTRAP
# allows. New corpus entries go to build/fuzz/corpus/<target> (ignored by git), so the kept
# seeds stay as they are; failing inputs go to fuzz/artifacts/<target>/ (ignored too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -d "$HOME/.cargo/bin" ]] && export PATH="$HOME/.cargo/bin:$PATH"

SECONDS_PER_TARGET="${1:-30}"
SANITIZER="${FUZZ_SANITIZER:-none}"
# Debug assertions on: integer overflow on a file's or request's numbers is a failure too.
# `run` must get the same flags as `build`, or it builds everything again.
BUILD_FLAGS=(-s "$SANITIZER" --debug-assertions)
export RUSTC_BOOTSTRAP=1
# llama.cpp (built by llama-cpp-sys-2's cmake) is most of a clean build, and the targets only
# reach its JSON-schema converter: unoptimized, with its asserts on, it builds in about half
# the time and the fuzzing runs as fast (.cargo/config.toml asks for Release otherwise).
export LLAMA_LIB_PROFILE=Debug

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

read -r -a TARGETS <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"

# Longest input per target: a GGUF header with some metadata; a chat template with its
# conversation (the families' templates are up to 5 KB); request bodies; model outputs (the
# stream parser re-scans the text at every piece, so its cost grows with the square).
max_len() {
  case "$1" in
    gguf_header | chat_template) echo 16384 ;;
    chat_request) echo 8192 ;;
    *) echo 2048 ;;
  esac
}

# The seeds: kept text ones are rewritten as they are; the GGUF headers are not in git.
"$ROOT/.venv/bin/python" fuzz/seeds.py

echo "==> building ${TARGETS[*]} (sanitizer: $SANITIZER)"
cargo fuzz build "${BUILD_FLAGS[@]}"

FAILED=()
for target in "${TARGETS[@]}"; do
  scratch="build/fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$scratch" "$artifacts"
  dict=()
  [[ -f "fuzz/dict/$target.dict" ]] && dict=("-dict=fuzz/dict/$target.dict")
  before="$(ls "$artifacts")"
  echo "==> $target: ${SECONDS_PER_TARGET}s"
  # One process (no -jobs/-workers). The RSS limit makes an unbounded allocation a failure,
  # the timeout a template or parser that runs away. Progress lines, the recommended
  # dictionary and the sanitizer hooks a build without one lacks are left out of the log.
  set +e
  cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$target")" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${dict[@]}" 2>&1 |
    grep --line-buffered -v -e '^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\)' -e 'NEW_FUNC\[' \
      -e '# Uses: [0-9]*$' -e 'Failed to find function "__sanitizer'
  status="${PIPESTATUS[0]}"
  set -e
  found="$(comm -13 <(echo "$before") <(ls "$artifacts") | sed "s|^|$artifacts/|")"
  # A slow-unit file with exit 0 means the machine stalled (a unit that is really slow hits
  # -timeout and exits non-zero): worth a look, not a failure.
  slow="$(grep '/slow-unit-' <<<"$found" || true)"
  found="$(grep -v '/slow-unit-' <<<"$found" || true)"
  [[ -n "$slow" ]] && echo "FUZZ WARNING: $target had a unit over 10 s without a timeout: $slow"
  if [[ "$status" != 0 || -n "$found" ]]; then
    FAILED+=("$target")
    echo "FUZZ FAIL: $target (exit $status); failing input(s):"
    echo "${found:-  none saved, see the output above}"
    echo "Reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${BUILD_FLAGS[*]} $target <input>"
  fi
done

if ((${#FAILED[@]})); then
  echo "FUZZ RESULT: FAIL (${FAILED[*]})"
  exit 1
fi
echo "FUZZ RESULT: PASS (${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each)"
