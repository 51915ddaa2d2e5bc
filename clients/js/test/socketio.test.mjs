// client.socketAuth against the real socket.io server of
// socketio/example (socketauth), with the real npm socket.io-client that
// `make test-deps` installs for that example: the htu rule of both sides
// agree, a fresh proof per connection attempt, and another device's token
// is refused.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { MemoryStorage, createClient } from "../dist/index.js";
import { freePort, repoRoot, startServer, tempDir, uniqueName } from "./harness.mjs";

const clientDir = join(repoRoot, "socketio", "example", "testdata");
let issuer;
let chat; // { url, stop }
let io;

before(async () => {
  if (!existsSync(join(clientDir, "node_modules", "socket.io-client"))) {
    throw new Error("socket.io-client is not installed in socketio/example/testdata: run `make test-deps` at the repository root");
  }
  ({ io } = createRequire(join(clientDir, "package.json"))("socket.io-client"));
  issuer = await startServer();
  const dir = tempDir();
  const bin = join(dir, "socketio-example");
  await promisify(execFile)(process.env.GO || "go", ["-C", join(repoRoot, "socketio"), "build", "-o", bin, "./example"], { timeout: 300_000, maxBuffer: 16 << 20 });
  const keys = join(dir, "keys.json");
  writeFileSync(keys, await (await fetch(issuer.url + "/.well-known/hallpass/keys")).text());
  const port = await freePort();
  const child = spawn(bin, ["--issuer", issuer.url, "--audience", issuer.url, "--keys-file", keys, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (b) => (log += b));
  const exited = new Promise((r) => child.on("exit", r));
  process.on("exit", () => child.kill("SIGKILL"));
  const url = `http://127.0.0.1:${port}`;
  for (let deadline = Date.now() + 20_000; ; ) {
    try {
      await fetch(url + "/socket.io/?EIO=4&transport=polling", { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`socket.io example not up in 20 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
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
    const socket = io(chat.url, { transports: ["polling", "websocket"], reconnection: false, auth, timeout: 10_000 });
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
