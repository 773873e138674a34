#!/usr/bin/env bash
# Builds tools/llamacpp_dump/llamacpp_dump.cc against the pinned llama.cpp (the sources
# bench/build_llamacpp.sh downloads and checks: llama-cpp-python==0.3.36's sdist, llama.cpp
# 0c1e570), with the x86-64 code path of the SmolLM2 goldens: AVX2 + FMA + F16C, no AVX-512, no
# VNNI (tools/gen_llamacpp_goldens.py's CMAKE_ARGS_X86). About 10 minutes on 2 cores; the binary
# goes to ${HERD_LLAMACPP_DIR:-$HOME/.cache/herd/llama.cpp-0.3.36}/dump-avx2/llamacpp_dump.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${HERD_LLAMACPP_DIR:-$HOME/.cache/herd/llama.cpp-0.3.36}
SRC=$DEST/src/llama_cpp_python-0.3.36/vendor/llama.cpp
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  echo "llamacpp_dump: no llama.cpp sources in $SRC; run bench/build_llamacpp.sh first" >&2
  exit 1
fi
BUILD=$DEST/dump-avx2
cmake -S tools/llamacpp_dump -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_SRC="$SRC" \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
  -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_CUDA=OFF \
  -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_SERVER=OFF >/dev/null
nice -n 10 ninja -C "$BUILD" llamacpp_dump
echo "llamacpp_dump: $BUILD/llamacpp_dump"
