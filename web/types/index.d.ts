// Types of the p2pcdn browser package (web/src/index.js): the seed's API
// (../shared/seed/p2p-cdn-README.md) over the C++ peer in WebAssembly.
// Checked by tsc in the tests (tests/web/types_check.ts).

/** The JSON form of a manifest (docs/protocol.md), as `p2pcdn manifest ID --json` prints it. */
export interface Manifest {
  fileId: string;
  version: number;
  name: string;
  size: number;
  mimeType: string;
  chunkSize: number;
  encryption?: { algorithm: "AES-256-GCM"; salt: string };
  /** BLAKE3 of each chunk as stored (hex). */
  chunks: string[];
}

/** A failure: `code` names the C++ error (Errc), `message` says what happened. */
export class P2PCDNError extends Error {
  constructor(code: P2PCDNError["code"], message: string, errc?: number);
  readonly code:
    | "invalid-argument" | "malformed" | "too-large" | "not-found" | "integrity" | "io" | "quota-exceeded"
    | "unsupported" | "crypto" | "cancelled" | "back-pressure" | "timed-out" | "internal";
  readonly errc: number;
}
export const ABI_VERSION: number;

/** Where a page keeps verified chunks. Every method returns a promise. */
export interface ChunkStorage {
  storeChunk(chunk: { fileId: string; index: number; data: Uint8Array }): Promise<void>;
  getChunk(chunkId: string | { fileId: string; index: number }): Promise<Uint8Array | null>;
  deleteChunk(chunkId: string | { fileId: string; index: number }): Promise<void>;
  storeManifest(manifest: Manifest, meta?: { pinned?: boolean; lastUsed?: number }): Promise<void>;
  getManifest(fileId: string): Promise<Manifest | null>;
  // Optional: resuming what the store holds, eviction, quota.
  open?(): Promise<void>;
  close?(): void;
  deleteFile?(fileId: string): Promise<void>;
  listFiles?(): Promise<Array<{ fileId: string; manifest: Manifest; pinned: boolean; lastUsed: number; chunks: number[] }>>;
  estimate?(): Promise<{ quota: number; usage: number }>;
}

/** A ChunkStorage with every optional method: what the package's own backends are. */
export interface FullChunkStorage extends ChunkStorage {
  open(): Promise<void>;
  close(): void;
  deleteFile(fileId: string): Promise<void>;
  listFiles(): Promise<Array<{ fileId: string; manifest: Manifest; pinned: boolean; lastUsed: number; chunks: number[] }>>;
  estimate(): Promise<{ quota: number; usage: number }>;
}

/** In JavaScript Maps: gone with the page; its quota (default 256 MiB) bounds the heap. */
export interface MemoryStorage extends FullChunkStorage {}
export class MemoryStorage {
  constructor(options?: { quota?: number });
}

/** IndexedDB (database "p2pcdn" by default): persistent, batched writes; one peer per database. */
export interface IndexedDBStorage extends FullChunkStorage {}
export class IndexedDBStorage {
  constructor(options?: { name?: string; batchDelay?: number; batchSize?: number; indexedDB?: IDBFactory });
  /** Whether navigator.storage.persist() was granted (asked at open, never waited for). */
  readonly persisted: boolean;
  /** Deletes the whole database. */
  destroy(): Promise<void>;
}

export function chunkId(fileId: string, index: number): string;
export function parseChunkId(id: string | { fileId: string; index: number }): { fileId: string; index: number };

export interface P2PCDNOptions {
  /** ws://host:port of the tracker (required). */
  trackerUrl: string;
  iceServers?: Array<string | { urls: string | string[]; username?: string; credential?: string }>;
  /** "relay": connect to peers only through the TURN servers of iceServers. */
  iceTransportPolicy?: "all" | "relay";
  maxConcurrentDownloads?: number;
  maxConcurrentUploads?: number;
  chunkSize?: number;
  /** Default: IndexedDBStorage where the page has IndexedDB, else MemoryStorage. */
  storage?: ChunkStorage;
  /** Bytes at most (default 10e9), and at most what navigator.storage.estimate() allows. */
  storageQuota?: number;
  enableSeeding?: boolean;
  /** Seconds a finished download is served (0: until delete() or disconnect()). */
  seedDuration?: number;
  /** Milliseconds between announces. */
  discoveryInterval?: number;
  /** Web seeds for every file: http(s) URLs serving it with Range support, "{fileId}" replaced (besides a link's ws=). */
  webSeeds?: string[];
}

