// @hallpass/client against a real `hallpass serve --dev` (built from this
// repository) demanding DPoP nonces, behind a loopback proxy that can lose
// or replace answers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { ApiError, ClientCodes, HallpassError, MemoryStorage, ServerCodes, createClient, isSignedOut } from "../dist/index.js";
import { FileStorage } from "../dist/node.js";
import { failingStorage, freePort, issuerBehindProxy, repoRoot, startServer, tempDir, uniqueName } from "./harness.mjs";
import { readVectors, referenceVerify } from "./vectorlib.mjs";

let env;
// Bounds: building the issuer (a cold Go build cache) and each group of tests.
const setup = { timeout: 300_000 };
const group = { timeout: 120_000 };

before(async () => {
  env = await issuerBehindProxy(["--dpop-nonce"]);
}, setup);
after(async () => {
  await env?.stop();
});

const newClient = (opts = {}) => createClient({ server: env.url, storage: new MemoryStorage(), ...opts });
const tokenRequests = (from) => env.proxy.log.slice(from).filter((e) => e.path === "/v1/token");
const refreshTokenOf = (e) => new URLSearchParams(e.body).get("refresh_token");
const retryIdOf = (e) => new URLSearchParams(e.body).get("retry_id");

async function rejectsWith(promise, code) {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err instanceof HallpassError, `want a HallpassError ${code}, got ${err}`);
  assert.equal(err.code, code, `${err}`);
  return err;
}

describe("session", group, () => {
  test("signup, me, refresh, with the server's nonce", async () => {
    const c = await newClient();
    assert.equal(c.state(), null);
    const from = env.proxy.log.length;
    const name = uniqueName("alice");
    const s = await c.signup({ username: name, deviceName: "node test" });
    assert.match(s.accountId, /^acc_/);
    assert.match(s.deviceId, /^dev_/);
    assert.equal(s.username, name);
    assert.deepEqual(c.state(), s);
    // The first signup attempt had no nonce: 400 use_dpop_nonce, then one retry with it.
    const signups = env.proxy.log.slice(from).filter((e) => e.path === "/v1/accounts");
    assert.deepEqual(signups.map((e) => e.status), [400, 201]);
    assert.notEqual(signups[0].headers.dpop, signups[1].headers.dpop, "a fresh proof for the retry");

    const me = await c.me();
    assert.equal(me.accountId, s.accountId);
    assert.equal(me.recoveryCodesLeft, 0);

    const t0 = env.proxy.log.length;
    await c.refresh();
    const tr = tokenRequests(t0);
    assert.deepEqual(tr.map((e) => e.status), [200], "the nonce from the signup answer is reused: no second use_dpop_nonce");
    assert.equal((await c.me()).deviceId, s.deviceId);
    // The new access token is used.
    const meCalls = env.proxy.log.filter((e) => e.path === "/v1/me");
    const last2 = meCalls.slice(-2).map((e) => e.headers.authorization);
    assert.notEqual(last2[0], last2[1]);
    c.close();
  });

  test("every request carries a fresh proof for its method and URL, with ath", async () => {
    const c = await newClient();
    await c.signup({ username: uniqueName() });
    const from = env.proxy.log.length;
    await c.me();
    await c.devices();
    await c.createLinkCode();
    const { keys } = readVectors("keys.json");
    for (const e of env.proxy.log.slice(from)) {
      const token = e.headers.authorization.replace(/^DPoP /, "");
      const now = Math.floor(Date.now() / 1000);
      assert.equal(await referenceVerify(e.headers.dpop, { method: e.method, url: env.url + e.path, access_token: token, jkt: "", nonce: "", now }, keys), "ok", e.path);
    }
    c.close();
  });

  test("a FileStorage restores the session in a new client; the file is 0600", async () => {
    const path = join(tempDir(), "state", "hallpass.json");
    const a = await createClient({ server: env.url, storage: new FileStorage(path) });
    const s = await a.signup({ username: uniqueName() });
    a.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const b = await createClient({ server: env.url, storage: new FileStorage(path) });
    assert.deepEqual(b.state(), s);
    assert.equal((await b.me()).accountId, s.accountId);
    await b.refresh();
    const c = await createClient({ server: env.url, storage: new FileStorage(path) });
    assert.equal((await c.me()).deviceId, s.deviceId, "the rotated refresh token was saved");
    b.close();
    c.close();
  });
});

