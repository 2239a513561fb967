#!/usr/bin/env bash
# The MoE-vs-dense GPU benchmark on a CUDA machine without network or cargo (issue 9; docs/gpu.md).
#
# Run from the repository root, with the carried folder build/gpu/ holding:
#   llama-src.tar.xz   the llama.cpp tree vendored by llama-cpp-sys-2 (trimmed; plus llama-bench's
#                      three source files, which that crate leaves out) — scripts/gpu/pack.sh src
#   py/gguf/           the gguf Python package (pure Python), for scripts/gpu/synth-gguf.py
#   smollm2-tokenizer.gguf  SmolLM2-135M's tokenizer keys alone (scripts/gpu/pack.sh src)
#   paddock.tar.xz     optional: `paddock` built here with --features cuda-dl and its .so files
#   lb-bundle.tar.xz*  optional: the llama-bench + backend libraries a previous run built (skips the build)
#
# Stages (each one skips itself when its result is already there, so a second call on the same
# warm machine carries on where a timed-out first one stopped):
#   build  cmake + ninja: llama-bench and ggml's backends as loadable modules (GGML_BACKEND_DL),
#          CUDA for sm_90; in parallel with gen
#   gen    the three synthetic GGUFs (~36.6 GB) under $WORK/models
#   bw     device-to-device copy bandwidth (torch)
#   bench  llama-bench -ngl 99 -fa 1 -r 3 -p 512,8192 -n 128,1024, one JSON per model
#   paddock  paddock bench with the same flags, if build/gpu/paddock/ is there
#   bundle  llama-bench + its libraries as xz parts under $OUT (to carry into a later call)
#
# Usage: [ONLY="moe30b"] scripts/gpu/device-bench.sh [STAGE ...]   (default: build gen bw bench paddock)
set -uo pipefail

REPO=$(pwd)
WORK=${WORK:-/tmp/gpuwork}
OUT=${OUT:-$WORK/out}
MODELS=$WORK/models
B=$WORK/build
LB=$WORK/lb            # llama-bench and its libraries
JOBS=$(nproc)
# shellcheck disable=SC2054  # the commas are llama-bench list values
BENCH_ARGS=(-ngl 99 -fa 1 -r 3 -p 512,8192 -n 128,1024)
# ONLY="moe30b" (space-separated) limits gen, bench and paddock to those shapes.
read -r -a SHAPES <<< "${ONLY:-moe30b dense32b dense3b}"
declare -A FILE=([moe30b]=synth-qwen3moe-30b-a3b-Q4_0.gguf [dense32b]=synth-qwen3-32b-Q4_0.gguf [dense3b]=synth-qwen3-3b-Q4_0.gguf)
declare -A SIZE=([moe30b]=16983289216 [dense32b]=17840796160 [dense3b]=1757832768)
mkdir -p "$WORK" "$OUT" "$MODELS" "$WORK/res"
log() { echo "[$(date +%T)] $*"; }
# A bench stage starts a model only while this many seconds are left of DEADLINE (seconds since
# the script started; the device tool stops a call at 600 s).
DEADLINE=${DEADLINE:-570}
time_for() { [ $((DEADLINE - SECONDS)) -ge "$1" ] || { log "skipped: $2 (${SECONDS}s used of ${DEADLINE}s)"; return 1; }; }
declare -A NEED=([moe30b]=70 [dense32b]=130 [dense3b]=45)

