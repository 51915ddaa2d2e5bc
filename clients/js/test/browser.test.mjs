// The demo page (examples/web) and @hallpass/client's browser bundle in real
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core), against
// a real `hallpass serve --dev --cors-origins <page origin>` with a short
// refresh grace window. Loopback only; every wait is bounded.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createProof, generateWebCryptoKey, webCryptoSigner } from "../dist/index.js";
import { hallpassBinary, launchChromium, startServer, uniqueName } from "./harness.mjs";
import { startDemoServer } from "../scripts/serve-demo.mjs";

const grace = 2; // seconds: --refresh-grace of the test server

let browser;
let demo;
let issuer;

before(async () => {
  browser = await launchChromium();
  const help = execFileSync(await hallpassBinary(), ["serve", "--help"], { encoding: "utf8" });
  if (!help.includes("--cors-origins")) throw new Error("hallpass serve has no --cors-origins flag: the browser tests need the issuer's CORS support (issue 13, item 6)");
  demo = await startDemoServer({ port: 0 });
  issuer = await startServer({ args: ["--cors-origins", demo.url, "--refresh-grace", `${grace}s`, "--access-ttl", "1m"] });
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  await demo?.close();
  await issuer?.stop();
});

const pageURL = () => `${demo.url}/examples/web/?server=${encodeURIComponent(issuer.url)}`;

// A tab that can be put to sleep: while window.__asleep is true, messages
// to its BroadcastChannels are held (as for a frozen or discarded tab), so
// it learns nothing of another tab's refresh until it reads the storage.
const sleepyTab = () => {
  const Real = window.BroadcastChannel;
  window.__asleep = false;
  window.__held = [];
  window.BroadcastChannel = class extends Real {
    set onmessage(fn) {
      super.onmessage = (ev) => (window.__asleep ? window.__held.push(() => fn(ev)) : fn(ev));
    }
  };
  window.__wake = () => {
    window.__asleep = false;
    window.__held.splice(0).forEach((f) => f());
  };
};

async function openPage(context, { sleepy = false } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.errors = errors;
  page.tokenRequests = 0;
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url() === issuer.url + "/v1/token") page.tokenRequests++;
  });
  if (sleepy) await page.addInitScript(sleepyTab);
  await page.goto(pageURL());
  await page.waitForSelector("body[data-ready]", { timeout: 15_000 });
  assert.equal(await page.getAttribute("body", "data-ready"), "true", `page failed to start: ${errors.join("; ")}`);
  return page;
}

async function signUp(page, name) {
  await page.fill("#username", name);
  await page.fill("#device-name", "Chromium test");
  await page.click("#signup");
  await page.waitForSelector("#signed-in:not([hidden])");
  await page.waitForFunction(() => document.getElementById("me-codes-left").textContent !== "");
}

const me = (page) => page.evaluate(() => window.hallpass.me());
const storedSession = (page) =>
  page.evaluate(async () => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open("hallpass");
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const keys = await new Promise((res) => {
      const r = db.transaction("state").objectStore("state").getAllKeys();
      r.onsuccess = () => res(r.result);
    });
    const k = keys.find((k) => String(k).endsWith("|session"));
    const v = await new Promise((res) => {
      const r = db.transaction("state").objectStore("state").get(k);
      r.onsuccess = () => res(r.result);
    });
    db.close();
    return v;
  });

