// ChunkManager (web/src/chunks.js) in node over the node build of the core,
// with node's WebCrypto: a file chunked here reassembles identical, its id
// is the one the C++ computes for its manifest, a flipped byte or a wrong
// key is refused; encrypted chunks verify as stored and decrypt back.
//   node chunks_test.mjs MODULE.js
import { createRequire } from "node:module";
import { wrapCore } from "../../web/src/core.js";
import { check, checks, rejectsCode } from "./check.mjs";
import { ChunkManager } from "../../web/src/chunks.js";

const [modulePath] = process.argv.slice(2);
const core = wrapCore(await createRequire(import.meta.url)(modulePath)());
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

const cm = new ChunkManager(core, { chunkSize: 1024 });
let x = 2463534242;  // xorshift32: no two chunks alike
const data = Uint8Array.from({ length: 3500 }, () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x & 255; });

// Plain: a Blob and the same bytes as a Uint8Array give one id; 4 chunks.
const plain = await cm.chunkFile(new Blob([data]), { name: "a.mp4" });
check(plain.chunks.length === 4 && plain.manifest.size === 3500, `chunks ${plain.chunks.length}`);
check(plain.manifest.mimeType === "video/mp4", `mime from the name: ${plain.manifest.mimeType}`);
check(core.manifestFromJson(plain.manifest).fileId === plain.fileId, "the id is the C++'s");
check((await cm.chunkFile(data, { name: "a.mp4" })).fileId === plain.fileId, "a Uint8Array gives the same id");
check(equal(await cm.reassembleFile(plain.chunks, plain.manifest), data), "reassembled identical");
check(plain.chunks.every((c, i) => cm.verifyChunk(plain.manifest, i, c)), "every chunk verifies");
const flipped = Uint8Array.from(plain.chunks[2]);
flipped[5] ^= 1;
check(!cm.verifyChunk(plain.manifest, 2, flipped), "a flipped byte does not verify");
check(!cm.verifyChunk(plain.manifest, 1, plain.chunks[2]), "a chunk at another index does not verify");
const bad = plain.chunks.slice();
bad[2] = flipped;
await rejectsCode(cm.reassembleFile(bad, plain.manifest), "integrity", "reassembling a flipped chunk");

// Encrypted: a fresh key and salt; stored chunks carry the tag and verify as stored.
const sealed = await cm.chunkFile(data, { name: "a.bin", encrypt: true });
check(/^[0-9a-f]{64}$/.test(sealed.key) && sealed.manifest.encryption.algorithm === "AES-256-GCM", "a key and salt");
check(sealed.fileId !== plain.fileId && sealed.chunks[3].length === 3500 - 3 * 1024 + 16, "sealed chunks hold a tag");
check(sealed.chunks.every((c, i) => cm.verifyChunk(sealed.manifest, i, c)), "sealed chunks verify as stored");
check(equal(await cm.reassembleFile(sealed.chunks, sealed.manifest, sealed.key), data), "decrypted identical");
const wrong = sealed.key.replace(/^./, (c) => (c === "0" ? "1" : "0"));
await rejectsCode(cm.reassembleFile(sealed.chunks, sealed.manifest, wrong), "integrity", "a wrong key");
await rejectsCode(cm.decryptChunk(sealed.key, sealed.manifest, 1, sealed.chunks[0]), "integrity", "a chunk at another index");
const one = await cm.encryptChunk(sealed.key, sealed.manifest, 0, data.subarray(0, 1024));
check(equal(one, sealed.chunks[0]), "encryptChunk seals as chunkFile did (deterministic per index)");
await rejectsCode(cm.reassembleFile(sealed.chunks, sealed.manifest), "invalid-argument", "no key");
console.log(`web chunks: ${checks()} checks passed`);
