// Serves the demo page (examples/web/) and the browser bundle
// (clients/js/dist/) over http on loopback: `npm run demo` builds dist/ and
// runs this. Only those two folders are served.
//   node scripts/serve-demo.mjs [--port 8000] [--host 127.0.0.1]
import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const roots = [join(repo, "examples", "web"), join(repo, "clients", "js", "dist")];
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".map": "application/json" };

/** startDemoServer serves the demo on host:port (port 0: a free one) and returns { url, close }. */
export function startDemoServer({ host = "127.0.0.1", port = 8000 } = {}) {
  const server = http.createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end("bad request\n");
      return;
    }
    if (path === "/") {
      res.writeHead(302, { location: "/examples/web/" });
      res.end();
      return;
    }
    const file = normalize(join(repo, path.endsWith("/") ? path + "index.html" : path));
    let ok = false;
    try {
      ok = roots.some((r) => file.startsWith(r + sep)) && statSync(file).isFile();
    } catch {
      ok = false;
    }
    if (!ok || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-store", "x-content-type-options": "nosniff" });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve({
        url: `http://${host}:${a.port}`,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : def;
  };
  const { url } = await startDemoServer({ host: arg("--host", "127.0.0.1"), port: Number(arg("--port", "8000")) });
  console.log(`demo: ${url}/examples/web/  (issuer: ?server=URL, default http://127.0.0.1:8080; Ctrl-C stops)`);
}
