#!/usr/bin/env bash
# The main job: sets everything up, then adds a generated sample file to a
# fresh local store, verifies it and exports it again, checking the copy is
# byte-identical. (The swarm demo replaces this as the network lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release >/dev/null
P=$PWD/build/release/src/cli/p2pcdn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export P2PCDN_HOME=$work/home

echo "== generating a 64 MiB sample file"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$work/sample.bin"
echo "== p2pcdn add"
out=$("$P" add "$work/sample.bin" --name sample.bin --json)
echo "$out"
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["fileId"])' "$out")
echo "== p2pcdn ls"
"$P" ls
echo "== p2pcdn verify"
"$P" verify "$id"
echo "== p2pcdn export"
"$P" export "$id" -o "$work/copy.bin"
cmp "$work/sample.bin" "$work/copy.bin"
echo "== exported copy is byte-identical ($(stat -c %s "$work/copy.bin") bytes)"
