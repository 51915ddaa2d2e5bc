// base64url without padding (RFC 4648 section 5), as JOSE and hallpass use
// it. Written out rather than taken from Buffer or btoa so that it runs the
// same in browsers, React Native (Hermes) and Node.

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const lookup = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
})();

/** Encodes bytes as base64url without padding. */
export function b64urlEncode(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  if (i < bytes.length) {
    const rest = bytes.length - i;
    const n = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0);
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]!;
    if (rest === 2) out += alphabet[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes strict base64url without padding: any other character, a length
 * that no byte string has, or non-zero trailing bits throw, so every byte
 * string has exactly one spelling (as in the Go dpop package).
 */
export function b64urlDecode(s: string): Uint8Array {
  if (s.length % 4 === 1) throw new Error("hallpass: invalid base64url");
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? lookup[c]! : -1;
    if (v < 0) throw new Error("hallpass: invalid base64url");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new Error("hallpass: invalid base64url");
  return out;
}

const encoder = new TextEncoder();

/** UTF-8 bytes of s. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}
