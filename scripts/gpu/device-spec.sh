#!/usr/bin/env bash
# Speculative decoding on a CUDA machine (issue 8; docs/benchmarks.md): scripts/bench_spec.py
# with Paddock's cuda-dl build, guessing off against on, SmolLM2 fully offloaded.
#
# What it needs exceeds one call's 64 MiB carry, so it comes in pieces, each call carrying one
# folder of build/gpu-spec/ (made by scripts/gpu/pack.sh spec) that `take` moves to $WORK, where
# it stays while the machine is warm:
#   a/  paddock.tar.xz (scripts/gpu/pack.sh paddock) and cuda.so.xz (libggml-cuda.so built on
#       the device from the same source, from an earlier device-bench.sh bundle)
#   b/  SmolLM2-135M-Instruct.Q4_1.gguf, first half        c/  second half
#
# Usage, one call per piece:  scripts/gpu/device-spec.sh take a
#                             scripts/gpu/device-spec.sh take b
#                             scripts/gpu/device-spec.sh take c run [bench_spec.py args]
set -euo pipefail

REPO=$(pwd)
WORK=${WORK:-/tmp/gpuspec}
OUT=${OUT:-$WORK/out}
MODEL=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
mkdir -p "$WORK" "$OUT"
log() { echo "[$(date +%T)] $*"; }

take() {
  cp -a "$REPO/build/gpu-spec/$1/." "$WORK/"
  log "took $1: $(ls "$WORK" | tr '\n' ' ')"
}

run() {
  local P=$WORK/pd
  if [ ! -x "$P/paddock" ]; then
    tar -xJf "$WORK/paddock.tar.xz" -C "$WORK" && mv "$WORK/paddock" "$P"
    # The CUDA backend module next to the binary, where ggml_backend_load_all() looks.
    xz -dc "$WORK/cuda.so.xz" > "$P/libggml-cuda.so"
  fi
  if [ ! -f "$WORK/$MODEL" ]; then
    cat "$WORK/$MODEL".part-* > "$WORK/$MODEL"
  fi
  echo "$MODEL_SHA256  $WORK/$MODEL" | sha256sum -c -
  mkdir -p "$REPO/models" && ln -sf "$WORK/$MODEL" "$REPO/models/$MODEL"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
  export HOME=$WORK/home LD_LIBRARY_PATH=$P
  mkdir -p "$HOME"
  python3 scripts/bench_spec.py --sides Paddock --paddock-bin "$P/paddock" --server-args "-ngl 99" \
    --out "$OUT" "$@" 2>&1 | tee "$OUT/bench_spec.log"
}

while [ $# -gt 0 ]; do
  case "$1" in
    take) take "$2"; shift 2 ;;
    run) shift; run "$@"; exit 0 ;;
    *) echo "usage: $0 take a|b|c ... [run ARGS]" >&2; exit 2 ;;
  esac
done
