// DPoP proofs (RFC 9449) as hallpass verifies them (docs/dpop.md): a compact
// JWS with header {"typ":"dpop+jwt","alg",jwk} and claims
// {"jti","htm","htu","iat","ath"?,"nonce"?}. The JSON is written in the same
// member order and with the same escaping as the Go dpop package, so that
// both make byte-identical signing inputs (testdata/vectors/dpop).

import { b64urlEncode, utf8 } from "./b64.js";
import { canonicalJwk, type Signer } from "./signer.js";
import { sha256 } from "./sha256.js";

/** What one proof is for. */
export interface ProofRequest {
  /** The HTTP method exactly as sent (htm is compared case-sensitively). */
  method: string;
  /** The request URL; query and fragment are left out of htu. */
  url: string;
  /** The access token sent with the request, bound by ath; omit on signup and refresh. */
  accessToken?: string;
  /** The latest DPoP-Nonce of the server, when it demands one. */
  nonce?: string;
}

/** Seams for tests: the clock (seconds) and the jti. */
export interface ProofOptions {
  /** iat in seconds since the epoch; default the current time. */
  iat?: number;
  /** jti; default 128 random bits, base64url. */
  jti?: string;
}

/** jsonString writes s as a JSON string the way Go's encoding/json does (<, >, & and U+2028/9 escaped). */
export function jsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** htuOf returns the htu of a request URL: the URL without query and fragment. */
export function htuOf(url: string): string {
  let u = url;
  const hash = u.indexOf("#");
  if (hash >= 0) u = u.slice(0, hash);
  const q = u.indexOf("?");
  if (q >= 0) u = u.slice(0, q);
  return u;
}

/** ath returns base64url(SHA-256(access token)). */
export async function accessTokenHash(accessToken: string): Promise<string> {
  return b64urlEncode(await sha256(utf8(accessToken)));
}

/** randomJti returns 128 random bits, base64url. */
export function randomJti(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return b64urlEncode(b);
}

/** createProof signs a DPoP proof for one request. Make a fresh one for every request, retries included. */
export async function createProof(signer: Signer, req: ProofRequest, opts: ProofOptions = {}): Promise<string> {
  if (!req.method) throw new Error("hallpass: empty method");
  const header = `{"typ":"dpop+jwt","alg":"${signer.alg}","jwk":${canonicalJwk(signer.publicJwk)}}`;
  const iat = opts.iat ?? Math.floor(Date.now() / 1000);
  let claims = `{"jti":${jsonString(opts.jti ?? randomJti())},"htm":${jsonString(req.method)},"htu":${jsonString(htuOf(req.url))},"iat":${iat}`;
  if (req.accessToken) claims += `,"ath":${jsonString(await accessTokenHash(req.accessToken))}`;
  if (req.nonce) claims += `,"nonce":${jsonString(req.nonce)}`;
  claims += "}";
  const signingInput = b64urlEncode(utf8(header)) + "." + b64urlEncode(utf8(claims));
  const sig = await signer.sign(utf8(signingInput));
  if (!(sig instanceof Uint8Array) || sig.length !== 64) throw new Error("hallpass: the signer returned a signature that is not 64 bytes (ES256 must be r || s, not DER)");
  return signingInput + "." + b64urlEncode(sig);
}
