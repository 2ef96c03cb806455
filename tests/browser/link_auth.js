// Link authentication (docs/protocol.md "Peer identity") written again, in
// plain page JavaScript with WebCrypto only, for the test pages that speak the
// wire protocol by hand (interop.mjs, hostile_peer.js): a second
// implementation, so the C++ one is checked against the document, not itself.
//   AUTH_HELLO (12): version 1, Ed25519 public key (32), nonce (32)
//   AUTH_PROOF (13): Ed25519 signature (64) over
//     "p2pcdn link auth v1" 0x00, signer key, verifier key, signer nonce,
//     verifier nonce, u16 + the signer's own DTLS fingerprint, u16 + the one it sees
//   peer id: "-P" <client letter> "0002-" and the key's first 12 bytes.

const enc = new TextEncoder();
const ALG = { name: 'Ed25519' };
export const AUTH_HELLO = 12;
export const AUTH_PROOF = 13;

export async function makeIdentity(client = 'T') {
  const pair = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { pair, pub, peerId: peerIdOf(pub, client) };
}

export function peerIdOf(pub, client = 'T') {
  const id = new Uint8Array(20);
  id.set(enc.encode(`-P${client}0002-`), 0);
  id.set(pub.subarray(0, 12), 8);
  return id;
}

// The one a=fingerprint of an SDP: "<hash> <hex>", lower case, no colons
// (null if there are several: which one DTLS checks would be the stack's choice).
export function fingerprint(sdp) {
  const lines = sdp.split(/\r?\n/).filter((l) => l.startsWith('a=fingerprint:'));
  if (lines.length !== 1) return null;
  const line = lines[0];
  const [alg, hex] = line.slice('a=fingerprint:'.length).split(' ');
  return `${alg.toLowerCase()} ${hex.replace(/:/g, '').toLowerCase()}`;
}

function transcript(signerKey, verifierKey, signerNonce, verifierNonce, signerLocal, signerRemote) {
  const parts = [enc.encode('p2pcdn link auth v1'), Uint8Array.of(0), signerKey, verifierKey, signerNonce, verifierNonce];
  for (const fp of [signerLocal, signerRemote]) {
    const b = enc.encode(fp);
    parts.push(Uint8Array.of(b.length >> 8, b.length & 0xff), b);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// Proves `identity` on the open channel of `pc` and checks the peer's proof.
// send(bytes); nextRaw(what) resolves with the next message (Uint8Array).
// `fingerprints` overrides what the transcript names (a test of a relay that
// swapped them). Resolves with the peer's key; throws if its proof is bad.
export async function authenticate(identity, pc, send, nextRaw, fingerprints = null) {
  const local = fingerprints ? fingerprints.local : fingerprint(pc.localDescription.sdp);
  const remote = fingerprints ? fingerprints.remote : fingerprint(pc.remoteDescription.sdp);
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const hello = new Uint8Array(66);
  hello[0] = AUTH_HELLO;
  hello[1] = 1;
  hello.set(identity.pub, 2);
  hello.set(nonce, 34);
  send(hello);
  const theirs = await nextRaw('AUTH_HELLO');
  if (theirs[0] !== AUTH_HELLO || theirs.length !== 66 || theirs[1] !== 1) {
    throw new Error(`expected AUTH_HELLO, got type ${theirs[0]} of ${theirs.length} bytes`);
  }
  const peerKey = theirs.slice(2, 34);
  const peerNonce = theirs.slice(34, 66);
  const sig = new Uint8Array(await crypto.subtle.sign(ALG, identity.pair.privateKey,
    transcript(identity.pub, peerKey, nonce, peerNonce, local, remote)));
  const proof = new Uint8Array(65);
  proof[0] = AUTH_PROOF;
  proof.set(sig, 1);
  send(proof);
  const p = await nextRaw('AUTH_PROOF');
  if (p[0] !== AUTH_PROOF || p.length !== 65) throw new Error(`expected AUTH_PROOF, got type ${p[0]} of ${p.length} bytes`);
  const key = await crypto.subtle.importKey('raw', peerKey, ALG, false, ['verify']);
  const ok = await crypto.subtle.verify(ALG, key, p.slice(1), transcript(peerKey, identity.pub, peerNonce, nonce, remote, local));
  if (!ok) throw new Error("the peer's AUTH_PROOF does not verify");
  return peerKey;
}
