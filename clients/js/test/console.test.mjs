// The admin console (issuer/console, /admin/ on the admin listener) in real
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core), against
// a real `hallpass serve --dev` (bbolt) with an admin keys file. Accounts
// are made with @hallpass/client through the public API. Loopback only;
// every wait is bounded; a missing browser fails the test, never skips it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { HallpassError, MemoryStorage, createClient, isSignedOut } from "../dist/index.js";
import { freePort, hallpassBinary, launchChromium, startServer, tempDir, uniqueName } from "./harness.mjs";

let browser;
let issuer;
let adminURL;
let adminKey;
let attacker; // a page on another origin (another port of the same host: same site, cross origin)

before(async () => {
  browser = await launchChromium();
  const bin = await hallpassBinary();
  const keysFile = join(tempDir("hallpass-console-"), "admin-keys");
  adminKey = execFileSync(bin, ["admin-key", "new", "--keys-file", keysFile, "--id", "ops-browser"], { encoding: "utf8" }).trim();
  assert.match(adminKey, /^hpadm_/);
  const adminPort = await freePort();
  adminURL = `http://127.0.0.1:${adminPort}`;
  issuer = await startServer({ args: ["--admin-keys-file", keysFile, "--admin-listen", `127.0.0.1:${adminPort}`] });
  attacker = await startAttacker();
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  await attacker?.close();
  await issuer?.stop();
});

