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
#                             scripts/gpu/device-spec.sh stop   (SIGTERM mid-stream: exit 0, no CUDA error)
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

unpack() {
  P=$WORK/pd
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
}

run() {
  unpack
  python3 scripts/bench_spec.py --sides Paddock --paddock-bin "$P/paddock" --server-args "-ngl 99" \
    --out "$OUT" "$@" 2>&1 | tee "$OUT/bench_spec.log"
}

# SIGTERM mid-stream on the GPU (issue 9): the stream finishes, the process exits 0, and no
# CUDA error is printed while it tears down.
stop() {
  unpack
  local port=18199 log=$OUT/stop.log
  # llama.cpp's own log at info shows the layers going to CUDA0.
  PADDOCK_LOG=info,llama_cpp_2=info "$P/paddock" serve -m "models/$MODEL" -ngl 99 -c 8192 -np 1 \
    --port $port > "$OUT/stop.stdout" 2> "$log" &
  local pid=$!
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.5; done
  curl -sN "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"messages":[{"role":"user","content":"Count to a hundred."}],"max_tokens":8000,"ignore_eos":true,"stream":true}' \
    > "$OUT/stop.stream" &
  local client=$!
  sleep 0.5
  kill -TERM $pid
  local code=0
  wait $pid || code=$?
  wait $client || true
  log "exit code $code; stream ended with: $(tail -c 40 "$OUT/stop.stream" | tr '\n' ' ')"
  grep -m3 -E "offloaded|CUDA0 model buffer" "$log" || { log "FAIL: nothing on the GPU"; exit 1; }
  if grep -iE "cuda error|abort|panick" "$log"; then log "FAIL: an error at exit"; exit 1; fi
  grep -q "stopped: requests finished, models freed" "$log" || { log "FAIL: no clean stop logged"; exit 1; }
  if [ $code -ne 0 ]; then log "FAIL: exit code $code"; exit 1; fi
  log "PASS: clean exit on the GPU"
}

while [ $# -gt 0 ]; do
  case "$1" in
    take) take "$2"; shift 2 ;;
    run) shift; run "$@"; exit 0 ;;
    stop) stop; exit 0 ;;
    *) echo "usage: $0 take a|b|c ... [run ARGS | stop]" >&2; exit 2 ;;
  esac
done