describe("demo page in Chromium", { timeout: 240_000 }, () => {
  let context;
  let page;
  let name;
  before(async () => {
    context = await browser.newContext();
  });
  after(() => context?.close());

  test("sign up from the demo page", async () => {
    page = await openPage(context);
    assert.ok(await page.isVisible("#signed-out"));
    name = uniqueName("web");
    await signUp(page, name);
    assert.equal(await page.textContent("#me-username"), name);
    assert.match(await page.textContent("#me-account"), /^acc_/);
    assert.equal(await page.locator("#devices tbody tr").count(), 1);
    assert.match(await page.textContent("#devices tbody"), /\(this one\)/);
    assert.deepEqual(page.errors, []);
  });

  test("reload the page and stay signed in", async () => {
    const account = await page.textContent("#me-account");
    await page.reload();
    await page.waitForSelector("body[data-ready]");
    await page.waitForSelector("#signed-in:not([hidden])");
    assert.equal(await page.textContent("#me-account"), account);
    assert.equal((await me(page)).username, name);
  });

  test("every key in IndexedDB is a non-extractable CryptoKey; no private key material anywhere in the origin's storage", async () => {
    const report = await page.evaluate(async () => {
      const found = { cryptoKeys: [], privateMembers: [], binaries: [], stores: 0, exportRefused: 0 };
      const walk = async (v, path) => {
        if (v instanceof CryptoKey) {
          found.cryptoKeys.push({ path, type: v.type, extractable: v.extractable, algorithm: v.algorithm.name, usages: v.usages });
          for (const f of ["pkcs8", "jwk", "raw", "spki"]) {
            try {
              await crypto.subtle.exportKey(f, v);
            } catch {
              found.exportRefused++;
            }
          }
          return;
        }
        if (v instanceof ArrayBuffer || ArrayBuffer.isView(v) || v instanceof Blob) {
          found.binaries.push(path);
          return;
        }
        if (typeof v === "string") {
          if (/-----BEGIN|PRIVATE KEY/.test(v) || /^MI[GI]/.test(v)) found.privateMembers.push(path + " (PEM or PKCS#8)");
          try {
            const j = JSON.parse(v);
            if (j && typeof j === "object") await walk(j, path + "(json)");
          } catch {}
          return;
        }
        if (v && typeof v === "object") {
          for (const [k, x] of Object.entries(v)) {
            if (["d", "p", "q", "dp", "dq", "qi", "k"].includes(k)) found.privateMembers.push(`${path}.${k}`);
            await walk(x, `${path}.${k}`);
          }
        }
      };
      for (const info of await indexedDB.databases()) {
        const db = await new Promise((res, rej) => {
          const r = indexedDB.open(info.name);
          r.onsuccess = () => res(r.result);
          r.onerror = () => rej(r.error);
        });
        for (const storeName of db.objectStoreNames) {
          found.stores++;
          const store = db.transaction(storeName).objectStore(storeName);
          const [keys, values] = await Promise.all(["getAllKeys", "getAll"].map((m) => new Promise((res) => {
            const r = store[m]();
            r.onsuccess = () => res(r.result);
          })));
          for (let i = 0; i < keys.length; i++) await walk(values[i], `${info.name}/${storeName}/${keys[i]}`);
        }
        db.close();
      }
      for (const [which, s] of [["localStorage", localStorage], ["sessionStorage", sessionStorage]]) {
        for (let i = 0; i < s.length; i++) await walk(s.getItem(s.key(i)), `${which}/${s.key(i)}`);
      }
      await walk(document.cookie, "cookie");
      for (const name of await caches.keys()) found.privateMembers.push(`cache ${name}`);
      return found;
    });
    assert.ok(report.stores >= 1, "the client keeps its state in IndexedDB");
    assert.equal(report.cryptoKeys.length, 1, JSON.stringify(report.cryptoKeys));
    for (const k of report.cryptoKeys) {
      assert.equal(k.type, "private", k.path);
      assert.equal(k.extractable, false, k.path);
      assert.equal(k.algorithm, "ECDSA");
      assert.deepEqual(k.usages, ["sign"]);
    }
    assert.equal(report.exportRefused, 4, "exportKey refuses the private key in every format");
    assert.deepEqual(report.privateMembers, []);
    assert.deepEqual(report.binaries, []);
  });

  test("two tabs refreshing at the same moment both stay signed in, with one refresh", async () => {
    const second = await openPage(context);
    await second.waitForSelector("#signed-in:not([hidden])");
    const before1 = page.tokenRequests;
    const before2 = second.tokenRequests;
    await Promise.all([page.evaluate(() => window.hallpass.refresh()), second.evaluate(() => window.hallpass.refresh())]);
    assert.equal(page.tokenRequests - before1 + (second.tokenRequests - before2), 1, "the Web Lock lets one tab refresh; the other takes its tokens");
    assert.equal((await me(page)).username, name);
    assert.equal((await me(second)).username, name);
    // And again, one after the other: each refresh rotates, neither is reuse.
    await second.evaluate(() => window.hallpass.refresh());
    await page.evaluate(() => window.hallpass.refresh());
    assert.equal((await me(second)).username, name);
    assert.equal((await me(page)).username, name);
    await second.close();
  });

  test("a tab that slept past the grace window refreshes after another tab did and stays signed in", async () => {
    const sleeper = await openPage(context, { sleepy: true });
    await sleeper.waitForSelector("#signed-in:not([hidden])");
    await sleeper.evaluate(() => (window.__asleep = true));
    const tokenBefore = (await storedSession(page)).refreshToken;
    await page.evaluate(() => window.hallpass.refresh());
    assert.notEqual((await storedSession(page)).refreshToken, tokenBefore);
    await new Promise((r) => setTimeout(r, (grace + 1) * 1000)); // the previous refresh token is now reuse
    assert.ok((await sleeper.evaluate(() => window.__held.length)) >= 1, "the sleeping tab did not hear of the refresh");
    const before = sleeper.tokenRequests;
    await sleeper.evaluate(() => window.hallpass.refresh());
    assert.equal(sleeper.tokenRequests - before, 0, "it re-read the storage and took the newer tokens instead of presenting its old refresh token");
    assert.equal((await me(sleeper)).username, name);
    await sleeper.evaluate(() => window.hallpass.refresh()); // a real refresh now, with the current token
    assert.equal(sleeper.tokenRequests - before, 1);
    await sleeper.evaluate(() => window.__wake());
    assert.equal((await me(page)).username, name);
    assert.equal((await me(sleeper)).username, name);
    await sleeper.close();
  });

  test("a tab closed while its refresh answer was on the way: another tab takes over after the grace window with the stored retry id and stays signed in", async () => {
    const lossy = await openPage(context);
    try {
      await lossy.waitForSelector("#signed-in:not([hidden])");
      let rotated;
      const answered = new Promise((r) => (rotated = r));
      const lost = [];
      await lossy.route(issuer.url + "/v1/token", async (route) => {
        if (route.request().method() !== "POST") return route.continue();
        lost.push(new URLSearchParams(route.request().postData() ?? ""));
        const res = await route.fetch().catch((e) => e); // the server rotates the token; the answer never reaches the tab
        rotated(res.status?.() ?? String(res));
      });
      const tokenBefore = (await storedSession(page)).refreshToken;
      const pending = lossy.evaluate(() => window.hallpass.refresh()).catch(() => "closed");
      assert.equal(await answered, 200, "the server rotated the token on the lost request");
      assert.equal(lost.length, 1);
      assert.equal(lost[0].get("refresh_token"), tokenBefore);
      assert.match(lost[0].get("retry_id") ?? "", /^[A-Za-z0-9_-]{22}$/);
      assert.equal((await storedSession(page)).refreshRetryId, lost[0].get("retry_id"), "the id was stored with the token before the request left");
      await lossy.close(); // the tab is gone, and its Web Lock with it
      await pending;
      await new Promise((r) => setTimeout(r, (grace + 1) * 1000)); // the spent token alone would be reuse now
      const sent = [];
      const onRequest = (r) => r.method() === "POST" && r.url() === issuer.url + "/v1/token" && sent.push(new URLSearchParams(r.postData() ?? ""));
      page.on("request", onRequest);
      try {
        await page.evaluate(() => window.hallpass.refresh());
      } finally {
        page.off("request", onRequest);
      }
      assert.equal(sent.length, 1);
      assert.equal(sent[0].get("refresh_token"), tokenBefore, "the token whose answer was lost");
      assert.equal(sent[0].get("retry_id"), lost[0].get("retry_id"), "with the stored retry id");
      const stored = await storedSession(page);
      assert.notEqual(stored.refreshToken, tokenBefore);
      assert.equal(stored.refreshRetryId, undefined, "dropped with the spent token");
      assert.equal((await me(page)).username, name);
      await page.evaluate(() => window.hallpass.refresh()); // the chain goes on: no reuse was detected
      assert.equal((await me(page)).username, name);
    } finally {
      if (!lossy.isClosed()) await lossy.close(); // a failure must not leave its Web Lock held for the next tests
    }
  });

  test("a token copied out of the page and used with another key is refused", async () => {
    const { accessToken } = await storedSession(page);
    assert.match(accessToken, /^v4\.public\./);
    const url = issuer.url + "/v1/me";
    const thief = webCryptoSigner(await generateWebCryptoKey("ES256"));
    const proof = await createProof(thief, { method: "GET", url, accessToken });
    let r = await fetch(url, { headers: { Authorization: `DPoP ${accessToken}`, DPoP: proof } });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).code, "invalid_dpop_proof");
    r = await fetch(url, { headers: { Authorization: `DPoP ${accessToken}` } });
    assert.equal(r.status, 401, "without a proof");
    r = await fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } });
    assert.equal(r.status, 401, "as a bearer token");
    assert.equal((await r.json()).code, "invalid_token");
    assert.equal((await me(page)).username, name, "the page itself goes on");
  });

  test("a link code as text and QR joins a second browser; signing this one out from there ends its session", async () => {
    await page.click("#make-link-code");
    await page.waitForSelector("#link-code-out:not([hidden])");
    const code = await page.textContent("#link-code-text");
    assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    assert.ok(await page.isVisible("#link-code-qr svg"));
    const other = await browser.newContext();
    try {
      const tablet = await openPage(other);
      await tablet.fill("#link-code", code.toLowerCase());
      await tablet.fill("#device-name", "Tablet");
      await tablet.click("#link");
      await tablet.waitForSelector("#signed-in:not([hidden])");
      assert.equal(await tablet.textContent("#me-account"), await page.textContent("#me-account"));
      await tablet.waitForFunction(() => document.querySelectorAll("#devices tbody tr").length === 2);
      // The tablet signs the first browser out.
      await tablet.click("#devices tbody button");
      await tablet.waitForFunction(() => /signed out/.test(document.querySelector("#devices tbody").textContent));
      // The first browser finds out at its next refresh: invalid_grant, state cleared, the page shows why.
      await page.click("#refresh");
      await page.waitForSelector("#signed-out:not([hidden])");
      assert.match(await page.textContent("#error"), /signed out/i);
      assert.equal(await page.evaluate(() => window.hallpass.state()), null);
      await page.reload();
      await page.waitForSelector("body[data-ready]");
      assert.ok(await page.isVisible("#signed-out"), "still signed out after a reload");
      // The tablet signs out too.
      await tablet.click("#logout");
      await tablet.waitForSelector("#signed-out:not([hidden])");
      assert.deepEqual(tablet.errors, []);
    } finally {
      await other.close();
    }
  });
});