// refreshFirstAnswerLost refreshes c while proxy does action ("lose",
// "hang", "truncate") to the first answer of /v1/token, and checks that the
// server advanced the chain on that first request, that the client retried
// with the same refresh token, and that the retry got the pair again
// (inside the grace window).
async function refreshFirstAnswerLost(proxy, c, action) {
  let n = 0;
  proxy.setHook((e) => (e.path === "/v1/token" && n++ === 0 ? action : undefined));
  const from = proxy.log.length;
  try {
    await c.refresh();
  } finally {
    proxy.setHook(null);
  }
  const tr = proxy.log.slice(from).filter((e) => e.path === "/v1/token");
  assert.equal(tr.length, 2, `${action}: two refresh requests`);
  assert.ok(tr[0].lost && tr[0].status === 200, `${action}: the server advanced the chain on the first, the client never saw its answer`);
  assert.equal(refreshTokenOf(tr[0]), refreshTokenOf(tr[1]), `${action}: the retry presents the same refresh token`);
  assert.equal(tr[1].status, 200, `${action}: inside the grace window, the same pair again`);
}

describe("lost responses", group, () => {
  test("a refresh whose answer is lost is retried with the same refresh token and stays signed in", async () => {
    const c = await newClient();
    await c.signup({ username: uniqueName() });
    await refreshFirstAnswerLost(env.proxy, c, "lose");
    await c.me();
    await c.refresh(); // the chain goes on: no reuse was detected
    await c.me();
    c.close();
  });

  test("a refresh answered 503 is retried after Retry-After", async () => {
    const c = await newClient();
    await c.signup({ username: uniqueName() });
    let n = 0;
    env.proxy.setHook((e) => (e.path === "/v1/token" && n++ === 0 ? { status: 503, headers: { "content-type": "application/problem+json", "retry-after": "0" }, body: JSON.stringify({ code: "unavailable", status: 503, request_id: "r1" }) } : undefined));
    try {
      await c.refresh();
    } finally {
      env.proxy.setHook(null);
    }
    assert.equal(n, 2);
    await c.me();
    c.close();
  });

  test("a signup whose answer is lost is retried with the same key and gets the account it created", async () => {
    const c = await newClient();
    let n = 0;
    env.proxy.setHook((e) => (e.path === "/v1/accounts" && e.status === 0 && n++ === 1 ? "lose" : undefined));
    const from = env.proxy.log.length;
    const name = uniqueName();
    let s;
    try {
      s = await c.signup({ username: name });
    } finally {
      env.proxy.setHook(null);
    }
    const signups = env.proxy.log.slice(from).filter((e) => e.path === "/v1/accounts");
    assert.ok(signups.some((e) => e.lost), "one answer was lost");
    assert.equal(s.username, name);
    assert.equal((await c.me()).accountId, s.accountId);
    c.close();
  });

  // joinFirstAnswerLost runs join (a link or recovery by a new client)
  // while the proxy loses the answer of the redeeming request to path,
  // and checks that the server had answered it and that the client's
  // retry got the device that request created: one new device, working.
  async function joinFirstAnswerLost(path, owner, join) {
    const before = (await owner.devices()).length;
    const c = await newClient();
    let n = 0;
    // The first request is refused for a nonce; the second redeems.
    env.proxy.setHook((e) => (e.path === path && e.status === 0 && n++ === 1 ? "lose" : undefined));
    const from = env.proxy.log.length;
    let s;
    try {
      s = await join(c);
    } finally {
      env.proxy.setHook(null);
    }
    const calls = env.proxy.log.slice(from).filter((e) => e.path === path);
    assert.ok(calls.some((e) => e.lost && e.status === 201), `the server redeemed the code on the request whose answer was lost: ${JSON.stringify(calls.map((e) => [e.status, !!e.lost]))}`);
    assert.equal(s.accountId, (await owner.me()).accountId);
    const devs = await owner.devices();
    assert.equal(devs.length, before + 1, "the retry made no second device");
    assert.ok(devs.some((d) => d.id === s.deviceId && d.active));
    await c.refresh();
    await c.me();
    c.close();
  }

  test("a link whose answer is lost is retried with the same code and key and gets the device it created", async () => {
    const a = await newClient();
    await a.signup({ username: uniqueName() });
    const { code } = await a.createLinkCode();
    await joinFirstAnswerLost("/v1/link", a, (c) => c.link({ code }));
    a.close();
  });

  test("a recovery whose answer is lost is retried with the same code and key and gets the device it created", async () => {
    const a = await newClient();
    const name = uniqueName("rec");
    await a.signup({ username: name });
    const codes = await a.createRecoveryCodes();
    await joinFirstAnswerLost("/v1/recover", a, (c) => c.recover({ username: name, code: codes[0], signOutOtherDevices: false }));
    assert.equal((await a.me()).recoveryCodesLeft, 9, "one code used");
    a.close();
  });

  test("a refresh that keeps failing gives up within the retry window and keeps the session", async () => {
    const c = await newClient({ refreshRetryWindowMs: 1500 });
    await c.signup({ username: uniqueName() });
    env.proxy.setHook((e) => (e.path === "/v1/token" ? "lose" : undefined));
    const t = Date.now();
    try {
      await rejectsWith(c.refresh(), ClientCodes.networkError);
    } finally {
      env.proxy.setHook(null);
    }
    assert.ok(Date.now() - t < 10_000);
    assert.notEqual(c.state(), null);
    await c.refresh(); // same token again, within the server's 30 s grace
    await c.me();
    c.close();
  });
});

