// The shared DPoP vectors (testdata/vectors/dpop, see its README.md): how
// this package makes a case's proof, and a reference verifier written from
// docs/protocol.md "DPoP proofs", independent of the Go one, so that the
// proofs of either implementation are checked by both.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash, webcrypto } from "node:crypto";
import { createProof, importPrivateJwk, webCryptoSigner } from "../dist/index.js";

export const vectorsDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "testdata", "vectors", "dpop");

export function readVectors(name) {
  return JSON.parse(readFileSync(join(vectorsDir, name), "utf8"));
}

export async function signerOf(key) {
  const { kty, crv, x, y, d } = key;
  const jwk = kty === "EC" ? { kty, crv, x, y, d } : { kty, crv, x, d };
  return webCryptoSigner(await importPrivateJwk(key.alg, jwk));
}

/** tamperSignature flips the first character of the signature between A and B. */
export function tamperSignature(p) {
  const i = p.lastIndexOf(".") + 1;
  return p.slice(0, i) + (p[i] === "A" ? "B" : "A") + p.slice(i + 1);
}

/** makeProof makes a case's proof with this package's createProof. */
export async function makeProof(keys, c) {
  const m = c.make;
  let p = await createProof(await signerOf(keys[c.key]), { method: m.method, url: m.url, accessToken: m.access_token || undefined, nonce: m.nonce || undefined }, { iat: m.iat, jti: m.jti });
  if (c.tamper === "signature") p = tamperSignature(p);
  return p;
}

const b64 = (s) => Buffer.from(s, "base64url");
const strictB64 = /^[A-Za-z0-9_-]+$/;

function thumbprint(jwk) {
  const s = jwk.kty === "EC" ? `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}` : `{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`;
  return createHash("sha256").update(s).digest("base64url");
}

/** normalizeURL: RFC 3986 syntax- and scheme-based normalisation, query and fragment dropped. */
export function normalizeURL(s) {
  const u = new URL(s.split("#")[0].split("?")[0]); // WHATWG: case of scheme and host, default port, dot segments
  const path = u.pathname.replace(/%([0-9a-fA-F]{2})/g, (_, h) => {
    const c = String.fromCharCode(parseInt(h, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + h.toUpperCase();
  });
  return u.protocol + "//" + u.host + path;
}

/**
 * referenceVerify checks a proof as docs/protocol.md describes and returns
 * "ok" or the name of the Go dpop error for the first failed check.
 */
export async function referenceVerify(proof, v, keys) {
  const parts = proof.split(".");
  if (parts.length !== 3 || !parts.every((p) => strictB64.test(p))) return "ErrMalformed";
  const header = JSON.parse(b64(parts[0]).toString("utf8"));
  const claims = JSON.parse(b64(parts[1]).toString("utf8"));
  if (header.typ !== "dpop+jwt") return "ErrType";
  if (!["ES256", "EdDSA", "Ed25519"].includes(header.alg)) return "ErrAlgorithm";
  if ("crit" in header) return "ErrCritical";
  const jwk = header.jwk;
  if (!jwk || "d" in jwk) return "ErrKey";
  const es = header.alg === "ES256";
  const key = await webcrypto.subtle.importKey("jwk", es ? { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y } : { kty: "OKP", crv: "Ed25519", x: jwk.x },
    es ? { name: "ECDSA", namedCurve: "P-256" } : { name: "Ed25519" }, false, ["verify"]);
  const ok = await webcrypto.subtle.verify(es ? { name: "ECDSA", hash: "SHA-256" } : { name: "Ed25519" }, key, b64(parts[2]), Buffer.from(parts[0] + "." + parts[1]));
  if (!ok) return "ErrSignature";
  if (typeof claims.jti !== "string" || !claims.jti || typeof claims.htm !== "string" || typeof claims.htu !== "string" || typeof claims.iat !== "number") return "ErrClaims";
  if (claims.htm !== v.method) return "ErrMethod";
  if (normalizeURL(claims.htu) !== normalizeURL(v.url)) return "ErrURL";
  if (claims.iat < v.now - 60) return "ErrTooOld";
  if (claims.iat > v.now + 5) return "ErrFuture";
  if (v.access_token && claims.ath !== createHash("sha256").update(v.access_token).digest("base64url")) return "ErrAccessTokenHash";
  if (v.jkt && thumbprint(jwk) !== keys[v.jkt].jkt) return "ErrKeyMismatch";
  if (v.nonce) {
    if (!claims.nonce) return "ErrNonceRequired";
    if (claims.nonce !== v.nonce) return "ErrNonceInvalid";
  }
  return "ok";
}
