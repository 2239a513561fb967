#!/usr/bin/env bash
# Issue 9, MoE tg1024: `paddock bench` against llama-bench on the Qwen3-30B-A3B-like MoE alone,
# with the experiments that found why Paddock's tg1024 was 0.93-0.97 of llama-bench's
# (docs/gpu.md, "MoE tg1024"). One device call, from the repository root, with the same carried
# build/gpu/ as scripts/gpu/device-bench.sh (llama-src.tar.xz or the lb-bundle parts, py/,
# smollm2-tokenizer.gguf, paddock.tar.xz):
#
#   build (or unpack the carried bundle) + gen (MoE file only) through device-bench.sh, then
#   the STEPs, each run only while DEADLINE (575 s) leaves time for it:
#     full        the issue's list, -p 512,8192 -n 128,1024 -r 3: lb-full, pd-full, pd-full2,
#                 lb-full2 (pp tests run before tg in each process, as in the issue's runs)
#     base        -p 0 -n 128,1024 -r 3: lb, pd (no pp test in the process)
#     full-swap   the full list with paddock on llama-bench's libllama/libggml*/CPU modules
#                 (same source, built on the device) and llama-bench on Paddock's
#     swap        the same with -p 0
#     trigger     paddock -p 8192 -n 1024 and -p 512 -n 1024: which pp test matters
#     depth       tg128 after 896 tokens of depth (-d 896), both tools
#     diag, full-diag, depth-diag  one repetition with llama.cpp's debug log: counts of
#                 CUDA-graph reuse / warm-up lines and the context's buffers and threads
#     nographs, depth-nographs     GGML_CUDA_DISABLE_GRAPHS=1
#     threads     paddock again with llama-bench's -t when their thread counts differ
#     dense3b     the 3B dense shape (generated here) with the full list, as a control
#     again       base once more
#   A name run twice gets -2, -3 ... Results: $OUT/moe-tg.tar.xz (moe-tg/NAME.json and .err,
#   summary.txt with every run's t/s per test and repetition, env.txt: ldd, CPU, clocks).
#
# Usage: OUT=$OUT bash scripts/gpu/moe-tg.sh [STEP ...]   (default: full base full)
set -uo pipefail
REPO=$(pwd)
WORK=${WORK:-/tmp/gpuwork}
OUT=${OUT:-$WORK/out}
LB=$WORK/lb
M=$WORK/models/synth-qwen3moe-30b-a3b-Q4_0.gguf
R=$OUT/moe-tg
DEADLINE=${DEADLINE:-575}
mkdir -p "$R"
log() { echo "[$(date +%T) ${SECONDS}s] $*" | tee -a "$R/summary.txt"; }
# Everything under $R comes back as one archive (a device call returns at most 8 files).
trap 'tar -C "$OUT" -cJf "$OUT/moe-tg.tar.xz" moe-tg && rm -rf "$R"' EXIT

# (bundle: the built llama-bench comes back for a later call, unless it was carried in)
stages=(build gen); ls build/gpu/lb-bundle.tar.xz.* >/dev/null 2>&1 || stages+=(bundle)
ONLY=moe30b OUT=$OUT WORK=$WORK bash scripts/gpu/device-bench.sh "${stages[@]}" 2>&1 | tail -5
[ -x "$LB/llama-bench" ] && [ -f "$M" ] || { log "no llama-bench or model"; exit 1; }

# Paddock with its own libraries (as device-bench's paddock stage), and the two swaps.
PD=$WORK/pd PDX=$WORK/pd-lblibs LBX=$WORK/lb-pdlibs
if [ ! -x "$PD/paddock" ]; then
  rm -rf "$PD" && mkdir -p "$WORK/unp" && tar -xJf "$REPO/build/gpu/paddock.tar.xz" -C "$WORK/unp" \
    && mv "$WORK/unp/paddock" "$PD" && cp -a "$LB/libggml-cuda.so" "$PD/"