stage_build() {
  if [ -x "$LB/llama-bench" ] && [ -f "$LB/libggml-cuda.so" ]; then log "build: have $LB"; return 0; fi
  if ls "$REPO"/build/gpu/lb-bundle.tar.xz* >/dev/null 2>&1; then
    log "build: unpacking the carried bundle"
    mkdir -p "$LB" && cat "$REPO"/build/gpu/lb-bundle.tar.xz* | tar -xJ -C "$LB" && return 0
  fi
  log "build: unpacking source"
  rm -rf "$WORK/src" && mkdir -p "$WORK/src" && tar -xJf "$REPO/build/gpu/llama-src.tar.xz" -C "$WORK/src" || return 1
  local S=$WORK/src/llama.cpp
  # The crate's tree lacks most tools; build llama-bench alone.
  echo 'add_subdirectory(llama-bench)' > "$S/tools/CMakeLists.txt"
  # Options as llama-cpp-sys-2's build.rs sets them for --features cuda,dynamic-backends on Linux
  # (BUILD_SHARED_LIBS, GGML_BACKEND_DL, OpenMP, no NCCL); CPU: all variants (GGML_NATIVE is refused with GGML_BACKEND_DL).
  cmake -S "$S" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_NCCL=OFF \
    -DGGML_BACKEND_DL=ON -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=ON -DGGML_OPENMP=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF > "$WORK/cmake.log" 2>&1 \
    || { tail -40 "$WORK/cmake.log"; return 1; }
  local t0=$SECONDS
  ninja -C "$B" -j "$JOBS" > "$WORK/ninja.log" 2>&1 || { grep -B2 -A10 -m3 'error' "$WORK/ninja.log"; tail -20 "$WORK/ninja.log"; return 1; }
  log "build: ninja took $((SECONDS - t0)) s"
  mkdir -p "$LB" && cp -a "$B"/bin/llama-bench "$B"/bin/*.so* "$LB"/ 2>/dev/null
  ls -la "$LB"
}

stage_gen() {
  local todo=()
  for s in "${SHAPES[@]}"; do
    f=$MODELS/${FILE[$s]}
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" = "${SIZE[$s]}" ]; then continue; fi
    todo+=("$s")
  done
  [ ${#todo[@]} -eq 0 ] && { log "gen: have all"; return 0; }
  log "gen: ${todo[*]}"
  local pids=()
  for s in "${todo[@]}"; do
    PYTHONPATH=$REPO/build/gpu/py python3 "$REPO/scripts/gpu/synth-gguf.py" --out "$MODELS" --shapes "$s" \
      --tokenizer "$REPO/build/gpu/smollm2-tokenizer.gguf" >> "$WORK/res/gen.jsonl" &
    pids+=($!)
  done
  local rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
  log "gen: done rc=$rc"; return $rc
}

stage_bw() {
  [ -s "$WORK/res/bw.json" ] && return 0
  python3 - > "$WORK/res/bw.json" <<'EOF'
import json, torch
n = 4 << 30  # 4 GiB each way
x = torch.empty(n, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize()
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
best = None; times = []
for _ in range(10):
    s.record(); y.copy_(x); e.record(); torch.cuda.synchronize()
    times.append(s.elapsed_time(e) / 1e3)
t = sorted(times)[len(times) // 2]
p = torch.cuda.get_device_properties(0)
print(json.dumps({"device": p.name, "bytes_copied": n, "median_s": t,
                  "read_plus_write_bytes_per_s": 2 * n / t, "copy_bytes_per_s": n / t,
                  "torch": torch.__version__, "cuda": torch.version.cuda}))
EOF
  cat "$WORK/res/bw.json"
}

stage_bench() {
  for s in "${SHAPES[@]}"; do
    r=$WORK/res/llama-bench-$s.json
    [ -s "$r" ] && { log "bench $s: have it"; continue; }
    time_for "${NEED[$s]}" "llama-bench $s" || continue
    log "bench $s"
    (cd "$LB" && LD_LIBRARY_PATH=$LB ./llama-bench -m "$MODELS/${FILE[$s]}" "${BENCH_ARGS[@]}" -o json > "$r.part" 2> "$WORK/res/llama-bench-$s.err") \
      && mv "$r.part" "$r" || { tail -20 "$WORK/res/llama-bench-$s.err"; }
    python3 -c "import json,sys; [print(' ', d['n_prompt'], d['n_gen'], round(d['avg_ts'],1), '±', round(d['stddev_ts'],1)) for d in json.load(open(sys.argv[1]))]" "$r" 2>/dev/null
  done
}

stage_paddock() {
  local P=$WORK/paddock-carried
  if [ ! -x "$P/paddock" ] && [ -f "$REPO/build/gpu/paddock.tar.xz" ]; then
    mkdir -p "$WORK" && tar -xJf "$REPO/build/gpu/paddock.tar.xz" -C "$WORK" && mv "$WORK/paddock" "$P"
  fi
  [ -x "$P/paddock" ] || { log "paddock: no build/gpu/paddock.tar.xz, skipped"; return 0; }
  local D=$WORK/pd
  if [ ! -f "$D/libggml-cuda.so" ]; then
    rm -rf "$D" && mkdir -p "$D" && cp -a "$P"/. "$D"/
    # The CUDA backend module built here from the same source, next to the binary, where
    # ggml_backend_load_all() looks; libggml-base.so stays Paddock's own.
    cp -a "$LB"/libggml-cuda.so "$D"/
  fi
  export HOME=$WORK/home; mkdir -p "$HOME"
  # What the library and budget make of this machine and the files: the GPU's memory as a pool
  # of its own, its published bandwidth, each file's active bytes and tg ceiling.
  (cd "$D" && LD_LIBRARY_PATH=$D ./paddock models --dir "$MODELS" -ngl 99 -o json > "$WORK/res/paddock-models.json" 2> "$WORK/res/paddock-models.err") \
    || tail -20 "$WORK/res/paddock-models.err"
  for s in "${SHAPES[@]}"; do
    r=$WORK/res/paddock-$s.json
    [ -s "$r" ] && { log "paddock $s: have it"; continue; }
    time_for "${NEED[$s]}" "paddock $s" || continue
    log "paddock bench $s"
    (cd "$D" && LD_LIBRARY_PATH=$D ./paddock bench -m "$MODELS/${FILE[$s]}" -ngl 99 -fa on -p 512,8192 -n 128,1024 -r 3 -o json --no-history > "$r.part" 2> "$WORK/res/paddock-$s.err") \
      && mv "$r.part" "$r" || tail -30 "$WORK/res/paddock-$s.err"
    head -c 1500 "$r" 2>/dev/null; echo
  done
}

stage_bundle() {
  [ -f "$LB/libggml-cuda.so" ] || return 0
  (cd "$LB" && strip --strip-unneeded ./*.so* llama-bench 2>/dev/null; tar -cf - . | xz -T0 -6 > "$WORK/lb-bundle.tar.xz")
  split -b 15m -d "$WORK/lb-bundle.tar.xz" "$OUT/lb-bundle.tar.xz."
  ls -la "$OUT"
}

collect() {
  # At most 8 files come back: one results archive-free JSON, the logs in one file, bundle parts.
  python3 - "$WORK/res" > "$OUT/results.json" <<'EOF'
import json, os, sys
d = sys.argv[1]; res = {}
for f in sorted(os.listdir(d)):
    p = os.path.join(d, f)
    if f.endswith(".json"):
        try: res[f[:-5]] = json.load(open(p))
        except Exception as e: res[f[:-5]] = {"error": str(e)}
    elif f.endswith(".jsonl"):
        res[f[:-6]] = [json.loads(l) for l in open(p) if l.strip()]
print(json.dumps(res, indent=1))
EOF
  { nvidia-smi; nvcc --version; for f in "$WORK"/res/*.err "$WORK/cmake.log"; do echo "== $f"; tail -60 "$f"; done; echo "== ninja"; tail -5 "$WORK/ninja.log"; } > "$OUT/logs.txt" 2>&1
}

stages=("$@"); [ ${#stages[@]} -eq 0 ] && stages=(build gen bw bench paddock)
trap collect EXIT
# build and gen run side by side (CPU-bound vs disk-bound)
if [[ " ${stages[*]} " == *" build "* && " ${stages[*]} " == *" gen "* ]]; then
  stage_gen & g=$!; stage_build; brc=$?; wait $g; grc=$?
  log "build rc=$brc gen rc=$grc"
  [ $brc -ne 0 ] && exit 1
  stages=("${stages[@]/build}"); stages=("${stages[@]/gen}")
fi
for st in "${stages[@]}"; do [ -n "$st" ] && { "stage_$st" || log "stage $st failed"; }; done
