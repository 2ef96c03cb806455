// Compiled (never run) by tsc against the package's types (web/types/index.d.ts,
// tests/web/types_test.py): the seed's API as a page would write it must
// type-check, and misuse must not.
import { P2PCDN, ChunkManager, IndexedDBStorage, MediaStreamer, MemoryStorage, P2PCDNError, PeerMesh, loadCore, chunkId } from "p2pcdn";
import type { ChunkStorage, ConnectedPeer, Manifest, PeerInfo, Progress, Stats, StoredFile, UploadResult } from "p2pcdn";

async function page(file: File): Promise<void> {
  const cdn = new P2PCDN({
    trackerUrl: "ws://127.0.0.1:8000",
    storage: new IndexedDBStorage(),
    maxConcurrentDownloads: 10,
    enableSeeding: true,
    seedDuration: 3600,
  });
  await cdn.connect();
  const up: UploadResult = await cdn.upload(file, { name: "test.txt" });
  const sealed = await cdn.upload(new Uint8Array([1, 2, 3]), { encrypt: true });
  const key: string | undefined = sealed.key;
  const manifest: Manifest = up.manifest;
  const bytes: Uint8Array = await cdn.download(up.fileId, manifest, (p: Progress) => console.log(p.progress * 100));
  for await (const chunk of cdn.stream(up.link, null, undefined, { lookahead: 8 })) {
    const n: number = chunk.length;
    console.log(n);
  }
  // The seed's media example, and P2PCDN.stream() given straight (seekable).
  const mediaStreamer = new MediaStreamer('video/webm; codecs="vp9, opus"', { bufferAhead: 20 });
  const video = document.querySelector("video") as HTMLVideoElement;
  async function* getChunks() {
    for await (const chunk of cdn.stream(up.fileId, manifest)) yield chunk;
  }
  await mediaStreamer.streamToElement(getChunks(), manifest, video, (p) => console.log(p.bufferedAhead));
  const seekable = cdn.stream(up.fileId, null);
  seekable.seek(3);
  await new MediaStreamer("video/mp4").streamToElement(seekable, await seekable.manifest(), video);
  console.log(MediaStreamer.isTypeSupported("video/mp4"), seekable.position);
  await cdn.serveServiceWorker({ url: "/sw.js", scope: "/" });
  video.src = cdn.serviceWorkerUrl(up.link, "clip.mp4");
  const share: number | null = cdn.getStats().p2pShare;
  console.log(share, new P2PCDN({ trackerUrl: "ws://t", webSeeds: ["https://cdn.test/{fileId}"] }));
  const stats: Stats = cdn.getStats();
  const stored: StoredFile[] = await cdn.getStoredFiles();
  console.log(bytes.length, key, stats.peerConnectionsLive, stats.storage.quotaBytes, stored[0]?.complete);
  const mesh = new PeerMesh(cdn);
  const found: ConnectedPeer[] = await mesh.discoverPeers({ waitMs: 500 });
  const first = found[0]?.peerId ?? mesh.getConnectedPeers()[0].peerId;
  const piece: Uint8Array = await mesh.requestChunk(first, { fileId: up.fileId, index: 0 }, { timeoutMs: 5000 });
  const sent: { bytesSent: number } = await mesh.sendChunk(first, chunkId(up.fileId, 0));
  const links: PeerInfo[] = mesh.getPeerStats();
  console.log(piece.length, sent.bytesSent, links.length);
  // @ts-expect-error a chunk id is a string or {fileId, index}
  await mesh.requestChunk(first, 7);
  await cdn.delete(up.fileId);
  await cdn.disconnect();
  const mem: ChunkStorage = new MemoryStorage({ quota: 1 << 20 });
  await mem.storeChunk({ fileId: up.fileId, index: 0, data: new Uint8Array(1) });
  console.log(chunkId(up.fileId, 0));
  const cm = await ChunkManager.load({ chunkSize: 65536 });
  const cf = await cm.chunkFile(file, { encrypt: true });
  const whole: Uint8Array = await cm.reassembleFile(cf.chunks, cf.manifest, cf.key);
  const ok: boolean = cm.verifyChunk(cf.manifest, 0, cf.chunks[0]);
  console.log(whole.length, ok);
  const core = await loadCore();
  console.log(core.hash(new Uint8Array(4)), core.parseLink(up.link).fileId);
  try {
    await cdn.download("p2pcdn:nope");
  } catch (e) {
    if (e instanceof P2PCDNError && e.code === "malformed") console.log(e.message);
  }
  // @ts-expect-error trackerUrl is required
  new P2PCDN({});
  // @ts-expect-error download takes an id or a link, not a number
  await cdn.download(42);
  // @ts-expect-error no such error code
  if (e2().code === "no-such-code") console.log("never");
}
declare function e2(): P2PCDNError;
console.log(page);