fi
if [ ! -d "$PDX" ]; then
  mkdir -p "$PDX" && cp -a "$LB"/*.so* "$PDX"/ && cp -a "$PD/paddock" "$PDX/"
fi
if [ ! -d "$LBX" ]; then
  mkdir -p "$LBX" && cp -a "$PD"/*.so* "$LBX"/ && cp -a "$LB/llama-bench" "$LBX/"
  # whatever llama-bench links that Paddock does not ship (libllama-common under another name)
  for f in "$LB"/*.so*; do [ -e "$LBX/$(basename "$f")" ] || cp -a "$f" "$LBX/"; done
fi
export HOME=$WORK/home; mkdir -p "$HOME"
{ for d in "$LB" "$PD" "$PDX" "$LBX"; do
    b=$d/paddock; [ -x "$b" ] || b=$d/llama-bench
    echo "== ldd $b"; (cd "$d" && LD_LIBRARY_PATH=$d ldd "$b" | grep -E 'llama|ggml')
  done; nproc; lscpu | grep -E 'Model name|Thread|Core|Socket'; nvidia-smi -q -d CLOCK | head -30
} > "$R/env.txt" 2>&1

# MODEL=FILE before a step's command benchmarks another file
lb() { local d=$1; shift; (cd "$d" && LD_LIBRARY_PATH=$d ./llama-bench -m "${MODEL:-$M}" -ngl 99 -fa 1 -o json "$@"); }
pd() { local d=$1; shift; (cd "$d" && LD_LIBRARY_PATH=$d ./paddock bench -m "${MODEL:-$M}" -ngl 99 -fa on -o json --no-history "$@"); }
summary() {
  python3 - "$1" <<'EOF' 2>/dev/null | tee -a "$R/summary.txt"
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["results"] if isinstance(d, dict) else d
th = d["settings"]["n_threads"] if isinstance(d, dict) else rows[0].get("n_threads")
for r in rows:
    print(f"    p{r['n_prompt']} g{r['n_gen']} d{r['n_depth']}: {r['avg_ts']:.1f} ± {r['stddev_ts']:.1f} t/s"
          f"  {[round(x, 1) for x in r['samples_ts']]}  threads={th}")
EOF
}
# NAME NEED_S CMD...: stdout to NAME.json, stderr to NAME.err, when NEED_S seconds are left
t() {
  local name=$1 need=$2 i=2; shift 2
  while [ -e "$R/$name.json" ]; do name=${name%-[0-9]}-$i; i=$((i + 1)); done
  [ $((DEADLINE - SECONDS)) -ge "$need" ] || { log "skipped $name"; return 0; }
  local t0=$SECONDS
  "$@" > "$R/$name.json" 2> "$R/$name.err"
  log "$name rc=$? $((SECONDS - t0))s"
  summary "$R/$name.json"
}
diag() {  # NAME: what the debug log says about graph reuse and CUDA graphs
  local e=$R/$1.err
  { echo "  $1: $(grep -c 'CUDA Graph id' "$e") 'CUDA Graph id .. reused', $(grep -c 'warmup complete' "$e") warm-up complete," \
         "$(grep -c 'warmup reset' "$e") warm-up reset, $(grep -c 'graph_reserve\|reserving a graph' "$e") graph reserve lines"
    grep -v 'CUDA Graph id' "$e" | grep -iE 'n_threads|threadpool|graph|split|reuse|CUDA_Host|KV buffer|compute buffer' | sort | uniq -c | sort -rn | head -25
  } | tee -a "$R/summary.txt"
}

TG=(-p 0 -n 128,1024 -r 3)
FULL=(-p 512,8192 -n 128,1024 -r 3)   # the issue's list: pp tests run first in the process
D=(-p 0 -n 128 -d 896 -r 3)
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(full base full)
for st in "${steps[@]}"; do
  case $st in
    base) t lb 40 lb "$LB" "${TG[@]}"; t pd 40 pd "$PD" "${TG[@]}" ;;
    swap) t pd-lblibs 40 pd "$PDX" "${TG[@]}"; t lb-pdlibs 40 lb "$LBX" "${TG[@]}" ;;
    diag) t lb-diag 30 lb "$LB" -p 0 -n 1024 -r 1 -v; diag lb-diag
          PADDOCK_LOG=debug t pd-diag 30 pd "$PD" -p 0 -n 1024 -r 1; diag pd-diag ;;
    again) t lb-2 40 lb "$LB" "${TG[@]}"; t pd-2 40 pd "$PD" "${TG[@]}" ;;
    full) t lb-full 45 lb "$LB" "${FULL[@]}"; t pd-full 45 pd "$PD" "${FULL[@]}"
          t pd-full2 45 pd "$PD" "${FULL[@]}"; t lb-full2 45 lb "$LB" "${FULL[@]}" ;;
    full-swap) t pd-lblibs-full 45 pd "$PDX" "${FULL[@]}"; t lb-pdlibs-full 45 lb "$LBX" "${FULL[@]}" ;;
    trigger) t pd-pp8192 40 pd "$PD" -p 8192 -n 1024 -r 3; t pd-pp512 40 pd "$PD" -p 512 -n 1024 -r 3 ;;
    dense3b)  # the 3B dense shape as a control (generated here, ~2 s)
          ONLY=dense3b OUT=$OUT WORK=$WORK bash scripts/gpu/device-bench.sh gen 2>&1 | tail -1
          M3=$WORK/models/synth-qwen3-3b-Q4_0.gguf
          MODEL=$M3 t lb-3b-full 40 lb "$LB" "${FULL[@]}"; MODEL=$M3 t pd-3b-full 40 pd "$PD" "${FULL[@]}" ;;
    full-diag) t lb-full-diag 35 lb "$LB" -p 512,8192 -n 1024 -r 1 -v; diag lb-full-diag
          PADDOCK_LOG=debug t pd-full-diag 35 pd "$PD" -p 512,8192 -n 1024 -r 1; diag pd-full-diag ;;
    depth) t lb-d896 30 lb "$LB" "${D[@]}"; t pd-d896 30 pd "$PD" "${D[@]}" ;;
    depth-diag) t lb-d896-diag 30 lb "$LB" "${D[@]}" -v; diag lb-d896-diag
          PADDOCK_LOG=debug t pd-d896-diag 30 pd "$PD" "${D[@]}"; diag pd-d896-diag ;;
    depth-nographs) GGML_CUDA_DISABLE_GRAPHS=1 t lb-d896-nographs 30 lb "$LB" "${D[@]}"
          GGML_CUDA_DISABLE_GRAPHS=1 t pd-d896-nographs 30 pd "$PD" "${D[@]}" ;;
    nographs) GGML_CUDA_DISABLE_GRAPHS=1 t lb-nographs 40 lb "$LB" "${TG[@]}"
              GGML_CUDA_DISABLE_GRAPHS=1 t pd-nographs 40 pd "$PD" "${TG[@]}" ;;
    threads)
      lt=$(python3 -c "import json;print(json.load(open('$R/lb.json'))[0]['n_threads'])" 2>/dev/null)
      pt=$(python3 -c "import json;print(json.load(open('$R/pd.json'))['settings']['n_threads'])" 2>/dev/null)
      log "threads: llama-bench $lt, paddock $pt"
      [ -n "$lt" ] && [ "$lt" != "$pt" ] && t "pd-t$lt" 40 pd "$PD" "${TG[@]}" -t "$lt" ;;
    *) log "unknown step $st" ;;
  esac
done
log "done"
