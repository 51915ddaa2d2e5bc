// Unit tests of @hallpass/client that need no server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, writeFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { b64urlDecode, b64urlEncode } from "../dist/b64.js";
import { sha256Portable } from "../dist/sha256.js";
import { challengeError } from "../dist/errors.js";
import { jsonString } from "../dist/dpop.js";
import { ClientCodes, HallpassError, MemoryStorage, createClient, createProof, generateWebCryptoKey, htuOf, thumbprint, webCryptoSigner } from "../dist/index.js";
import { FileStorage } from "../dist/node.js";
import { failingStorage, tempDir } from "./harness.mjs";

test("base64url: round trip, and one spelling per byte string", () => {
  for (let n = 0; n < 70; n++) {
    const b = randomBytes(n);
    const s = b64urlEncode(b);
    assert.equal(s, b.toString("base64url"));
    assert.deepEqual(Buffer.from(b64urlDecode(s)), b);
  }
  for (const bad of ["A", "AB=", "AB+", "AB/", "AB C", "AF", "AAB"]) {
    assert.throws(() => b64urlDecode(bad), /invalid base64url/, bad); // "AF": non-zero trailing bits
  }
});

test("sha256 without WebCrypto (React Native) matches node:crypto", () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
    const b = randomBytes(n);
    assert.equal(Buffer.from(sha256Portable(b)).toString("hex"), createHash("sha256").update(b).digest("hex"), `length ${n}`);
  }
});

test("JSON strings are escaped as Go escapes them", () => {
  assert.equal(jsonString("a<b>&c\u2028"), '"a\\u003cb\\u003e\\u0026c\\u2028"');
  assert.equal(jsonString('q"\\'), '"q\\"\\\\"');
});

test("htu leaves out query and fragment", () => {
  assert.equal(htuOf("https://a.example/p?q=1#f"), "https://a.example/p");
  assert.equal(htuOf("https://a.example/p#f?x"), "https://a.example/p");
});

test("WWW-Authenticate: the DPoP challenge's error", () => {
  assert.equal(challengeError('DPoP error="token_expired", algs="ES256 EdDSA"'), "token_expired");
  assert.equal(challengeError('Bearer realm="x", DPoP algs="ES256", error="invalid_token"'), "invalid_token");
  assert.equal(challengeError('DPoP algs="ES256 EdDSA"'), "");
  assert.equal(challengeError('Bearer error="invalid_token"'), "");
  assert.equal(challengeError('DPoP error="<b>"'), "");
  assert.equal(challengeError(null), "");
});

test("options: https, or http on loopback only; no query, user info or path in origins", async () => {
  const bad = [
    { server: "http://id.example.com" },
    { server: "ftp://127.0.0.1" },
    { server: "https://u:p@id.example.com" },
    { server: "https://id.example.com/?x=1" },
    { server: "https://id.example.com/#f" },
    { server: "not a url" },
    { server: "https://id.example.com", origins: ["http://api.example.com"] },
    { server: "https://id.example.com", origins: ["https://api.example.com/v1"] },
    { server: "https://id.example.com", refreshRetryWindowMs: 0 },
  ];
  for (const o of bad) {
    await assert.rejects(createClient({ storage: new MemoryStorage(), ...o }), (e) => e instanceof HallpassError && e.code === ClientCodes.invalidArgument, JSON.stringify(o));
  }
  for (const server of ["http://127.0.0.1:8080/", "http://localhost:1", "http://[::1]:8080", "https://id.example.com/auth/"]) {
    const c = await createClient({ server, storage: new MemoryStorage(), crossTab: false });
    assert.ok(!c.server.endsWith("/"), c.server);
    c.close();
  }
  const c = await createClient({ server: "http://api.example.com", allowInsecureHttp: true, storage: new MemoryStorage() });
  c.close();
});

test("calls without a session fail with no_session; a closed client with closed", async () => {
  const c = await createClient({ server: "https://id.example.com", storage: new MemoryStorage() });
  await assert.rejects(c.me(), (e) => e.code === ClientCodes.noSession);
  await assert.rejects(c.fetch("https://id.example.com/v1/me"), (e) => e.code === ClientCodes.noSession);
  await assert.rejects(c.fetch("https://other.example.com/"), (e) => e.code === ClientCodes.otherOrigin);
  c.close();
  await assert.rejects(c.me(), (e) => e.code === ClientCodes.closed);
});

