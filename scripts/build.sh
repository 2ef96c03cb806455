#!/usr/bin/env bash
# Configures and builds one flavour of p2pcdn into build/<flavour>.
#   release  RelWithDebInfo, gcc, warnings as errors (CLI, integration + browser tests, benchmarks)
#   asan     Debug, gcc, ASan+UBSan (unit tests)
#   fuzz     clang-14 libFuzzer targets
#   wasm     Debian emscripten: core, wire, swarm, signaling, storage (memory), transport, node and
#            their unit tests under node (node_virtual_test: whole Nodes on a virtual clock)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
jobs=${JOBS:-$(nproc)}
gen=(-G Ninja)
# ccache, when installed, lets several worktrees (and rebuilds after a branch switch) share objects.
if command -v ccache >/dev/null; then
  gen+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)} CCACHE_NOHASHDIR=1
fi
case "$flavour" in
  release) cmake -S . -B build/release "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DP2PCDN_WERROR=ON >/dev/null ;;
  # The unit tests need no WebRTC; leaving libwebrtc out keeps this build short.
  asan) cmake -S . -B build/asan "${gen[@]}" -DCMAKE_BUILD_TYPE=Debug -DP2PCDN_SANITIZE=ON -DP2PCDN_WERROR=ON \
          -DP2PCDN_BENCH=OFF -DP2PCDN_WEBRTC=OFF >/dev/null ;;
  fuzz) CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DP2PCDN_FUZZ=ON >/dev/null ;;
  wasm)
    export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
    emcmake cmake -S . -B build/wasm "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DP2PCDN_BENCH=OFF \
      -DP2PCDN_WERROR=ON >/dev/null ;;
  *) echo "usage: $0 release|asan|fuzz|wasm" >&2; exit 2 ;;
esac
# TARGETS: only these (e.g. the browser package alone: TARGETS=p2pcdn_core_web ./scripts/build.sh wasm).
cmake --build "build/$flavour" -j "$jobs" ${TARGETS:+--target $TARGETS}
