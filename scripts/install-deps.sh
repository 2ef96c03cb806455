#!/usr/bin/env bash
# Installs the Debian 12 packages p2pcdn needs to build, test and benchmark.
# Idempotent and fast when everything is present: it asks dpkg first and only
# calls apt-get for what is missing. The browser test's npm packages are
# scripts/npm-deps.sh's job (scripts/test.sh runs both).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev          # libFuzzer + sanitizers
  # libraries
  libssl-dev openssl                   # AES-256-GCM, Ed25519, random, TLS (OpenSSL 3); the CLI makes test certificates
  libsqlite3-dev                       # persistent chunk store
  nlohmann-json3-dev                   # manifests' JSON form, tracker messages
  libcli11-dev                         # command line
  librust-blake3-dev                   # official BLAKE3 C sources (c/ folder)
  libtgowt-dev libabsl-dev             # native WebRTC data channels (Google libwebrtc, dcsctp)
  libboost-dev                         # Asio + Beast (header-only): event loop, tracker WebSocket/HTTP
  libhiredis-dev                       # the tracker fleet's Redis client (protocol; our Asio adapter)
  googletest libgtest-dev libgmock-dev # unit tests (+ sources for the wasm build)
  libbenchmark-dev                     # micro-benchmarks
  # browser build / portability proof
  emscripten nodejs
  # benchmarks and tests
  b3sum time python3 sqlite3          # b3sum: the browser test's BLAKE3 checks (it fails without)
  redis-server                         # the tracker fleet's tests start their own on a loopback port
  coturn                               # TURN (turnserver): the relay-only transfer test starts its own on 127.0.0.1
  iproute2                             # network namespaces: slow-links (loopback shaped with tc), browser test
  ffmpeg                               # `p2pcdn demo`'s sample video; gateway tests (ffprobe, decode while downloading)
  firefox-esr                          # the browser peer's tests in Firefox (tests/browser/web_peer_test.py)
  libwebkit2gtk-4.1-0 xvfb xauth       # WebKitGTK's MiniBrowser (no WebRTC) for the web seed test, under xvfb-run
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav  # WebKitGTK's MSE: WebM and MP4 decoders
  chromium                             # browser interop test (tests/browser; puppeteer-core comes from npm
                                       # through scripts/npm-deps.sh; Debian ships npm as package npm,
                                       # NodeSource inside nodejs)
)

# npm: Debian's package on a stock machine; NodeSource's nodejs already has it
# (and conflicts with Debian's npm), so only ask for it when missing.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