describe("lost responses, at the server's grace window", group, () => {
  // A grace window of 3 s stands for the default 30 s; the client's retry
  // window (2 s) and request timeout (5 s) keep the defaults' proportions
  // (20 s, 30 s): a request may wait longer than the grace window lasts.
  let g;
  before(async () => {
    g = await issuerBehindProxy(["--refresh-grace", "3s", "--access-ttl", "1m"]);
  });
  after(() => g?.stop());
  const client = () => createClient({ server: g.url, storage: new MemoryStorage(), refreshRetryWindowMs: 2000, requestTimeoutMs: 5000 });

  test("a refresh whose answer never comes is retried with the same token inside the retry window, not after the request timeout", async () => {
    const c = await client();
    await c.signup({ username: uniqueName() });
    await refreshFirstAnswerLost(g.proxy, c, "hang");
    await new Promise((r) => setTimeout(r, 3500)); // past the grace window
    await c.refresh(); // the chain goes on: no reuse was detected
    await c.me();
    c.close();
  });

  test("a refresh whose answer is cut in the middle of its body is retried with the same token", async () => {
    const c = await client();
    await c.signup({ username: uniqueName() });
    await refreshFirstAnswerLost(g.proxy, c, "truncate");
    await new Promise((r) => setTimeout(r, 3500));
    await c.refresh();
    await c.me();
    c.close();
  });

  // loseRefresh makes c.refresh() fail with every answer of /v1/token lost
  // (the server rotated the token on the first request), and returns the
  // requests, all with one refresh token and one retry id.
  async function loseRefresh(c) {
    g.proxy.setHook((e) => (e.path === "/v1/token" ? "lose" : undefined));
    const from = g.proxy.log.length;
    try {
      await rejectsWith(c.refresh(), ClientCodes.networkError);
    } finally {
      g.proxy.setHook(null);
    }
    const tr = g.proxy.log.slice(from).filter((e) => e.path === "/v1/token");
    assert.ok(tr.length >= 2 && tr.every((e) => e.lost), "retried, every answer lost");
    assert.equal(tr[0].status, 200, "the server rotated the token on the first request");
    assert.match(retryIdOf(tr[0]) ?? "", /^[A-Za-z0-9_-]{22}$/);
    assert.ok(tr.every((e) => refreshTokenOf(e) === refreshTokenOf(tr[0]) && retryIdOf(e) === retryIdOf(tr[0])), "one token, one id");
    return tr;
  }

  // refreshesWith refreshes through refresh() and checks that the first
  // request presents the lost one's token and id and is answered.
  async function refreshesWith(refresh, lost) {
    const from = g.proxy.log.length;
    await refresh();
    const tr = g.proxy.log.slice(from).filter((e) => e.path === "/v1/token");
    assert.ok(tr.length >= 1);
    assert.equal(refreshTokenOf(tr[0]), refreshTokenOf(lost[0]), "the token whose answer was lost");
    assert.equal(retryIdOf(tr[0]), retryIdOf(lost[0]), "with its retry id");
    assert.equal(tr[0].status, 200, "after the grace window: the pair the server made, not reuse");
  }

  test("a refresh whose every answer was lost is retried after the grace window with the same token and retry id, and the device stays signed in", async () => {
    const c = await client();
    await c.signup({ username: uniqueName() });
    const lost = await loseRefresh(c);
    await new Promise((r) => setTimeout(r, 3500)); // past the 3 s grace window
    await refreshesWith(() => c.refresh(), lost); // the next refresh, by the app or on an expired access token
    await c.refresh(); // the chain goes on: no reuse was detected
    await c.me();
    c.close();
  });

  test("an app restarted after a refresh answer was lost redeems the stored token with its stored retry id after the grace window", async () => {
    const path = join(tempDir(), "hallpass.json");
    const opts = { server: g.url, refreshRetryWindowMs: 2000, requestTimeoutMs: 5000 };
    const a = await createClient({ ...opts, storage: new FileStorage(path) });
    const s = await a.signup({ username: uniqueName() });
    const lost = await loseRefresh(a);
    a.close(); // the app is killed
    await new Promise((r) => setTimeout(r, 3500)); // past the 3 s grace window
    const b = await createClient({ ...opts, storage: new FileStorage(path) });
    assert.deepEqual(b.state(), s);
    await refreshesWith(() => b.refresh(), lost);
    const stored = JSON.parse(readFileSync(path, "utf8")).session;
    assert.equal(stored.refreshRetryId, undefined, "the id went with the spent token");
    assert.notEqual(stored.refreshToken, refreshTokenOf(lost[0]));
    assert.equal((await b.me()).deviceId, s.deviceId);
    await b.refresh();
    await b.me();
    b.close();
  });

  test("a signup whose answer never comes is retried with the same key inside the retry window, not given up after the request timeout", async () => {
    const c = await client();
    let n = 0;
    g.proxy.setHook((e) => (e.path === "/v1/accounts" && n++ === 0 ? "hang" : undefined));
    const from = g.proxy.log.length;
    const name = uniqueName();
    let s;
    try {
      s = await c.signup({ username: name });
    } finally {
      g.proxy.setHook(null);
    }
    const signups = g.proxy.log.slice(from).filter((e) => e.path === "/v1/accounts");
    assert.equal(signups.length, 2, "the first answer hung, the retry came inside the retry window");
    assert.ok(signups[0].lost && signups[0].status === 201, "the server created the account on the first request");
    assert.equal(s.username, name);
    assert.equal((await c.me()).accountId, s.accountId);
    c.close();
  });
});

