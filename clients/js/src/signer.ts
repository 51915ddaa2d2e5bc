// Device keys. A Signer is the device key as the client sees it: an
// algorithm, a public JWK, and a sign function. The private key stays
// wherever it was made: a non-extractable WebCrypto CryptoKey (browsers), the
// iOS Secure Enclave or Android Keystore (React Native, through a native
// module: see docs/mobile.md), or a file (Node).

import { b64urlEncode, utf8 } from "./b64.js";
import { HallpassError, ClientCodes } from "./errors.js";
import { sha256 } from "./sha256.js";

/** The proof algorithms hallpass accepts: ES256 (ECDSA P-256, what secure hardware holds) or EdDSA (Ed25519). */
export type Algorithm = "ES256" | "EdDSA";

/** A public key as a JWK, with only the members RFC 7638 hashes. */
export type PublicJwk = { kty: "EC"; crv: "P-256"; x: string; y: string } | { kty: "OKP"; crv: "Ed25519"; x: string };

/**
 * Signer is the device key. Implement it to keep the key in a hardware key
 * store (docs/mobile.md); the built-in storages make WebCrypto signers.
 */
export interface Signer {
  /** ES256 for a P-256 key, EdDSA for an Ed25519 key. */
  readonly alg: Algorithm;
  /** The public key; it never changes for one Signer. */
  readonly publicJwk: PublicJwk;
  /**
   * Signs data and returns the JWS signature: for ES256 the 64-byte
   * r || s (IEEE P1363, what WebCrypto returns; convert a DER signature
   * from a native API), for EdDSA the 64-byte Ed25519 signature. ES256
   * hashes data with SHA-256 as part of signing.
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** checkPublicJwk validates the shape of a public JWK and returns only its RFC 7638 members. */
export function checkPublicJwk(alg: Algorithm, jwk: unknown): PublicJwk {
  const k = jwk as Record<string, unknown> | null;
  const b64 = /^[A-Za-z0-9_-]{43}$/;
  if (alg === "ES256" && k && k.kty === "EC" && k.crv === "P-256" && typeof k.x === "string" && typeof k.y === "string" && b64.test(k.x) && b64.test(k.y) && !("d" in k)) {
    return { kty: "EC", crv: "P-256", x: k.x, y: k.y };
  }
  if (alg === "EdDSA" && k && k.kty === "OKP" && k.crv === "Ed25519" && typeof k.x === "string" && b64.test(k.x) && !("d" in k)) {
    return { kty: "OKP", crv: "Ed25519", x: k.x };
  }
  throw new HallpassError(ClientCodes.invalidArgument, "hallpass: the signer's public key is not a public P-256 (ES256) or Ed25519 (EdDSA) JWK");
}

/** canonicalJwk is the RFC 7638 form: required members in lexicographic order, no whitespace (also the order the proof header uses). */
export function canonicalJwk(jwk: PublicJwk): string {
  return jwk.kty === "EC"
    ? `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`
    : `{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`;
}

/** thumbprint returns the RFC 7638 JWK SHA-256 thumbprint (the jkt tokens are bound to), base64url. */
export async function thumbprint(jwk: PublicJwk): Promise<string> {
  return b64urlEncode(await sha256(utf8(canonicalJwk(jwk))));
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new HallpassError(ClientCodes.invalidArgument, "hallpass: WebCrypto (crypto.subtle) is not available here; pass a Signer (see docs/mobile.md)");
  return s;
}

function params(alg: Algorithm): EcKeyGenParams | Algorithm_ {
  return alg === "ES256" ? { name: "ECDSA", namedCurve: "P-256" } : { name: "Ed25519" };
}
type Algorithm_ = { name: string };

/**
 * A WebCrypto device key as the storages keep it: the private CryptoKey and
 * the public JWK as plain data, so that the only CryptoKey stored is the
 * private one (non-extractable unless made for a file).
 */
export interface WebCryptoKey {
  alg: Algorithm;
  privateKey: CryptoKey;
  publicJwk: PublicJwk;
}

/**
 * generateWebCryptoKey makes a device key with crypto.subtle.generateKey.
 * With extractable false (the default) the private key can never be read
 * out as bytes, only used to sign.
 */
export async function generateWebCryptoKey(alg: Algorithm = "ES256", extractable = false): Promise<WebCryptoKey> {
  const s = subtle();
  const pair = (await s.generateKey(params(alg), extractable, ["sign", "verify"])) as CryptoKeyPair;
  const publicJwk = checkPublicJwk(alg, await s.exportKey("jwk", pair.publicKey));
  return { alg, privateKey: pair.privateKey, publicJwk };
}

/** webCryptoSigner makes a Signer of a WebCrypto private key. */
export function webCryptoSigner(key: WebCryptoKey): Signer {
  const publicJwk = checkPublicJwk(key.alg, key.publicJwk);
  const algo = key.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "Ed25519" };
  return {
    alg: key.alg,
    publicJwk,
    async sign(data: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(await subtle().sign(algo, key.privateKey, data as Uint8Array<ArrayBuffer>));
    },
  };
}

/**
 * importPrivateJwk makes a Signer of a private JWK (with d): for Node's
 * FileStorage and for test vectors. Browsers never need it.
 */
export async function importPrivateJwk(alg: Algorithm, jwk: JsonWebKey, extractable = false): Promise<WebCryptoKey> {
  const privateKey = await subtle().importKey("jwk", jwk, params(alg), extractable, ["sign"]);
  const { d: _d, key_ops: _ops, ext: _ext, ...pub } = jwk;
  return { alg, privateKey, publicJwk: checkPublicJwk(alg, pub) };
}

/**
 * ecdsaDerToRaw converts an ECDSA P-256 signature from ASN.1 DER (what the
 * iOS Security framework and Android's Signature("SHA256withECDSA") return)
 * to the 64-byte r || s a Signer returns.
 */
export function ecdsaDerToRaw(der: Uint8Array): Uint8Array {
  const bad = () => new HallpassError(ClientCodes.invalidArgument, "hallpass: not a DER ECDSA P-256 signature");
  let i = 0;
  const byte = () => {
    if (i >= der.length) throw bad();
    return der[i++]!;
  };
  if (byte() !== 0x30) throw bad();
  const len = byte();
  if (len & 0x80 || len !== der.length - 2) throw bad();
  const out = new Uint8Array(64);
  for (const off of [0, 32]) {
    if (byte() !== 0x02) throw bad();
    let n = byte();
    if (n < 1 || n > 33 || i + n > der.length) throw bad();
    let start = i;
    i += n;
    while (n > 32 || (n > 1 && der[start] === 0)) {
      if (der[start] !== 0) throw bad();
      start++;
      n--;
    }
    if (n > 32) throw bad();
    out.set(der.subarray(start, start + n), off + 32 - n);
  }
  if (i !== der.length) throw bad();
  return out;
}

/**
 * p256PublicJwk makes the public JWK of a P-256 key from its uncompressed
 * point (0x04 || X || Y, 65 bytes: SecKeyCopyExternalRepresentation on iOS;
 * the last 65 bytes of an Android ECPublicKey's getEncoded()).
 */
export function p256PublicJwk(point: Uint8Array): PublicJwk {
  if (point.length !== 65 || point[0] !== 4) throw new HallpassError(ClientCodes.invalidArgument, "hallpass: not an uncompressed P-256 point");
  return { kty: "EC", crv: "P-256", x: b64urlEncode(point.subarray(1, 33)), y: b64urlEncode(point.subarray(33)) };
}
