#!/usr/bin/env bash
# Build llama.cpp's own llama-bench, llama-server and rpc-server, for benchmark comparison ONLY.
# They are never part of Paddock. Source: the llama.cpp tree vendored in the
# llama-cpp-python sdist on PyPI (pinned), so no git/network access beyond PyPI is needed.
# Output: build/peer/{llama-bench,llama-server,rpc-server,VERSION}. Idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LCPP_PY_VERSION="${LCPP_PY_VERSION:-0.3.36}"
OUT="$ROOT/build/peer"
SRC="$ROOT/build/peer-src"
JOBS="${JOBS:-$(nproc)}"

log() { echo "[build-peer] $*"; }

if [[ -x "$OUT/llama-bench" && -x "$OUT/llama-server" && -x "$OUT/rpc-server" && -f "$OUT/VERSION" ]]; then
  log "peer binaries already present in $OUT ($(head -n1 "$OUT/VERSION")); skipping"
  exit 0
fi

command -v cmake >/dev/null || { echo "[build-peer] cmake missing: run scripts/setup.sh" >&2; exit 1; }

PY="python3"
[[ -x "$ROOT/.venv/bin/python" ]] && PY="$ROOT/.venv/bin/python"

mkdir -p "$OUT" "$SRC"
LLAMA_DIR="$SRC/llama_cpp_python-$LCPP_PY_VERSION/vendor/llama.cpp"
if [[ ! -f "$LLAMA_DIR/CMakeLists.txt" ]]; then
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  log "downloading llama-cpp-python==$LCPP_PY_VERSION sdist from PyPI"
  "$PY" -m pip download --quiet --no-binary llama-cpp-python --no-deps \
    -d "$TMP" "llama-cpp-python==$LCPP_PY_VERSION"
  SDIST="$(ls "$TMP"/llama_cpp_python-*.tar.gz | head -n1)"
  log "extracting $(basename "$SDIST")"
  tar -xzf "$SDIST" -C "$SRC"
fi
[[ -f "$LLAMA_DIR/CMakeLists.txt" ]] || { echo "[build-peer] vendored llama.cpp not found at $LLAMA_DIR" >&2; exit 1; }

log "configuring llama.cpp (Release, GGML_NATIVE=ON, OpenMP, RPC, no curl)"
cmake -S "$LLAMA_DIR" -B "$SRC/build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_RPC=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DBUILD_SHARED_LIBS=OFF >"$SRC/cmake-configure.log" 2>&1 \
  || { tail -n 50 "$SRC/cmake-configure.log" >&2; exit 1; }

log "building llama-bench llama-server ggml-rpc-server with $JOBS jobs (nice)"
nice -n 10 cmake --build "$SRC/build" --config Release -j "$JOBS" \
  --target llama-bench llama-server ggml-rpc-server

# The RPC worker's target is ggml-rpc-server; it is kept as rpc-server, its usual name.
for b in llama-bench llama-server ggml-rpc-server; do
  f="$(find "$SRC/build" -type f -name "$b" -perm -u+x | head -n1)"
  [[ -n "$f" ]] || { echo "[build-peer] $b not produced" >&2; exit 1; }
  cp "$f" "$OUT/${b#ggml-}"
done

# Record what llama.cpp this is: the server's --version prints "version: N (commit)".
VER_LINE="$("$OUT/llama-server" --version 2>&1 | grep -m1 -i 'version' || true)"
{
  echo "llama.cpp ${VER_LINE:-unknown}"
  echo "source: PyPI sdist llama-cpp-python==$LCPP_PY_VERSION (vendor/llama.cpp)"
  # The sdist has no .git; its CHANGELOG names the llama.cpp commit it vendors.
  CL="$SRC/llama_cpp_python-$LCPP_PY_VERSION/CHANGELOG.md"
  if [[ -f "$CL" ]]; then
    echo "llama.cpp commit (from sdist CHANGELOG): $(grep -m1 -oE 'llama\.cpp@[0-9a-f]{7,40}' "$CL" | cut -d@ -f2)"
  fi
  grep -m1 -E 'ggml (version|commit)' "$SRC/cmake-configure.log" | sed 's/^-- */cmake: /' || true
  "$OUT/llama-server" --version 2>&1 | grep -i 'built with' || true
  echo "cmake: Release GGML_NATIVE=ON GGML_OPENMP=ON GGML_RPC=ON LLAMA_CURL=OFF"
} >"$OUT/VERSION"

"$OUT/llama-bench" --help >/dev/null 2>&1 || { echo "[build-peer] llama-bench does not run" >&2; exit 1; }
log "done: $(head -n1 "$OUT/VERSION")"