describe("storage", group, () => {
  test("a save that fails keeps the new tokens in memory; the next call saves them and never goes back to the older stored token", async () => {
    const { inner, storage, setFail } = failingStorage(new MemoryStorage());
    const c = await newClient({ storage });
    await c.signup({ username: uniqueName() });
    const saved = (await inner.load()).refreshToken;
    setFail(true);
    await rejectsWith(c.refresh(), ClientCodes.storageError);
    assert.equal((await inner.load()).refreshToken, saved, "the rotation did not reach the storage");
    const from = env.proxy.log.length;
    await c.me(); // the new access token, from memory: no refresh
    assert.equal(tokenRequests(from).length, 0);
    setFail(false);
    await c.refresh();
    const tr = tokenRequests(from);
    assert.equal(tr.length, 1);
    assert.notEqual(refreshTokenOf(tr[0]), saved, "the refresh used the newest token, from memory");
    assert.notEqual((await inner.load()).refreshToken, saved);
    await c.me();
    c.close();
  });

  test("a storage that keeps no access token: each client uses its own while it is fresh, not a refresh per call", async () => {
    const inner = new MemoryStorage();
    const storage = {
      load: () => inner.load(),
      save: (r) => inner.save(r && { ...r, accessToken: null }),
      deviceKey: (create) => inner.deviceKey(create),
      deleteDeviceKey: () => inner.deleteDeviceKey(),
    };
    const a = await newClient({ storage, crossTab: false });
    await a.signup({ username: uniqueName() });
    const b = await newClient({ storage, crossTab: false });
    let from = env.proxy.log.length;
    await b.me(); // b starts without an access token: one refresh (after the nonce demand)
    assert.equal(tokenRequests(from).filter((e) => e.status === 200).length, 1);
    from = env.proxy.log.length;
    await a.rename(uniqueName("ren")); // a re-reads the storage: b's refresh token, no access token
    await a.me();
    await b.me();
    await a.me();
    assert.equal(tokenRequests(from).length, 0, "both access tokens are fresh: no refresh");
    await a.refresh(); // and a's refresh token is the storage's, not a spent one
    await b.refresh();
    await a.me();
    a.close();
    b.close();
  });
});