describe("demo page's Content-Security-Policy", { timeout: 60_000 }, () => {
  // README, "Security notes": serve the page with a strict CSP. The demo
  // does, so that script injected into it (an untrusted device name or
  // username that a future change renders as HTML) neither runs nor sends
  // anything to an origin of its choosing with an image or a stylesheet.
  let context;
  before(async () => {
    context = await browser.newContext();
  });
  after(() => context?.close());

  test("inline script and images from other origins are refused; the page itself works", async () => {
    const page = await openPage(context);
    await signUp(page, uniqueName("csp"));
    const violation = (inject) =>
      page.evaluate((inject) => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective), { once: true });
        setTimeout(() => resolve("none"), 5000);
        if (inject === "script") {
          const s = document.createElement("script");
          s.textContent = "window.__injected = true";
          document.body.append(s);
        } else {
          document.body.insertAdjacentHTML("beforeend", '<img src="http://127.0.0.2:9/x.png">');
        }
      }), inject);
    assert.equal(await violation("script"), "script-src-elem");
    assert.equal(await page.evaluate(() => window.__injected), undefined);
    assert.equal(await violation("img"), "img-src");
    await page.click("#make-link-code");
    await page.waitForSelector("#link-code-qr svg");
    assert.equal((await me(page)).recoveryCodesLeft, 0);
    assert.deepEqual(page.errors.filter((e) => !/Content Security Policy/.test(e)), []);
  });
});

describe("IndexedDB connection closed under the page", { timeout: 60_000 }, () => {
  let context;
  before(async () => {
    context = await browser.newContext();
  });
  after(() => context?.close());

  test("after the origin's IndexedDB is cleared (its connection closed by the browser), the page opens a new connection and learns it is signed out", async () => {
    const page = await openPage(context);
    await signUp(page, uniqueName("idb"));
    const cdp = await context.newCDPSession(page);
    await cdp.send("Storage.clearDataForOrigin", { origin: demo.url, storageTypes: "indexeddb" });
    const code = await page.evaluate(() => window.hallpass.refresh().then(() => "refreshed", (e) => e.code));
    assert.equal(code, "no_session", "the storage is empty now, not broken for good");
    assert.equal(await page.evaluate(() => window.hallpass.state()), null);
    await page.waitForSelector("#signed-out:not([hidden])");
    // And it works again without a reload: a new account on a new key.
    await signUp(page, uniqueName("idb"));
    assert.ok((await storedSession(page)).refreshToken);
  });
});
