// client.socketAuth against the real socket.io server of
// socketio/example (socketauth), with the real npm socket.io-client that
// `make test-deps` installs for that example: the htu rule of both sides
// agree, a fresh proof per connection attempt, and another device's token
// is refused. The example serves wss:// and https:// with a certificate
// from a CA made here (openssl), which the client trusts through its ca
// option, and follows the issuer's key set from --issuer (remote keys).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { MemoryStorage, createClient } from "../dist/index.js";
import { freePort, repoRoot, startServer, tempDir, uniqueName } from "./harness.mjs";

const clientDir = join(repoRoot, "socketio", "example", "testdata");
let issuer;
let chat; // { url, stop }
let io;
let ca; // the test CA's PEM, the only one the socket.io client trusts

/**
 * makePKI makes a CA and a server certificate for 127.0.0.1 with the
 * openssl command (in the base image), and returns the PEM file paths.
 */
function makePKI(dir) {
  const p = { ca: join(dir, "ca.pem"), caKey: join(dir, "ca.key"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"];
  const run = (args) => {
    const r = spawnSync("openssl", args, { encoding: "utf8" });
    if (r.error?.code === "ENOENT") throw new Error("openssl is not installed (the test makes its certificate authority with it)");
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  run(["req", "-x509", "-new", ...ec, "-keyout", p.caKey, "-out", p.ca, "-subj", "/CN=hallpass socket.io test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
  run(["req", "-x509", "-new", ...ec, "-keyout", p.key, "-out", p.cert, "-subj", "/CN=127.0.0.1", "-CA", p.ca, "-CAkey", p.caKey,
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"]);
  return p;
}

before(async () => {
  if (!existsSync(join(clientDir, "node_modules", "socket.io-client"))) {
    throw new Error("socket.io-client is not installed in socketio/example/testdata: run `make test-deps` at the repository root");
  }
  ({ io } = createRequire(join(clientDir, "package.json"))("socket.io-client"));
  issuer = await startServer();
  const dir = tempDir();
  const bin = join(dir, "socketio-example");
  await promisify(execFile)(process.env.GO || "go", ["-C", join(repoRoot, "socketio"), "build", "-o", bin, "./example"], { timeout: 300_000, maxBuffer: 16 << 20 });
  const pki = makePKI(dir);
  const port = await freePort();
  const child = spawn(bin, ["--issuer", issuer.url, "--audience", issuer.url, "--listen", `127.0.0.1:${port}`,
    "--tls-cert", pki.cert, "--tls-key", pki.key, "--metrics-listen", "off"], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const exited = new Promise((r) => child.on("exit", r));
  process.on("exit", () => child.kill("SIGKILL"));
  // Up once it logs that it listens (JSON lines), with its htu.
  const htu = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket.io example not up in 20 s:\n${log}`)), 20_000);
    child.stderr.on("data", (b) => {
      log += b;
      for (const line of log.split("\n")) {
        try {
          const rec = JSON.parse(line);
          if (rec.msg === "socket.io server listening") {
            clearTimeout(timer);
            resolve(rec.htu);
          }
        } catch {}
      }
    });
    exited.then((code) => reject(new Error(`socket.io example exited (${code}):\n${log}`)));
  });
  const url = `https://127.0.0.1:${port}`;
  assert.equal(htu, url + "/socket.io/");
  ca = readFileSync(pki.ca);
  chat = {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      child.kill("SIGKILL");
    },
  };
}, { timeout: 300_000 });

after(async () => {
  await chat?.stop();
  await issuer?.stop();
});

/** connect opens one socket and resolves with its first outcome. */
function connect(auth) {
  return new Promise((resolve) => {
    const socket = io(chat.url, { transports: ["polling", "websocket"], reconnection: false, auth, timeout: 10_000, ca });
    const done = (v) => {
      socket.close();
      resolve(v);
    };
    socket.on("connect", () => socket.emit("whoami", (claims) => done({ connected: true, claims })));
    socket.on("connect_error", (err) => done({ connected: false, message: err.message }));
  });
}

test("socketAuth: socketauth accepts the handshake; every attempt has a fresh proof; a proof for another key is refused", { timeout: 60_000 }, async () => {
  const client = await createClient({ server: issuer.url, storage: new MemoryStorage(), origins: [chat.url] });
  const s = await client.signup({ username: uniqueName("chat") });
  let calls = 0;
  const auth = (cb) => {
    calls++;
    client.socketAuth(chat.url).then(cb, () => cb({}));
  };
  const first = await connect(auth);
  assert.deepEqual(first, { connected: true, claims: { account: s.accountId, device: s.deviceId, expires: first.claims?.expires } });
  const second = await connect(auth);
  assert.equal(second.connected, true, "a second connection gets a fresh proof");
  assert.equal(calls, 2);

  // The same payload twice: the proof is single use.
  const once = await client.socketAuth(chat.url);
  assert.equal((await connect(once)).connected, true);
  assert.deepEqual(await connect(once), { connected: false, message: "invalid_dpop_proof" });

  // This token with another device's proof.
  const other = await createClient({ server: issuer.url, storage: new MemoryStorage(), origins: [chat.url] });
  await other.signup({ username: uniqueName("chat") });
  const mine = await client.socketAuth(chat.url);
  const theirs = await other.socketAuth(chat.url);
  assert.deepEqual(await connect({ token: mine.token, proof: theirs.proof }), { connected: false, message: "invalid_dpop_proof" });
  client.close();
  other.close();
});

test("socketAuth over wss: a client that does not trust the test CA is refused before any handshake", { timeout: 30_000 }, async () => {
  const client = await createClient({ server: issuer.url, storage: new MemoryStorage(), origins: [chat.url] });
  await client.signup({ username: uniqueName("chat") });
  const auth = await client.socketAuth(chat.url);
  for (const transports of [["websocket"], ["polling"]]) {
    const outcome = await new Promise((resolve) => {
      const socket = io(chat.url, { transports, reconnection: false, auth, timeout: 10_000 }); // no ca
      const done = (v) => {
        socket.close();
        resolve(v);
      };
      socket.on("connect", () => done({ connected: true }));
      socket.on("connect_error", (err) => done({ connected: false, message: err.message }));
    });
    assert.equal(outcome.connected, false, `${transports}: connected without trusting the CA`);
    assert.doesNotMatch(outcome.message, /_/, `${transports}: the server answered (${outcome.message}); want a TLS failure`);
  }
  // The same payload with the CA: the proof was never spent.
  assert.equal((await connect(auth)).connected, true);
  client.close();
});