describe("refusals", group, () => {
  test("token_expired: refreshed once and retried once", async () => {
    const c = await newClient();
    await c.signup({ username: uniqueName() });
    let n = 0;
    env.proxy.setHook((e) => (e.path === "/v1/me" && n++ === 0 ? { status: 401, headers: { "www-authenticate": 'DPoP error="token_expired", algs="ES256 EdDSA"' } } : undefined));
    const from = env.proxy.log.length;
    try {
      await c.me();
    } finally {
      env.proxy.setHook(null);
    }
    assert.deepEqual(env.proxy.log.slice(from).map((e) => `${e.path} ${e.status}`), ["/v1/me 401", "/v1/token 200", "/v1/me 200"]);
    c.close();
  });

  test("use_dpop_nonce on a call: retried once with the nonce", async () => {
    const c = await newClient();
    await c.signup({ username: uniqueName() });
    let n = 0;
    env.proxy.setHook((e) => (e.path === "/v1/me" && n++ === 0 ? { status: 401, headers: { "dpop-nonce": "test-nonce-1", "www-authenticate": 'DPoP error="use_dpop_nonce"', "content-type": "application/problem+json" }, body: '{"code":"use_dpop_nonce"}' } : undefined));
    const from = env.proxy.log.length;
    try {
      await c.me();
    } finally {
      env.proxy.setHook(null);
    }
    const calls = env.proxy.log.slice(from);
    assert.equal(calls.length, 2);
    const claims = JSON.parse(Buffer.from(calls[1].headers.dpop.split(".")[1], "base64url"));
    assert.equal(claims.nonce, "test-nonce-1");
    c.close();
  });

  test("invalid_grant: signed out by another device, state cleared, an event, then link back", async () => {
    const storage = new MemoryStorage();
    const a = await createClient({ server: env.url, storage });
    const s = await a.signup({ username: uniqueName() });
    const { code } = await a.createLinkCode();
    const b = await newClient();
    const sb = await b.link({ code, deviceName: "tablet" });
    assert.equal(sb.accountId, s.accountId);
    assert.notEqual(sb.deviceId, s.deviceId);
    const events = [];
    a.on("signedout", (e) => events.push(e.reason));
    await b.revokeDevice(s.deviceId);
    // a's access token is refused (token_revoked), its refresh gets invalid_grant.
    const err = await rejectsWith(a.me(), ServerCodes.invalidGrant);
    assert.ok(err instanceof ApiError && err.status === 400);
    assert.ok(isSignedOut(err));
    assert.equal(a.state(), null);
    assert.deepEqual(events, ["invalid_grant"]);
    assert.equal(await storage.load(), null, "the storage holds no session");
    assert.equal(await storage.deviceKey(false), null, "nor the old key");
    await rejectsWith(a.me(), ClientCodes.noSession);
    // Back with a link code from b, as a new device with a new key.
    const again = await a.link({ code: (await b.createLinkCode()).code });
    assert.equal(again.accountId, s.accountId);
    assert.notEqual(again.deviceId, s.deviceId);
    assert.equal((await b.devices()).filter((d) => d.active).length, 2);
    a.close();
    b.close();
  });

  test("the server's error codes reach the app", async () => {
    const c = await newClient();
    const name = uniqueName("taken");
    await c.signup({ username: name });
    const d = await newClient();
    let e = await rejectsWith(d.signup({ username: name.toUpperCase() }), ServerCodes.usernameTaken);
    assert.equal(e.status, 409);
    e = await rejectsWith(d.signup({ username: "ab" }), ServerCodes.usernameInvalid);
    assert.equal(e.reason, "too_short");
    e = await rejectsWith(d.signup({ username: "admin" }), ServerCodes.usernameInvalid);
    assert.equal(e.reason, "reserved");
    await rejectsWith(d.signup({ username: uniqueName(), deviceName: "x".repeat(65) }), ServerCodes.invalidRequest);
    await rejectsWith(d.link({ code: "0000-0000-0000" }), ServerCodes.invalidLinkCode);
    await rejectsWith(d.recover({ username: name, code: "00000-00000-00000-00000" }), ServerCodes.invalidRecoveryCode);
    await rejectsWith(c.revokeDevice("dev_AAAAAAAAAAAAAAAAAAAAAA"), ServerCodes.notFound);
    await c.createLinkCode();
    await c.createLinkCode();
    await c.createLinkCode();
    e = await rejectsWith(c.createLinkCode(), ServerCodes.rateLimited);
    assert.equal(e.status, 429);
    assert.ok(e.retryAfter > 0);
    await rejectsWith(c.signup({ username: uniqueName() }), ClientCodes.alreadySignedIn);
    // A device clock far off: the issuer refuses the proof.
    const skewed = await newClient({ now: () => Date.now() - 3600_000 });
    e = await rejectsWith(skewed.signup({ username: uniqueName() }), ServerCodes.invalidDPoPProof);
    assert.equal(e.status, 400);
    assert.match(e.detail, /iat/);
    c.close();
    d.close();
    skewed.close();
  });

  test("every code of docs/protocol.md is known, and maps from a problem answer", async () => {
    const doc = readFileSync(join(repoRoot, "docs", "protocol.md"), "utf8");
    const table = doc.slice(doc.indexOf("### Codes"), doc.indexOf("### Library codes"));
    const documented = [...table.matchAll(/^\| `([a-z_]+)` \| (\d{3})/gm)].map((m) => [m[1], Number(m[2])]);
    assert.ok(documented.length >= 20);
    assert.deepEqual(documented.map(([c]) => c).sort(), Object.values(ServerCodes).sort(), "ServerCodes and docs/protocol.md list the same codes");
    const c = await newClient();
    await c.signup({ username: uniqueName() });
    for (const [code, status] of documented) {
      if (code === ServerCodes.useDPoPNonce) continue; // retried by the client
      env.proxy.setHook((e) => (e.path === "/v1/me/devices" ? { status, headers: { "content-type": "application/problem+json", "retry-after": "7" }, body: JSON.stringify({ type: `urn:hallpass:problem:${code}`, title: "T\u202eitle", status, code, detail: "D", request_id: "req-1", reason: code === "username_invalid" ? "too_long" : undefined }) } : undefined));
      try {
        const e = await rejectsWith(c.devices(), code);
        assert.ok(e instanceof ApiError);
        assert.equal(e.status, status);
        assert.equal(e.retryAfter, 7);
        assert.equal(e.requestId, "req-1");
        assert.equal(e.title, "Title", "control and bidi characters are dropped");
        assert.equal(e.message, `hallpass: server answered ${code} (HTTP ${status})`);
      } finally {
        env.proxy.setHook(null);
      }
    }
    // A code of the wrong shape is not believed; the status is kept.
    env.proxy.setHook((e) => (e.path === "/v1/me/devices" ? { status: 418, headers: { "content-type": "application/problem+json" }, body: '{"code":"<script>"}' } : undefined));
    try {
      await rejectsWith(c.devices(), "http_418");
    } finally {
      env.proxy.setHook(null);
    }
    c.close();
  });
});