export interface Progress {
  fileId: string;
  /** 0..1 */
  progress: number;
  bytesVerified: number;
  bytesTotal: number;
  chunksHave: number;
  chunksTotal: number;
  /** Chunks fetched from peers in this session (the rest came from the store). */
  chunksFetched?: number;
  peers: number;
  /** Bytes of this file that came from web seeds. */
  bytesFromOrigins?: number;
  /** Who delivered `chunk`: a peer's id (hex), "web seed", or "" (from the store). */
  from?: string;
  /** The chunk that just arrived. */
  chunk?: number;
}

export interface UploadResult {
  fileId: string;
  manifest: Manifest;
  /** p2pcdn:<fileId>?tr=<tracker>[&k=<key>]: all another peer needs. */
  link: string;
  /** The AES-256-GCM key (hex), when encrypted. */
  key?: string;
}

export interface PeerInfo {
  fileId: string;
  peerId: string;
  /** What the peer id says it is: a native p2pcdn peer, a browser one, WebTorrent, or other. */
  client: "native" | "browser" | "webtorrent" | "other";
  seeder: boolean;
  chunksAvailable: number;
  bytesUp: number;
  bytesDown: number;
  upRate: number;
  downRate: number;
  chunksServed: number;
  chunksReceived: number;
  badChunks: number;
  requestsOutstanding: number;
  unchoked: boolean;
  rttSeconds?: number;
  localCandidateType?: string;
  remoteCandidateType?: string;
}

export interface Stats {
  peerId: string;
  peers: PeerInfo[];
  connectedPeers: number;
  closedLinks: number;
  closedPeers: PeerInfo[];
  bytesUploaded: number;
  bytesDownloaded: number;
  /** Bytes from web seeds (HTTP origins), and the share that came from peers (null before any). */
  bytesFromOrigins: number;
  p2pShare: number | null;
  peerConnectionsCreated: number;
  peerConnectionsLive: number;
  storage: {
    bytesUsed: number;
    quotaBytes: number;
    chunks: number;
    files: number;
    evictedChunks: number;
    indexMs: number;
    skippedAtLoad: number;
  };
}

export interface StoredFile {
  fileId: string;
  name: string;
  size: number;
  mimeType: string;
  chunksTotal: number;
  chunksStored: number;
  bytesStored: number;
  encrypted: boolean;
  pinned: boolean;
  complete: boolean;
}

/** stream()'s chunks, in order; seek(i) makes chunk i the next one given. */
export interface ChunkStream extends AsyncIterableIterator<Uint8Array> {
  seek(chunkIndex: number): void;
  /** The index of the chunk given last (-1 before the first). */
  readonly position: number;
  manifest(): Promise<Manifest>;
}

