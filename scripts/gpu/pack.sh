#!/usr/bin/env bash
# Fills build/gpu/ (ignored by git) with what scripts/gpu/device-bench.sh needs on a CUDA machine
# that has no network and no cargo (docs/gpu.md):
#
#   scripts/gpu/pack.sh src       llama-src.tar.xz: the llama.cpp tree vendored by llama-cpp-sys-2
#                                 (the very source Paddock's ggml is built from), trimmed to what
#                                 the cmake build of ggml + llama + llama-bench needs, plus
#                                 llama-bench's sources, which the crate leaves out (taken from
#                                 llama-cpp-python's sdist: LLAMA_BENCH_SRC=.../tools/llama-bench);
#                                 py/gguf (gguf-py, pure Python); smollm2-tokenizer.gguf
#   scripts/gpu/pack.sh paddock   paddock.tar.xz: `paddock` built with --features cuda-dl
#                                 (CARGO_TARGET_DIR, default /tmp/gpu-target) and the ggml/llama
#                                 shared libraries and CPU backend modules it loads, stripped
#   scripts/gpu/pack.sh spec      build/gpu-spec/{a,b,c}: what scripts/gpu/device-spec.sh takes,
#                                 one device call each (after `paddock`, and with a device-bench
#                                 bundle in build/gpu/ for libggml-cuda.so)
set -euo pipefail
cd "$(dirname "$0")/../.."
G=build/gpu
mkdir -p "$G"

pack_src() {
  local sys
  sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-0.1.161 | head -1)
  local bench=${LLAMA_BENCH_SRC:-build/peer-src/llama_cpp_python-0.3.36/vendor/llama.cpp/tools/llama-bench}
  local tmp; tmp=$(mktemp -d)
  local ex=(--exclude=llama.cpp/models --exclude=llama.cpp/docs --exclude=llama.cpp/tests
            --exclude=llama.cpp/examples --exclude=llama.cpp/.git --exclude=llama.cpp/tools/ui)
  for b in virtgpu cann webgpu openvino et metal hexagon sycl vulkan opencl zdnn musa rpc zendnn blas; do
    ex+=(--exclude="llama.cpp/ggml/src/ggml-$b")
  done
  tar -C "$sys" "${ex[@]}" -cf - llama.cpp | tar -C "$tmp" -xf -
  mkdir -p "$tmp/llama.cpp/tools/llama-bench"
  cp "$bench"/llama-bench.cpp "$bench"/main.cpp "$bench"/CMakeLists.txt "$tmp/llama.cpp/tools/llama-bench/"
  echo 'add_subdirectory(llama-bench)' > "$tmp/llama.cpp/tools/CMakeLists.txt"
  tar -C "$tmp" -cJf "$G/llama-src.tar.xz" llama.cpp
  rm -rf "$tmp"
  local py; py=$(ls -d .venv/lib/python3*/site-packages/gguf | head -1)
  rm -rf "$G/py" && mkdir -p "$G/py" && cp -r "$py" "$G/py/" && rm -rf "$G/py/gguf/__pycache__" "$G/py/gguf/scripts"
  .venv/bin/python - <<'EOF'
import importlib.util, gguf
spec = importlib.util.spec_from_file_location("s", "scripts/gpu/synth-gguf.py")
s = importlib.util.module_from_spec(spec); spec.loader.exec_module(s)
w = gguf.GGUFWriter("build/gpu/smollm2-tokenizer.gguf", "llama")
s.copy_tokenizer(w, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_ti_data_to_file(); w.close()
EOF
  ls -la "$G"
}

pack_paddock() {
  local T=${CARGO_TARGET_DIR:-/tmp/gpu-target}
  local out; out=$(ls -d "$T"/release/build/llama-cpp-sys-2-*/out | head -1)
  rm -rf "$G/paddock" && mkdir -p "$G/paddock"
  cp "$T/release/paddock" "$G/paddock/"
  # libllama, libggml, libggml-base (+ versioned names) and the CPU backend modules
  find "$out" \( -name 'lib*.so' -o -name 'lib*.so.*' \) -exec cp -P {} "$G/paddock/" \;
  strip --strip-unneeded "$G"/paddock/* 2>/dev/null || true
  du -sh "$G/paddock"; ls -la "$G/paddock"
  # xz: with the 45 MB llama-bench bundle it must fit the 64 MiB a device call carries
  tar -C "$G" -cf - paddock | xz -T0 -9 > "$G/paddock.tar.xz" && rm -rf "$G/paddock"
  ls -la "$G"
}

pack_spec() {
  local S=build/gpu-spec m=SmolLM2-135M-Instruct.Q4_1.gguf
  rm -rf "$S" && mkdir -p "$S/a" "$S/b" "$S/c"
  cp "$G/paddock.tar.xz" "$S/a/"
  cat "$G"/lb-bundle.tar.xz.* | xz -dc | tar -xO ./libggml-cuda.so | xz -T0 -6 > "$S/a/cuda.so.xz"
  split -n 2 -d "models/$m" "$S/$m.part-"
  mv "$S/$m.part-00" "$S/b/" && mv "$S/$m.part-01" "$S/c/"
  du -sh "$S"/*
}

case "${1:-}" in
  src) pack_src ;;
  paddock) pack_paddock ;;
  spec) pack_spec ;;
  *) echo "usage: $0 src|paddock|spec" >&2; exit 2 ;;
esac
