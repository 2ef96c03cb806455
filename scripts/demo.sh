#!/usr/bin/env bash
# The main job: installs what it needs, builds, then runs `p2pcdn demo` — an
# embedded tracker, a seeder and leechers over real WebRTC data channels on
# loopback sharing a sample video (made with ffmpeg), a check of every copy,
# a summary, and the HTTP gateway where ffmpeg plays the video while a fresh
# leecher downloads it; the gateway also serves the web app (the browser
# package, built here too), whose link it prints: with --stay, open it in
# Chromium or Firefox and the page joins the swarm as a browser peer.
# Arguments go to `p2pcdn demo` (e.g. --stay, --file F, --leechers N; see
# `p2pcdn demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release >/dev/null
TARGETS=p2pcdn_core_web ./scripts/build.sh wasm >/dev/null  # the web app's package (build/wasm/web)
exec ./build/release/src/cli/p2pcdn demo "$@"