export class P2PCDN {
  constructor(options: P2PCDNOptions);
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  upload(file: Blob | Uint8Array | ArrayBuffer | ArrayBufferView,
         metadata?: { name?: string; mimeType?: string; encrypt?: boolean; key?: string }): Promise<UploadResult>;
  /** options.signal cancels it (rejects with code "cancelled"; what is stored stays). */
  download(fileIdOrLink: string, manifest?: Manifest | null, onProgress?: (p: Progress) => void,
           options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  stream(fileIdOrLink: string, manifest?: Manifest | null, onProgress?: (p: Progress) => void,
         options?: { lookahead?: number }): ChunkStream;
  delete(fileId: string): Promise<void>;
  getStats(): Stats;
  getStoredFiles(): Promise<StoredFile[]>;
  /** A link's parts (checked by the core; throws P2PCDNError for what is not a link or a file id). After connect(). */
  parseLink(link: string): { fileId: string; trackers: string[]; key?: string; webSeeds?: string[] };
  /** Registers the service worker (dist/sw.js; its scope must hold the page) and serves its requests. */
  serveServiceWorker(options?: { url?: string; scope?: string; keepAliveMs?: number }): Promise<void>;
  /** The file's URL through the service worker: for <video src>, <img src>, links; Range supported. */
  serviceWorkerUrl(fileIdOrLink: string, name?: string): string;
}

export type ChunkId = string | { fileId: string; index: number };

/** A peer linked now, over all the files shared with it. */
export interface ConnectedPeer {
  peerId: string;
  files: string[];
  bytesUp: number;
  bytesDown: number;
  rttMs: number | null;
}

/**
 * The swarm one level down, over a P2PCDN's own peer (same node, links and
 * store). The protocol is pull: requestChunk asks the named peer first;
 * sendChunk pushes nothing: it offers a chunk we hold (a HAVE; served even while
 * the peer is choked) and resolves once the linked peer holds it.
 */
export class PeerMesh {
  constructor(cdn: P2PCDN);
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Announces now; waits up to waitMs (default 2000) for a new peer. */
  discoverPeers(options?: { waitMs?: number }): Promise<ConnectedPeer[]>;
  getConnectedPeers(): ConnectedPeer[];
  /** One entry per open link (peer and file). */
  getPeerStats(): PeerInfo[];
  /** The chunk's plaintext, asked of peerId first (the store's copy if held). */
  requestChunk(peerId: string, chunkId: ChunkId, options?: { timeoutMs?: number }): Promise<Uint8Array>;
  /** Resolves once peerId holds the chunk; bytesSent: what we sent it meanwhile. */
  sendChunk(peerId: string, chunk: ChunkId, options?: { timeoutMs?: number }): Promise<{ bytesSent: number; ms: number }>;
}

/** Files <-> verified chunks (as stored: sealed when encrypted). */
export class ChunkManager {
  /** Loads the WebAssembly core (once per page). */
  static load(options?: { chunkSize?: number }): Promise<ChunkManager>;
  /** Over a core already loaded (loadCore()). */
  constructor(core: Core, options?: { chunkSize?: number });
  readonly chunkSize: number;
  chunkFile(file: Blob | Uint8Array | ArrayBuffer | ArrayBufferView,
            metadata?: { name?: string; mimeType?: string; encrypt?: boolean; key?: string }):
    Promise<{ fileId: string; manifest: Manifest; chunks: Uint8Array[]; key?: string }>;
  reassembleFile(chunks: Uint8Array[], manifest: Manifest, key?: string | null): Promise<Uint8Array>;
  verifyChunk(manifest: Manifest, index: number, bytes: Uint8Array): boolean;
  encryptChunk(key: string, manifest: Manifest, index: number, plain: Uint8Array): Promise<Uint8Array>;
  decryptChunk(key: string, manifest: Manifest, index: number, stored: Uint8Array): Promise<Uint8Array>;
}

/** The core alone (the module is shared with every P2PCDN of the page). */
export interface Core {
  hash(bytes: Uint8Array): string;
  manifestFromJson(manifest: Manifest | string): Manifest;
  verifyChunk(manifest: Manifest | string, index: number, bytes: Uint8Array): void;
  parseLink(link: string): { fileId: string; trackers: string[]; key?: string };
  formatLink(link: { fileId: string; trackers?: string[]; key?: string | null }): string;
  guessMimeType(name: string): string;
  fileKey(keyHex: string, saltHex: string): string;
  chunkAead(saltHex: string, index: number, plainLength: number): { nonce: string; aad: string };
}
export function loadCore(options?: object): Promise<Core>;

export interface MediaStreamerOptions {
  /** Seconds buffered ahead of the play head, at most (default 30). */
  bufferAhead?: number;
  /** The goal never shrinks below this on QuotaExceededError (default 4). */
  minBufferAhead?: number;
  /** Seconds behind the play head never removed to make room (default 2). */
  keepBehind?: number;
  /** The MediaSource must open within this (default 10000). */
  openTimeoutMs?: number;
}

export interface MediaProgress {
  currentTime: number;
  bufferedAhead: number;
  bytesAppended: number;
  segmentsAppended: number;
  seeks: number;
  quotaEvictions: number;
  bufferGoal: number;
  /** The chunk of the stream given last (-1: not a P2PCDN stream). */
  position: number;
  lastSeek?: { time: number; offset: number; exact: boolean; chunk: number };
}

/**
 * Plays WebM or fragmented MP4 while it downloads, through Media Source
 * Extensions. Seeking to an unbuffered time moves the stream when `chunks` is
 * P2PCDN.stream()'s (its seek()), by the file's own index (WebM Cues up front,
 * an MP4 sidx).
 */
export class MediaStreamer {
  constructor(mimeType: string, options?: MediaStreamerOptions);
  static isTypeSupported(mimeType: string): boolean;
  streamToElement(chunks: AsyncIterable<Uint8Array> | ChunkStream, manifest: Manifest | null,
                  element: HTMLMediaElement, onProgress?: (p: MediaProgress) => void): Promise<void>;
  stop(): void;
  progress(): MediaProgress;
}
