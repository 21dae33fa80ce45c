// Random hex for temporary and lock-file names. Web Crypto's getRandomValues is loaded by Node when first used;
// importing node:crypto instead loads its whole module tree (about 10 ms) in every command, read-only ones too.

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');
}