test("a stored session for another server or key is refused", async () => {
  const storage = new MemoryStorage();
  const key = await storage.deviceKey(true);
  const rec = { version: 1, server: "https://other.example.com", jkt: "x", accountId: "acc_1", deviceId: "dev_1", username: "u", accessToken: null, accessTokenExpiresAt: 0, refreshToken: "r", generation: 1 };
  await storage.save(rec);
  await assert.rejects(createClient({ server: "https://id.example.com", storage }), (e) => e.code === ClientCodes.stateMismatch);
  await storage.save({ ...rec, server: "https://id.example.com" });
  await assert.rejects(createClient({ server: "https://id.example.com", storage }), (e) => e.code === ClientCodes.stateMismatch);
  assert.ok(key);
});

test("a storage that fails to read or make the device key gives storage_error, as every other storage failure", async () => {
  const inner = new MemoryStorage();
  const broken = {
    load: () => inner.load(),
    save: (r) => inner.save(r),
    deviceKey: async () => {
      throw new Error("IndexedDB: connection lost");
    },
    deleteDeviceKey: () => inner.deleteDeviceKey(),
  };
  const c = await createClient({ server: "https://id.example.com", storage: broken });
  await assert.rejects(c.signup({ username: "alice" }), (e) => e instanceof HallpassError && e.code === ClientCodes.storageError);
  const key = await inner.deviceKey(true);
  await inner.save({ version: 1, server: "https://id.example.com", jkt: "x", accountId: "acc_1", deviceId: "dev_1", username: "u", accessToken: null, accessTokenExpiresAt: 0, refreshToken: "r", generation: 1 });
  await assert.rejects(createClient({ server: "https://id.example.com", storage: broken }), (e) => e instanceof HallpassError && e.code === ClientCodes.storageError);
  assert.ok(key);
  c.close();
});

test("a refresh retry whose backoff outlasted the retry window (the machine slept) is not sent: it could spend the token and never read the answer", async () => {
  const storage = new MemoryStorage();
  const key = await storage.deviceKey(true);
  const jkt = await thumbprint(key.publicJwk);
  await storage.save({ version: 1, server: "https://id.example.com", jkt, accountId: "acc_1", deviceId: "dev_1", username: "u", accessToken: null, accessTokenExpiresAt: 0, refreshToken: "r1", generation: 1 });
  let skew = 0;
  const sent = [];
  const fetch = async (url) => {
    sent.push(url);
    // While the client waits before its retry, the clock jumps 25 s (past the 20 s retry window).
    setTimeout(() => (skew += 25_000), 20);
    throw new TypeError("network down");
  };
  const c = await createClient({ server: "https://id.example.com", storage, fetch, now: () => Date.now() + skew, crossTab: false });
  await assert.rejects(c.refresh(), (e) => e.code === ClientCodes.networkError);
  assert.equal(sent.length, 1, "no attempt after the retry window");
  c.close();
});

test("a signer returning a DER signature is refused", async () => {
  const k = webCryptoSigner(await generateWebCryptoKey("ES256"));
  const der = { alg: k.alg, publicJwk: k.publicJwk, sign: async () => new Uint8Array(71) };
  await assert.rejects(createProof(der, { method: "GET", url: "https://a.example/" }), /not 64 bytes/);
});

test("WebCrypto keys are made non-extractable", async () => {
  const k = await generateWebCryptoKey("ES256");
  assert.equal(k.privateKey.extractable, false);
  await assert.rejects(crypto.subtle.exportKey("jwk", k.privateKey));
  const e = await generateWebCryptoKey("EdDSA");
  assert.equal(e.publicJwk.crv, "Ed25519");
});

test("FileStorage: 0600, atomic, refuses a file others can read", async () => {
  const dir = tempDir();
  const path = join(dir, "state.json");
  const s = new FileStorage(path);
  assert.equal(await s.load(), null);
  const k = await s.deviceKey(true);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const k2 = await new FileStorage(path).deviceKey(false);
  assert.deepEqual(k2.publicJwk, k.publicJwk, "the key survives a restart");
  const sig = await k2.sign(new Uint8Array([1, 2, 3]));
  assert.equal(sig.length, 64);
  await s.deleteDeviceKey();
  assert.equal(await s.deviceKey(false), null);
  chmodSync(path, 0o644);
  await assert.rejects(s.load(), /readable or writable by others/);
  writeFileSync(join(dir, "junk.json"), "{}", { mode: 0o600 });
  await assert.rejects(new FileStorage(join(dir, "junk.json")).load(), /not a hallpass state file/);
});