describe("life cycle", group, () => {
  test("recovery codes, recover on a new device signing the others out, rename, delete", async () => {
    const a = await newClient();
    const name = uniqueName("rec");
    const s = await a.signup({ username: name });
    const codes = await a.createRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal((await a.me()).recoveryCodesLeft, 10);
    const events = [];
    a.on("signedout", (e) => events.push(e.reason));
    const n = await newClient();
    const r = await n.recover({ username: name, code: codes[3].toLowerCase(), deviceName: "new phone" });
    assert.equal(r.accountId, s.accountId);
    await rejectsWith(a.me(), ServerCodes.invalidGrant);
    assert.deepEqual(events, ["invalid_grant"]);
    assert.equal((await n.me()).recoveryCodesLeft, 9);
    const renamed = uniqueName("ren");
    assert.equal((await n.rename(renamed)).username, renamed);
    assert.equal(n.state().username, renamed);
    await n.deleteAccount();
    assert.equal(n.state(), null);
    await rejectsWith(n.me(), ClientCodes.noSession);
    const m = await newClient();
    await rejectsWith(m.signup({ username: renamed }), ServerCodes.usernameTaken);
    a.close();
    n.close();
    m.close();
  });

  test("logout ends the session on the server and here", async () => {
    const storage = new MemoryStorage();
    const c = await createClient({ server: env.url, storage });
    await c.signup({ username: uniqueName() });
    const rec = await storage.load();
    const signer = await storage.deviceKey(false);
    const events = [];
    c.on("signedout", (e) => events.push(e.reason));
    await c.logout();
    assert.equal(c.state(), null);
    assert.deepEqual(events, ["logout"]);
    assert.equal(await storage.load(), null);
    assert.equal(await storage.deviceKey(false), null, "the next session uses a new key");
    // The refresh token is dead on the server: a copy of the old state, with its key, is signed out at its first refresh.
    const copy = new MemoryStorage();
    await copy.save({ ...rec, accessToken: null });
    const d = await createClient({ server: env.url, storage: copy, signer });
    await rejectsWith(d.me(), ServerCodes.invalidGrant);
    assert.equal(d.state(), null);
    c.close();
    d.close();
  });
});

