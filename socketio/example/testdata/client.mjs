// A socket.io client for the hallpass example server, driven by the Go test
// (socketio/example/socketio_test.go). It only does the transport: the
// access token and the DPoP proof are minted by the test, in Go, and come in
// through the environment. Each thing the client sees is printed to stdout as
// one JSON line; the test reads them as they come.
//
//   HP_URL        server origin, e.g. http://127.0.0.1:8443
//   HP_PATH       socket.io path, default /socket.io/
//   HP_TOKEN      access token (auth.token)
//   HP_PROOF      DPoP proof for GET <HP_URL><HP_PATH> (auth.proof)
//   HP_TRANSPORTS comma-separated, default "polling,websocket"
//   HP_TIMEOUT_MS give up after this long, default 15000
//
// It exits 0 after a connect_error or a disconnect, and 2 on its own timeout.
// When its stdin ends (the test is done with it) it leaves as a real client
// does: it closes the socket, which tells the server, and exits once the
// close is sent.
import { io } from "socket.io-client";

const env = process.env;
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const socket = io(env.HP_URL, {
  path: env.HP_PATH || "/socket.io/",
  transports: (env.HP_TRANSPORTS || "polling,websocket").split(","),
  // One attempt: a proof is single-use, so a retry with the same auth would
  // be refused as a replay. A real client passes auth as a callback that
  // makes a fresh proof for every attempt.
  reconnection: false,
  auth: { token: env.HP_TOKEN || "", proof: env.HP_PROOF || "" },
});

const timer = setTimeout(() => {
  out({ event: "timeout" });
  socket.close();
  process.exit(2);
}, Number(env.HP_TIMEOUT_MS || 15000));

socket.on("connect", () => {
  out({ event: "connect", transport: socket.io.engine.transport.name });
  socket.emit("whoami", (claims) => out({ event: "whoami", data: claims }));
});

socket.on("connect_error", (err) => {
  out({ event: "connect_error", message: err.message, data: err.data ?? null });
  finish();
});

socket.on("hallpass:disconnect", (data) => out({ event: "hallpass:disconnect", data }));

socket.on("disconnect", (reason) => {
  out({ event: "disconnect", reason });
  finish();
});

process.stdin.on("end", () => {
  clearTimeout(timer);
  socket.close(); // nothing else keeps node alive: it exits when this is sent
});
process.stdin.resume();

function finish() {
  clearTimeout(timer);
  socket.close();
  // Let stdout drain before leaving.
  setImmediate(() => process.exit(0));
}
