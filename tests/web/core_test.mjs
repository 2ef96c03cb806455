// The browser package's core (web/src/core.js over the wasm of
// src/browser/exports.cpp), run in node on the node build of the same C++:
//   node core_test.mjs MODULE.js BLAKE3_VECTORS.json
// BLAKE3 against the official vectors; a manifest built here from hashed
// chunks gets the file id the C++ computes, is refused when tampered with or
// malformed; chunk verification; links. Exits 1 on the first failure.
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { wrapCore } from "../../web/src/core.js";
import { check, checks, throwsCode } from "./check.mjs";

const [modulePath, vectorsPath] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const mod = await require(modulePath)();
const core = wrapCore(mod);
const input = (n) => Uint8Array.from({ length: n }, (_, i) => i % 251);

// BLAKE3: the official vectors (a few lengths across chunk and tree edges).
const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
const lengths = [0, 1, 1023, 1024, 1025, 8192, 31744, 102400];
const picked = vectors.cases.filter((c) => lengths.includes(c.input_len));
check(picked.length === lengths.length, `${picked.length} of ${lengths.length} BLAKE3 vectors found`);
for (const c of picked) {
  check(core.hash(input(c.input_len)) === c.hash.slice(0, 64), `BLAKE3 of ${c.input_len} bytes`);
}
throwsCode(() => core.hash("abc"), "invalid-argument", "a string is not bytes");
throwsCode(() => core.hash(new ArrayBuffer(4)), "invalid-argument", "an ArrayBuffer is not a Uint8Array");

// A manifest of 3 chunks of 16 KiB (the last short), hashed here.
const chunkSize = 16384;
const data = input(2 * chunkSize + 1000);
const chunks = [0, 1, 2].map((i) => data.subarray(i * chunkSize, Math.min(data.length, (i + 1) * chunkSize)));
const m = { version: 2, name: "t.bin", size: data.length, mimeType: "application/octet-stream", chunkSize,
            chunks: chunks.map((c) => core.hash(c)) };
const canon = core.manifestFromJson(m);
check(/^[0-9a-f]{64}$/.test(canon.fileId), "a file id");
check(core.manifestFromJson(canon).fileId === canon.fileId, "its own fileId is accepted");
check(core.manifestFromJson(JSON.stringify({ ...m, name: "t.bin" })).fileId === canon.fileId, "same content, same id");
check(core.manifestFromJson({ ...m, name: "u.bin" }).fileId !== canon.fileId, "another name, another id");
throwsCode(() => core.manifestFromJson({ ...canon, fileId: "00".repeat(32) }), "integrity", "a wrong fileId");
throwsCode(() => core.manifestFromJson("{not json"), "malformed", "not JSON");
throwsCode(() => core.manifestFromJson({ ...m, size: data.length + chunkSize }), "malformed", "size and chunks disagree");
throwsCode(() => core.manifestFromJson("[" + "[".repeat(100000)), "malformed", "deep nesting");

// Chunks.
core.verifyChunk(canon, 2, chunks[2]);
const bad = Uint8Array.from(chunks[1]);
bad[100] ^= 1;
throwsCode(() => core.verifyChunk(canon, 1, bad), "integrity", "a flipped byte");
throwsCode(() => core.verifyChunk(canon, 2, chunks[1]), "integrity", "the wrong chunk");
throwsCode(() => core.verifyChunk(canon, NaN, chunks[0]), "invalid-argument", "a NaN index");
throwsCode(() => core.verifyChunk(canon, 3, chunks[0]), "invalid-argument", "an index past the end");

// Links.
const l = core.parseLink(`p2pcdn:${canon.fileId}?tr=ws%3A%2F%2F127.0.0.1%3A8000`);
check(l.fileId === canon.fileId && l.trackers.length === 1 && l.trackers[0] === "ws://127.0.0.1:8000", "a link");
check(core.parseLink(canon.fileId).fileId === canon.fileId, "a bare id");
throwsCode(() => core.parseLink("p2pcdn:xyz"), "malformed", "a bad link");
const key = "ab".repeat(32);
const made = core.formatLink({ fileId: canon.fileId, trackers: ["ws://127.0.0.1:8000"], key });
const back = core.parseLink(made);
check(back.fileId === canon.fileId && back.trackers[0] === "ws://127.0.0.1:8000" && back.key === key,
      `a link made and parsed back: ${made}`);
check(core.formatLink({ fileId: canon.fileId }) === `p2pcdn:${canon.fileId}`, "a link without trackers");
throwsCode(() => core.formatLink({ fileId: "xyz" }), "malformed", "a link of a bad id");
throwsCode(() => core.formatLink({ fileId: canon.fileId, key: "ab" }), "invalid-argument", "a short key");
throwsCode(() => core.formatLink({ fileId: canon.fileId, trackers: [1] }), "invalid-argument", "a tracker not a string");
throwsCode(() => core.formatLink("not an object"), "invalid-argument", "a link not an object");

// MIME types, as the native `add` picks them.
check(core.guessMimeType("Movie.MP4") === "video/mp4", "mp4");
check(core.guessMimeType("noext") === "application/octet-stream", "no extension");

// Memory: a large input crosses and is freed: after the first, 20 more leave
// the heap as it was (a leak of 32 MiB a call would need 640 MiB, over the cap).
const big = new Uint8Array(32 << 20);
core.hash(big);
const heap = mod.HEAPU8.length;
for (let i = 0; i < 20; ++i) core.hash(big);
check(mod.HEAPU8.length === heap, `the heap grew from ${heap} to ${mod.HEAPU8.length} bytes`);
// More than the module may ever hold: refused, and the module still works.
throwsCode(() => core.hash(new Uint8Array(600 << 20)), "too-large", "600 MiB into a 512 MiB heap");
check(core.hash(input(1)) === picked.find((c) => c.input_len === 1).hash.slice(0, 64), "still works after a refusal");

// The package as pages load it: the files next to each other.
const dist = join(dirname(modulePath), "..", "web", "dist");
for (const f of ["index.js", "core.js", "p2pcdn_core.mjs", "p2pcdn_core.wasm"]) check(existsSync(join(dist, f)), `dist/${f}`);
console.log(`web core: ${checks()} checks passed`);
