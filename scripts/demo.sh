#!/usr/bin/env bash
# The main job: sets everything up, then runs a local swarm on this machine —
# our tracker, a seeder and two leechers as separate processes over real WebRTC
# data channels on loopback — and checks that every copy is byte-identical.
# (The media demo with a gateway and player replaces this in a later issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release >/dev/null
P=$PWD/build/release/src/cli/p2pcdn
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

size_mib=${DEMO_SIZE_MIB:-64}
echo "== generating a ${size_mib} MiB sample file"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/sample.bin"

echo "== p2pcdn add / verify / export (local store)"
out=$("$P" --home "$work/seeder" -q add "$work/sample.bin" --name sample.bin --json)
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["fileId"])' "$out")
"$P" --home "$work/seeder" -q verify "$id"
"$P" --home "$work/seeder" -q export "$id" -o "$work/export.bin"
cmp "$work/sample.bin" "$work/export.bin"

echo "== p2pcdn tracker"
"$P" tracker --listen 127.0.0.1:0 > "$work/tracker.out" 2>"$work/tracker.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/tracker.out" 2>/dev/null && break; sleep 0.05; done
url=$(grep -o 'ws://[^ ]*' "$work/tracker.out")
echo "   $url"

echo "== p2pcdn seed"
"$P" --home "$work/seeder" -q --json seed "$id" --tracker "$url" --loopback > "$work/seed.out" 2>"$work/seed.err" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/seed.out" ]] && break; sleep 0.05; done
link=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["link"])' "$work/seed.out")
echo "   $link"
sleep 0.5  # let the seeder announce

echo "== two leechers: p2pcdn get (manifest from peers, every chunk verified)"
for n in 1 2; do
  "$P" --home "$work/leecher$n" -q --json get "$link" -o "$work/copy$n.bin" --loopback > "$work/get$n.out" &
  pids+=($!)
  getpids[$n]=$!
done
for n in 1 2; do wait "${getpids[$n]}"; done
for n in 1 2; do
  cmp "$work/sample.bin" "$work/copy$n.bin"
  python3 - "$work/get$n.out" "$n" <<'PY'
import json, sys
r = [json.loads(line) for line in open(sys.argv[1]) if line.strip()][-1]  # the last line: "done"
mb = r["size"] / 1e6
t = r["completeSeconds"]
print(f"   leecher {sys.argv[2]}: {mb:.1f} MB in {t:.2f} s ({mb / t:.1f} MB/s end to end), first chunk after "
      f"{r['firstChunkSeconds'] * 1000:.0f} ms, {r['chunksFetched']} chunks from peers — byte-identical")
PY
done
curl -s "http://${url#ws://}/stats" 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); print(f"   tracker: {s[\"offersRelayed\"]} offers and {s[\"answersRelayed\"]} answers relayed")' 2>/dev/null || true
echo "== done: every copy is byte-identical"