describe("fetch and socketAuth", group, () => {
  let service;
  let seen;
  before(async () => {
    seen = [];
    const port = await freePort();
    service = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
    await new Promise((r) => service.listen(port, "127.0.0.1", r));
    service.url = `http://127.0.0.1:${port}`;
  });
  after(() => new Promise((r) => { service.closeAllConnections(); service.close(r); }));

  test("the token goes to configured origins only, with a proof for the exact method and URL", async () => {
    const c = await newClient({ origins: [service.url] });
    await c.signup({ username: uniqueName() });
    const r = await c.fetch(service.url + "/api/items?page=2", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    assert.equal(r.status, 200);
    const h = seen.at(-1).headers;
    const token = h.authorization.replace(/^DPoP /, "");
    assert.match(token, /^v4\.public\./);
    const { keys } = readVectors("keys.json");
    assert.equal(await referenceVerify(h.dpop, { method: "POST", url: service.url + "/api/items", access_token: token, jkt: "", nonce: "", now: Math.floor(Date.now() / 1000) }, keys), "ok");
    const claims = JSON.parse(Buffer.from(h.dpop.split(".")[1], "base64url"));
    assert.equal(claims.htu, service.url + "/api/items", "no query in htu");

    const before = seen.length;
    const other = service.url.replace("127.0.0.1", "localhost");
    await rejectsWith(c.fetch(other + "/api"), ClientCodes.otherOrigin);
    await rejectsWith(c.socketAuth(other), ClientCodes.otherOrigin);
    assert.equal(seen.length, before, "nothing was sent");
    const d = await newClient();
    await d.signup({ username: uniqueName() });
    await rejectsWith(d.fetch(service.url + "/api"), ClientCodes.otherOrigin);
    c.close();
    d.close();
  });

  test("socketAuth: a proof for GET <origin>/socket.io/ as socketauth checks it", async () => {
    const c = await newClient({ origins: [service.url] });
    await c.signup({ username: uniqueName() });
    const { token, proof } = await c.socketAuth(service.url + "/chat");
    const { keys } = readVectors("keys.json");
    const v = { method: "GET", url: service.url + "/socket.io/?EIO=4&transport=polling", access_token: token, jkt: "", nonce: "", now: Math.floor(Date.now() / 1000) };
    assert.equal(await referenceVerify(proof, v, keys), "ok");
    const p2 = await c.socketAuth(service.url, { path: "/ws" });
    assert.equal(JSON.parse(Buffer.from(p2.proof.split(".")[1], "base64url")).htu, service.url + "/ws/");
    c.close();
  });
});

describe("a short grace window", group, () => {
  let short;
  before(async () => {
    short = await startServer({ args: ["--refresh-grace", "1s", "--access-ttl", "1m"] });
  });
  after(() => short?.stop());

  test("two clients of one storage: the one that slept past the grace window takes the other's tokens instead of reusing", async () => {
    const storage = new MemoryStorage();
    // crossTab false: no lock, no broadcast between them: only the storage re-read protects b.
    const a = await createClient({ server: short.url, storage, crossTab: false });
    await a.signup({ username: uniqueName() });
    const b = await createClient({ server: short.url, storage, crossTab: false });
    assert.deepEqual(b.state(), a.state());
    await a.refresh();
    await new Promise((r) => setTimeout(r, 1500)); // past the 1 s grace window
    await b.refresh(); // b still holds the first refresh token in memory
    await a.me();
    await b.me();
    await a.refresh();
    await b.refresh();
    await b.me();
    await a.me();
    a.close();
    b.close();
  });

  test("a client that learns a new username never writes back the older refresh token it holds", async () => {
    const storage = new MemoryStorage();
    const a = await createClient({ server: short.url, storage, crossTab: false });
    await a.signup({ username: uniqueName() });
    const b = await createClient({ server: short.url, storage, crossTab: false });
    const renamed = uniqueName("ren");
    await a.rename(renamed); // or on another device
    await a.refresh(); // b slept through it and still holds the first refresh token
    assert.equal((await b.me()).username, renamed); // b's access token is still good: no refresh
    const stored = await storage.load();
    assert.equal(stored.username, renamed);
    await new Promise((r) => setTimeout(r, 1500)); // past the 1 s grace window
    // A new tab (or the app's next start) takes what the storage holds.
    const c = await createClient({ server: short.url, storage, crossTab: false });
    await c.refresh();
    await a.me();
    await b.refresh();
    await b.me();
    a.close();
    b.close();
    c.close();
  });

  test("a client whose save failed never writes its older tokens over what another client saved since", async () => {
    const { inner, storage: failing, setFail } = failingStorage(new MemoryStorage());
    const a = await createClient({ server: short.url, storage: failing, crossTab: false });
    await a.signup({ username: uniqueName() });
    const b = await createClient({ server: short.url, storage: inner, crossTab: false });
    setFail(true);
    await rejectsWith(a.refresh(), ClientCodes.storageError); // a holds the successor in memory only
    await b.refresh(); // the token the storage holds, inside the grace window: the same successor
    await b.refresh(); // and on: the storage now holds a token a never saw
    setFail(false);
    await new Promise((r) => setTimeout(r, 1500)); // past the 1 s grace window
    await a.refresh(); // must take the storage's newer tokens, not save and present its own older ones
    await a.me();
    await b.refresh();
    await b.me();
    a.close();
    b.close();
  });

  test("a refresh token used again after the grace window is reuse: the session ends", async () => {
    const storage = new MemoryStorage();
    const a = await createClient({ server: short.url, storage, crossTab: false });
    await a.signup({ username: uniqueName() });
    const old = await storage.load();
    await a.refresh();
    await new Promise((r) => setTimeout(r, 1500));
    // A storage that lost the rotation: the client can only present the old token.
    const stale = new MemoryStorage();
    await stale.save(old);
    const b = await createClient({ server: short.url, storage: stale, signer: await storage.deviceKey(false), crossTab: false });
    await rejectsWith(b.refresh(), ServerCodes.invalidGrant);
    await rejectsWith(a.me(), ServerCodes.invalidGrant); // reuse ended the device's session for both
    a.close();
    b.close();
  });
});
