#!/usr/bin/env bash
# The main job: installs what it needs, builds, then runs `p2pcdn demo` — an
# embedded tracker, a seeder and leechers over real WebRTC data channels on
# loopback sharing a sample video (made with ffmpeg), a check of every copy,
# a summary, and the HTTP gateway where ffmpeg plays the video while a fresh
# leecher downloads it. Arguments go to `p2pcdn demo` (e.g. --stay, --file F,
# --leechers N; see `p2pcdn demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release >/dev/null
exec ./build/release/src/cli/p2pcdn demo "$@"