test("a Signer over a native key: DER signatures and X9.63 points convert", async () => {
  const { generateKeyPairSync, sign, webcrypto } = await import("node:crypto");
  const { ecdsaDerToRaw, p256PublicJwk } = await import("../dist/index.js");
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ format: "der", type: "spki" });
  const jwk = p256PublicJwk(new Uint8Array(spki.subarray(spki.length - 65)));
  assert.deepEqual(jwk, (({ kty, crv, x, y }) => ({ kty, crv, x, y }))(publicKey.export({ format: "jwk" })));
  // As a React Native module would: the platform signs (DER), the Signer converts.
  const native = { alg: "ES256", publicJwk: jwk, sign: async (data) => ecdsaDerToRaw(new Uint8Array(sign("sha256", data, privateKey))) };
  const vk = await webcrypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  for (let i = 0; i < 50; i++) {
    const msg = randomBytes(40);
    const raw = await native.sign(msg);
    assert.equal(raw.length, 64);
    assert.ok(await webcrypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, vk, raw, msg));
  }
  const proof = await createProof(native, { method: "GET", url: "https://id.example.com/v1/me", accessToken: "t" });
  assert.equal(proof.split(".").length, 3);
  for (const bad of [[0x30, 0], [0x31, 6, 2, 1, 1, 2, 1, 1], [0x30, 6, 2, 1, 1, 2, 1], new Array(72).fill(0)]) {
    assert.throws(() => ecdsaDerToRaw(new Uint8Array(bad)), /not a DER/);
  }
});

