#!/usr/bin/env bash
# Builds llama.cpp's command-line tools (llama-bench, llama-perplexity, llama-cli, llama-quantize,
# llama-server, llama-tokenize) as a peer to measure herd against: the reference for
# `herd perplexity` (tools/gen_perplexity_golden.py) and for speed (llama-bench).
#
# Source: the PyPI source distribution of llama-cpp-python==0.3.36 (sha256 pinned below), which
# vendors llama.cpp at commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f (the same llama.cpp as
# tools/gen_llamacpp_goldens.py; the sdist carries the submodule's git metadata, and this script
# checks the commit in .git/modules/vendor/llama.cpp/HEAD). Only PyPI is contacted, not GitHub.
#
# Build: CMake + Ninja, Release, CPU backend only, GGML_NATIVE=ON (-march=native: the fastest build
# for *this* machine, so the binaries are not portable and the cache is per machine), static
# libraries (self-contained binaries), no tests/examples/web UI/HTTPS/curl. About 20-30 minutes on 2
# cores. Installed into
#     ${HERD_LLAMACPP_DIR:-$HOME/.cache/herd/llama.cpp-0.3.36}/bin/
# (outside the repository), with BUILD_INFO (commit, flags, compiler) next to bin/. Idempotent: when
# all the binaries are there it only prints where they are. HERD_LLAMACPP_JOBS sets the parallelism
# (default: the number of cores); the build runs under `nice -n 10`.
#
# Needs (all covered by scripts/setup): cmake, ninja and a C/C++ compiler (cmake, ninja-build,
# build-essential in its apt list), git (in the list too; llama.cpp's CMake uses it to stamp the
# commit into the binaries), and pip for `pip download`: the repository's .venv, which
# scripts/setup creates (python3-venv; Debian's python3 has no pip of its own), else
# `python3 -m pip`. ccache (in the list) is used when present. Network: PyPI only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VERSION=0.3.36
SDIST=llama_cpp_python-$VERSION.tar.gz
SDIST_SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
COMMIT=0c1e57098bba43ac29e6e3b677cdceebdd22334f
TARGETS=(llama-bench llama-perplexity llama-cli llama-quantize llama-server llama-tokenize)

DEST=${HERD_LLAMACPP_DIR:-$HOME/.cache/herd/llama.cpp-$VERSION}
JOBS=${HERD_LLAMACPP_JOBS:-$(nproc)}

have_all() {
  local t
  for t in "${TARGETS[@]}"; do [ -x "$DEST/bin/$t" ] || return 1; done
}

if have_all; then
  echo "build_llamacpp: already built (llama.cpp $COMMIT from llama-cpp-python==$VERSION)"
  echo "build_llamacpp: binaries in $DEST/bin"
  exit 0
fi

for tool in cmake ninja tar sha256sum; do
  if ! command -v "$tool" >/dev/null; then
    echo "build_llamacpp: $tool not found (run scripts/setup)" >&2
    exit 1
  fi
done
if [ -x "$ROOT/.venv/bin/python" ]; then
  PIP=("$ROOT/.venv/bin/python" -m pip)
else
  PIP=(python3 -m pip)
fi

mkdir -p "$DEST"
# 1. The sdist, sha256-checked (kept in $DEST/dl so a rebuild does not download it again).
DL=$DEST/dl
if [ ! -f "$DL/$SDIST" ] || [ "$(sha256sum "$DL/$SDIST" | cut -d' ' -f1)" != "$SDIST_SHA" ]; then
  echo "build_llamacpp: downloading llama-cpp-python==$VERSION sdist from PyPI"
  rm -rf "$DL"
  mkdir -p "$DL"
  "${PIP[@]}" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$DL"
fi
got=$(sha256sum "$DL/$SDIST" | cut -d' ' -f1)
if [ "$got" != "$SDIST_SHA" ]; then
  echo "build_llamacpp: $SDIST sha256 mismatch: got $got, want $SDIST_SHA" >&2
  exit 1
fi

# 2. Extract (the whole sdist: vendor/llama.cpp/.git points into the sdist's .git/modules).
SRC_TOP=$DEST/src/llama_cpp_python-$VERSION
SRC=$SRC_TOP/vendor/llama.cpp
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  echo "build_llamacpp: extracting $SDIST"
  rm -rf "$DEST/src"
  mkdir -p "$DEST/src"
  tar xzf "$DL/$SDIST" -C "$DEST/src"
fi
head_file=$SRC_TOP/.git/modules/vendor/llama.cpp/HEAD
src_commit=$(cat "$head_file" 2>/dev/null || echo unknown)
if [ "$src_commit" != "$COMMIT" ]; then
  echo "build_llamacpp: vendored llama.cpp is at $src_commit, want $COMMIT" >&2
  exit 1
fi
echo "build_llamacpp: llama.cpp commit $src_commit (vendored in llama-cpp-python==$VERSION)"

# 3. Configure and build only the wanted targets.
BUILD=$DEST/build
CMAKE_ARGS=(
  -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON
  -DGGML_CPU=ON
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENCL=OFF -DGGML_SYCL=OFF
  -DGGML_HIP=OFF
  -DGGML_RPC=OFF
  -DGGML_BACKEND_DL=OFF
  -DLLAMA_CURL=OFF
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
)
if [ ! -f "$BUILD/build.ninja" ]; then
  echo "build_llamacpp: configuring in $BUILD"
  nice -n 10 cmake -S "$SRC" -B "$BUILD" "${CMAKE_ARGS[@]}"
fi
echo "build_llamacpp: building ${TARGETS[*]} with $JOBS jobs (20-30 minutes on 2 cores)"
nice -n 10 cmake --build "$BUILD" --config Release -j "$JOBS" --target "${TARGETS[@]}"

# 4. A build record, then the binaries (static: no shared libraries to carry along).
{
  echo "llama-cpp-python $VERSION sdist sha256 $SDIST_SHA"
  echo "llama.cpp commit $src_commit"
  echo "cmake ${CMAKE_ARGS[*]}"
  echo "compiler $(c++ --version | head -1)"
  echo "host $(uname -srm)"
  echo "cpu $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
  echo "cpu flags $( (grep -m1 '^flags' /proc/cpuinfo || true) | tr ' \t' '\n\n' \
    | grep -E '^(avx|avx2|fma|f16c|bmi2|avx_vnni|avx512[a-z_]*)$' | tr '\n' ' ')"
} > "$DEST/BUILD_INFO"
mkdir -p "$DEST/bin"
for t in "${TARGETS[@]}"; do  # last: the binaries' presence is what marks the build done
  install -m 755 "$BUILD/bin/$t" "$DEST/bin/$t"
done

have_all || { echo "build_llamacpp: some binaries are missing in $DEST/bin" >&2; exit 1; }
echo "build_llamacpp: binaries in $DEST/bin:"
for t in "${TARGETS[@]}"; do echo "  $DEST/bin/$t"; done
