// Test harness: a real `hallpass serve --dev` built from this repository,
// on loopback only, a loopback proxy in front of it that can lose or
// replace answers, and headless Chromium for the browser tests. Everything
// is bounded in time and stopped by the test that started it.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const jsRoot = join(repoRoot, "clients", "js");
const fix = "run `make test-deps` at the repository root";

/** A temporary directory removed when the process exits. */
export function tempDir(prefix = "hallpass-js-") {
  const d = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(d, { recursive: true, force: true }));
  return d;
}

let built = null;

/**
 * hallpassBinary builds cmd/hallpass from this repository once per test
 * process (the Go build cache makes the next processes fast) and returns its
 * path. HALLPASS_BIN names a binary built already.
 */
export function hallpassBinary() {
  if (process.env.HALLPASS_BIN) return Promise.resolve(process.env.HALLPASS_BIN);
  built ??= (async () => {
    const out = join(tempDir("hallpass-bin-"), "hallpass");
    try {
      await promisify(execFile)(process.env.GO || "go", ["build", "-o", out, "./cmd/hallpass"], { cwd: repoRoot, timeout: 300_000, maxBuffer: 16 << 20 });
    } catch (err) {
      if (err.code === "ENOENT") throw new Error(`go is not installed (needed to build the issuer the tests run against)`);
      throw new Error(`go build ./cmd/hallpass failed:\n${err.stderr || err.message}`);
    }
    return out;
  })();
  return built;
}

/** freePort returns a free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The limits a test server turns off: the tests sign up many accounts from one address. */
export const noLimits = ["--signup-limit-per-ip", "off", "--signup-limit-global", "off", "--code-limit-per-ip", "off", "--recover-limit-per-account", "off"];

/**
 * startServer runs `hallpass serve --dev` on a free loopback port with its
 * own data directory and waits until /readyz answers. publicURL defaults to
 * the listener's URL; give the proxy's URL to run it behind startProxy.
 * Returns { url, publicURL, stop, log }.
 */
export async function startServer({ args = [], publicPort } = {}) {
  const bin = await hallpassBinary();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const publicURL = publicPort ? `http://127.0.0.1:${publicPort}` : url;
  const data = tempDir("hallpass-data-");
  const child = spawn(bin, ["serve", "--dev", "--data", data, "--listen", `127.0.0.1:${port}`, "--public-url", publicURL, "--log-level", "warn", ...noLimits, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (b) => (log += b));
  child.stderr.on("data", (b) => (log += b));
  let exited = false;
  const exit = new Promise((r) => child.on("exit", () => ((exited = true), r())));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`hallpass serve exited at start:\n${log}`);
    try {
      const r = await fetch(url + "/readyz", { signal: AbortSignal.timeout(1000) });
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`hallpass serve not ready in 30 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exit;
    clearTimeout(t);
  };
  process.on("exit", () => {
    if (!exited) child.kill("SIGKILL");
  });
  return { url, publicURL, stop, log: () => log };
}

/**
 * startProxy listens on port (or a free one) on 127.0.0.1 and forwards
 * every request to target. Each request is logged ({ method, path,
 * headers, body, status }). A hook (req, body) may return:
 *   undefined: forward as is;
 *   "lose": forward, let the server answer, then cut the client's
 *     connection without an answer (a lost response);
 *   "hang": forward, let the server answer, then never answer the client
 *     (a response stuck on the way, until the proxy stops);
 *   "truncate": forward, let the server answer, send the client the
 *     status, the headers and half the body, then cut the connection;
 *   { status, headers, body }: answer this instead, without forwarding.
 */
export async function startProxy({ port, target }) {
  port ??= await freePort();
  const log = [];
  let hook = () => undefined;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const entry = { method: req.method, path: req.url, headers: req.headers, body: body.toString("utf8"), status: 0 };
      log.push(entry);
      const action = hook(entry);
      if (action && typeof action === "object") {
        entry.status = action.status;
        res.writeHead(action.status, action.headers ?? {});
        res.end(action.body ?? "");
        return;
      }
      try {
        const headers = { ...req.headers };
        delete headers.host;
        delete headers.connection;
        const up = await fetch(target + req.url, { method: req.method, headers, body: body.length ? body : undefined, redirect: "manual", signal: AbortSignal.timeout(15_000) });
        const buf = Buffer.from(await up.arrayBuffer());
        entry.status = up.status;
        if (action === "lose") {
          entry.lost = true;
          req.socket.destroy();
          return;
        }
        if (action === "hang") {
          entry.lost = true;
          return;
        }
        const out = {};
        up.headers.forEach((v, k) => {
          if (k !== "content-encoding" && k !== "transfer-encoding" && k !== "connection" && k !== "content-length") out[k] = v;
        });
        if (action === "truncate") {
          entry.lost = true;
          res.writeHead(up.status, { ...out, "content-length": String(buf.length) });
          res.write(buf.subarray(0, buf.length >> 1), () => setTimeout(() => req.socket.destroy(), 50));
          return;
        }
        res.writeHead(up.status, out);
        res.end(buf);
      } catch (err) {
        entry.status = 599;
        req.socket.destroy();
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    setHook(fn) {
      hook = fn ?? (() => undefined);
    },
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** issuerBehindProxy starts a proxy and a server whose public URL is the proxy's. */
export async function issuerBehindProxy(args = []) {
  const port = await freePort();
  const server = await startServer({ args, publicPort: port });
  const proxy = await startProxy({ port, target: server.url });
  return { server, proxy, url: proxy.url, stop: async () => { await proxy.stop(); await server.stop(); } };
}

/** requireBinary fails (never skips) when a tool the tests need is missing. */
export function requireFile(path, what) {
  if (!existsSync(path)) throw new Error(`${what} not found at ${path}: ${fix}`);
}

const chromiumPath = "/usr/bin/chromium";

/**
 * launchChromium starts Debian's Chromium (/usr/bin/chromium) headless,
 * driven by playwright-core. A missing browser or playwright-core fails the
 * test with how to install it, never skips it.
 */
export async function launchChromium() {
  if (!existsSync(chromiumPath)) throw new Error(`chromium not found at ${chromiumPath}: ${fix} (scripts/ensure-chromium.sh installs Debian's chromium)`);
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch {
    throw new Error(`playwright-core is not installed in clients/js/node_modules: run \`npm ci\` in clients/js (make test does)`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    timeout: 30_000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

let n = 0;
/** A username no other test uses. */
export function uniqueName(prefix = "u") {
  n++;
  return `${prefix}${process.pid % 10000}x${Date.now() % 1000000}x${n}`;
}

/**
 * failingStorage wraps the storage inner (a MemoryStorage, say) in one
 * whose saves fail with "disk full" while setFail(true) (from the start
 * with failing).
 */
export function failingStorage(inner, failing = false) {
  let fail = failing;
  const storage = {
    load: () => inner.load(),
    save: async (r) => {
      if (fail) throw new Error("disk full");
      await inner.save(r);
    },
    deviceKey: (create) => inner.deviceKey(create),
    deleteDeviceKey: () => inner.deleteDeviceKey(),
  };
  return { inner, storage, setFail: (v) => { fail = v; } };
}