// startAttacker serves, on another port, whatever page the test sets.
async function startAttacker() {
  let html = "";
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  const port = await freePort();
  await new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    set: (h) => (html = h),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A device of a new account, signed up through the public API. */
async function newDevice(prefix, deviceName) {
  const client = await createClient({ server: issuer.url, storage: new MemoryStorage() });
  const s = await client.signup({ username: uniqueName(prefix), deviceName });
  return { client, ...s };
}

/** The admin API, as curl would call it. */
async function adminAPI(path) {
  const r = await fetch(adminURL + path, { headers: { authorization: `Bearer ${adminKey}` }, signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

async function signIn(page, key) {
  await page.goto(adminURL + "/admin/");
  assert.equal(new URL(page.url()).pathname, "/admin/login", "an anonymous visit goes to the sign-in page");
  await page.fill("#key", key);
  await Promise.all([page.waitForLoadState("load"), page.click("#sign-in")]);
}

describe("admin console in Chromium", { timeout: 240_000 }, () => {
  let context;
  let page;
  before(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  });
  after(() => context?.close());

  test("a wrong key is refused, with nothing said about it", async () => {
    await signIn(page, "hpadm_" + "A".repeat(43));
    assert.equal(new URL(page.url()).pathname, "/admin/login");
    assert.equal((await page.textContent("#error")).trim(), "Sign-in refused.");
    const cookies = await context.cookies(adminURL + "/admin/");
    assert.ok(!cookies.some((c) => c.name === "hallpass-console"), "no session cookie after a refused sign-in");
  });

  test("sign in: an HttpOnly, SameSite=Strict session cookie that is not the key", async () => {
    await signIn(page, adminKey);
    assert.equal(new URL(page.url()).pathname, "/admin/");
    assert.equal(await page.textContent("#key-id"), "ops-browser");
    const c = (await context.cookies(adminURL + "/admin/")).find((c) => c.name === "hallpass-console");
    assert.ok(c, "session cookie");
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, "Strict");
    assert.equal(c.path, "/admin/");
    assert.ok(!c.value.includes(adminKey.slice(6)), "the cookie is not the key");
    assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read the cookie");
    assert.ok(!(await page.content()).includes(adminKey.slice(6)), "the page does not show the key");
  });

  test("find an account, sign its device out by clicking; the device's next request is refused", async () => {
    const phone = await newDevice("console", "Phone <b>one</b>");
    const me = await phone.client.me();
    assert.equal(me.deviceId, phone.deviceId, "the device works before");

    await page.goto(adminURL + "/admin/");
    await page.fill("#q", phone.username.toUpperCase()); // the username policy maps case
    await Promise.all([page.waitForURL(`**/admin/accounts/${phone.accountId}`), page.click("#find")]);
    assert.equal(await page.textContent("#username"), phone.username);
    assert.equal(await page.textContent("#account-id"), phone.accountId);
    const row = page.locator(`tr[data-device="${phone.deviceId}"]`);
    assert.equal(await row.locator(".name").textContent(), "Phone <b>one</b>", "the device name renders as text");
    assert.equal(await row.locator(".state").textContent(), "active");

    await Promise.all([page.waitForURL(/done=device_signed_out/), row.locator("button.sign-out-device").click()]);
    assert.match(await page.textContent("#flash"), /Device signed out/);
    assert.match(await row.locator(".state").textContent(), /^signed out /);
    assert.equal(await row.locator("button").count(), 0, "no sign-out button for a signed-out device");

    const err = await phone.client.me().then(() => null, (e) => e);
    assert.ok(err instanceof HallpassError, `the signed-out device's next request must fail, got ${err}`);
    assert.ok(isSignedOut(err), `signed out: ${err.code}`);

    const { records } = await adminAPI("/v1/admin/audit?limit=50");
    const rec = records.find((r) => r.action === "DELETE /v1/admin/devices/:id" && r.targets?.device_id === phone.deviceId);
    assert.ok(rec, "the sign-out is in the audit records");
    assert.equal(rec.who, "ops-browser");
    assert.equal(rec.result, "ok");

    await page.goto(adminURL + "/admin/audit");
    assert.match(await page.textContent("#audit"), new RegExp(`device_id=${phone.deviceId}`));
  });

  test("a form posted without the CSRF token is refused, and changes nothing", async () => {
    const victim = await newDevice("csrf", "laptop");
    // page.request shares the context's cookies (the session) but is no
    // form of a console page: no token.
    for (const form of [{ account: victim.accountId }, { account: victim.accountId, csrf: "forged" }]) {
      const r = await page.request.post(`${adminURL}/admin/accounts/${victim.accountId}/ban`, { form, maxRedirects: 0 });
      assert.equal(r.status(), 403, `form ${JSON.stringify(form)}`);
      const d = await page.request.post(`${adminURL}/admin/devices/${victim.deviceId}/sign-out`, { form, maxRedirects: 0 });
      assert.equal(d.status(), 403);
    }
    const acc = await adminAPI(`/v1/admin/accounts/${victim.accountId}`);
    assert.equal(acc.banned, false);
    assert.equal(acc.devices[0].active, true);
    await victim.client.me(); // still works
  });

  test("a form from another origin is refused even with the right token", async () => {
    const victim = await newDevice("xorigin", "tablet");
    await page.goto(`${adminURL}/admin/accounts/${victim.accountId}`);
    const token = await page.getAttribute('form[action$="/ban"] input[name="csrf"]', "value");
    assert.ok(token);
    // Another port of 127.0.0.1: the same site (so SameSite=Strict still
    // sends the cookie), another origin: only the Origin/Sec-Fetch-Site
    // check stands between it and the action.
    attacker.set(`<!doctype html><form method="post" action="${adminURL}/admin/accounts/${victim.accountId}/ban">
      <input type="hidden" name="csrf" value="${token}"><button id="go">win a prize</button></form>`);
    const evil = await context.newPage();
    evil.setDefaultTimeout(15_000);
    await evil.goto(attacker.url);
    const [res] = await Promise.all([evil.waitForNavigation(), evil.click("#go")]);
    assert.equal(res.status(), 403);
    assert.match(await evil.textContent("#error"), /refused/);
    await evil.close();
    assert.match(issuer.log(), /"reason":"cross_origin"/, "refused by the origin check (the session cookie was sent: same site)");
    const acc = await adminAPI(`/v1/admin/accounts/${victim.accountId}`);
    assert.equal(acc.banned, false, "the cross-origin form banned the account");
  });

  test("a page on another origin cannot lock the operator out of the admin listener", async () => {
    // Any page can make the browser request the admin listener (images,
    // no-cors fetches), never with an Authorization header. Such requests
    // are refused, but must not spend the address's budget of failed keys
    // (10 a minute): the operator's browser and CLI share that address.
    const imgs = Array.from({ length: 30 }, (_, i) => `<img src="${adminURL}/v1/admin/revocations?i=${i}">`).join("");
    attacker.set(`<!doctype html><body>${imgs}<p id="done">loaded</p></body>`);
    const evil = await context.newPage();
    evil.setDefaultTimeout(15_000);
    await evil.goto(attacker.url, { waitUntil: "load" });
    await evil.close();
    const res = await page.goto(adminURL + "/admin/revocations");
    assert.equal(res.status(), 200, "the console after the page: locked out");
    await adminAPI("/v1/admin/whoami");
  });

  test("a page of the same site cannot make the console call the admin API", async () => {
    // Another port of 127.0.0.1 is the same site: the session cookie goes
    // with its images. Each image of a console page was an admin call with
    // the operator's key, audited as the operator's.
    const pageCalls = async () => (await adminAPI("/v1/admin/audit?limit=1000")).records
      .filter((r) => r.who === "ops-browser" && r.action === "GET /v1/admin/revocations").length;
    const before = await pageCalls();
    const imgs = Array.from({ length: 20 }, (_, i) => `<img src="${adminURL}/admin/revocations?i=${i}">`).join("");
    attacker.set(`<!doctype html><body>${imgs}<iframe src="${adminURL}/admin/revocations"></iframe></body>`);
    const evil = await context.newPage();
    evil.setDefaultTimeout(15_000);
    await evil.goto(attacker.url, { waitUntil: "load" });
    await evil.close();
    assert.equal(await pageCalls(), before, "the page's loads of /admin/revocations were admin calls");
    assert.match(issuer.log(), /"reason":"cross_site_load"/);
    const res = await page.goto(adminURL + "/admin/revocations");
    assert.equal(res.status(), 200, "the operator's own navigation");
    assert.equal(await pageCalls(), before + 1);
  });

  test("a support code is shown once: a reload issues no other", async () => {
    const owner = await newDevice("support", "laptop");
    const left = async () => (await adminAPI(`/v1/admin/accounts/${owner.accountId}`)).recovery_codes_left;
    const before = await left();
    await page.goto(`${adminURL}/admin/accounts/${owner.accountId}`);
    await Promise.all([page.waitForURL("**/recovery-code"), page.click("#recovery-code")]);
    assert.match(await page.textContent("#code"), /^[A-Z0-9-]{10,}$/);
    const res = await page.reload();
    assert.equal(res.status(), 410);
    assert.equal(await page.$("#code"), null, "the code shown again");
    assert.equal(await left(), before + 1, "the reload issued another code");
  });

  test("sign out: the session ends", async () => {
    await page.goto(adminURL + "/admin/");
    await Promise.all([page.waitForURL("**/admin/login"), page.click("#sign-out")]);
    await page.goto(adminURL + "/admin/revocations");
    assert.equal(new URL(page.url()).pathname, "/admin/login");
    assert.ok(!issuer.log().includes(adminKey.slice(6)), "the admin key is in the server's log");
  });
});