test("dist/hallpass.js is one file for browsers: no imports, the whole API", async () => {
  const { readFileSync } = await import("node:fs");
  const bundle = readFileSync(new URL("../dist/hallpass.js", import.meta.url), "utf8");
  assert.doesNotMatch(bundle, /^\s*import[\s{*"']/m);
  assert.doesNotMatch(bundle, /\bimport\s*\(|\brequire\s*\(/);
  const mod = await import("../dist/hallpass.js");
  const api = await import("../dist/index.js");
  assert.deepEqual(Object.keys(mod).sort(), Object.keys(api).sort());
});

// A refresh retry id (docs/protocol.md, "Refresh rotation"): made before a
// refresh token is first presented, saved with it, sent on every retry of
// that token, dropped with it.

const server = "https://id.example.com";
const retryIdShape = /^[A-Za-z0-9_-]{22}$/; // 16 random bytes, base64url without padding

/** A storage holding a signed-in device whose record has no retry id (as the previous version saved it). */
async function signedInStorage(storage = new MemoryStorage(), refreshToken = "r1") {
  const key = await storage.deviceKey(true);
  const jkt = await thumbprint(key.publicJwk);
  await storage.save({ version: 1, server, jkt, accountId: "acc_1", deviceId: "dev_1", username: "u", accessToken: null, accessTokenExpiresAt: 0, refreshToken, generation: 1 });
  return storage;
}

/**
 * tokenEndpoint is a fetch for /v1/token: answers() returns, per request, "lose"
 * (a network error after the server got it) or a new pair. Each request is
 * logged with its form fields and the record stored when it was sent.
 */
function tokenEndpoint(storage, answers) {
  const sent = [];
  let n = 0;
  const fetch = async (url, init) => {
    const form = new URLSearchParams(init.body);
    sent.push({ url, refreshToken: form.get("refresh_token"), retryId: form.get("retry_id"), grant: form.get("grant_type"), stored: await storage.load() });
    if (answers(sent.length) === "lose") throw new TypeError("network connection lost");
    n++;
    return new Response(JSON.stringify({ access_token: `at${n}`, token_type: "DPoP", expires_in: 600, refresh_token: `next${n}` }), { status: 200, headers: { "content-type": "application/json" } });
  };
  return { sent, fetch };
}

test("a refresh sends a retry id that was saved with the refresh token before the request left", async () => {
  const storage = await signedInStorage();
  const { sent, fetch } = tokenEndpoint(storage, () => "ok");
  const c = await createClient({ server, storage, fetch, crossTab: false });
  await c.refresh();
  assert.equal(sent.length, 1);
  assert.equal(sent[0].grant, "refresh_token");
  assert.equal(sent[0].refreshToken, "r1");
  assert.match(sent[0].retryId ?? "", retryIdShape);
  assert.equal(sent[0].stored.refreshToken, "r1");
  assert.equal(sent[0].stored.refreshRetryId, sent[0].retryId, "the id was in the storage, with its refresh token, when the request was sent");
  c.close();
});

test("a lost refresh answer: every retry of that refresh token, in this client, a later call and a restarted one, sends the same retry id", async () => {
  const storage = await signedInStorage();
  let lose = true;
  const { sent, fetch } = tokenEndpoint(storage, () => (lose ? "lose" : "ok"));
  const opts = { server, storage, fetch, crossTab: false, refreshRetryWindowMs: 1000 };
  const c = await createClient(opts);
  await assert.rejects(c.refresh(), (e) => e.code === ClientCodes.networkError);
  assert.ok(sent.length >= 2, "retried in this client");
  const id = sent[0].retryId;
  assert.match(id ?? "", retryIdShape);
  assert.equal(c.state().deviceId, "dev_1", "still signed in");
  const tried = sent.length;
  await assert.rejects(c.refresh(), (e) => e.code === ClientCodes.networkError); // a later call, lost again
  assert.ok(sent.length > tried);
  c.close();
  // The app restarts: a new client on the same storage.
  lose = false;
  const d = await createClient(opts);
  await d.refresh();
  assert.deepEqual(sent.map((s) => [s.refreshToken, s.retryId]), sent.map(() => ["r1", id]), "one refresh token, one id, on every attempt");
  const stored = await storage.load();
  assert.equal(stored.refreshToken, "next1");
  assert.equal(stored.refreshRetryId, undefined, "the id is dropped with the refresh token it was for");
  d.close();
});

test("the retry id is dropped when the new pair is saved: the next refresh token gets a new one", async () => {
  const storage = await signedInStorage();
  const { sent, fetch } = tokenEndpoint(storage, () => "ok");
  const c = await createClient({ server, storage, fetch, crossTab: false });
  await c.refresh();
  assert.ok(!("refreshRetryId" in (await storage.load())), "no id field left in the saved record");
  await c.refresh();
  assert.deepEqual(sent.map((s) => s.refreshToken), ["r1", "next1"]);
  assert.match(sent[1].retryId ?? "", retryIdShape);
  assert.notEqual(sent[1].retryId, sent[0].retryId);
  c.close();
});

test("a stored retry id of the wrong shape is replaced before it is sent (the server would refuse it for good)", async () => {
  const storage = await signedInStorage();
  await storage.save({ ...(await storage.load()), refreshRetryId: "short" });
  const { sent, fetch } = tokenEndpoint(storage, () => "ok");
  const c = await createClient({ server, storage, fetch, crossTab: false });
  await c.refresh();
  assert.match(sent[0].retryId ?? "", retryIdShape);
  assert.equal(sent[0].stored.refreshRetryId, sent[0].retryId);
  c.close();
});

test("a stored retry id (a record saved by another tab or before a restart) is sent as it is", async () => {
  const storage = await signedInStorage();
  const id = b64urlEncode(randomBytes(16));
  await storage.save({ ...(await storage.load()), refreshRetryId: id, generation: 2 });
  const { sent, fetch } = tokenEndpoint(storage, () => "ok");
  const c = await createClient({ server, storage, fetch, crossTab: false });
  await c.refresh();
  assert.equal(sent[0].retryId, id);
  c.close();
});

test("a retry id whose save failed is still sent, the same on in-process retries, and saved by the next call", async () => {
  const { inner, storage, setFail } = failingStorage(await signedInStorage(), true);
  let lose = true;
  const { sent, fetch } = tokenEndpoint(inner, () => (lose ? "lose" : "ok"));
  const c = await createClient({ server, storage, fetch, crossTab: false, refreshRetryWindowMs: 1000 });
  await assert.rejects(c.refresh(), (e) => e.code === ClientCodes.networkError);
  assert.ok(sent.length >= 2);
  assert.equal(sent[0].stored.refreshRetryId, undefined, "the save failed");
  assert.ok(sent.every((s) => s.retryId === sent[0].retryId && s.refreshToken === "r1"));
  setFail(false);
  lose = false;
  const tried = sent.length;
  await c.refresh();
  assert.equal(sent.at(-1).retryId, sent[0].retryId, "the same id after the failed save");
  assert.equal(sent[tried].stored.refreshRetryId, sent[0].retryId, "saved before this attempt left");
  assert.equal((await inner.load()).refreshToken, "next1");
  c.close();
});
