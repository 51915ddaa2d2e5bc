// Runs the Node snippets of README.md (the ```js blocks that import
// @hallpass/client) against a real issuer, as a reader would paste them:
// only the issuer URL is replaced.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { jsRoot, startServer } from "./harness.mjs";

const readme = readFileSync(join(jsRoot, "README.md"), "utf8");
const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]).filter((b) => /from "@hallpass\/client(\/node)?"/.test(b));
// Inside the package, so that "@hallpass/client" resolves to this package (self-reference).
const dir = join(jsRoot, "test", ".readme-snippets");

let server;
before(async () => {
  server = await startServer();
  mkdirSync(dir, { recursive: true });
}, { timeout: 300_000 });
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

test("README.md has runnable snippets", () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length}`);
});

blocks.forEach((code, i) => {
  test(`README.md snippet ${i + 1}: ${code.split("\n").find((l) => l && !l.startsWith("import"))?.slice(0, 60)}`, { timeout: 90_000 }, async () => {
    const file = join(dir, `snippet-${i + 1}.mjs`);
    writeFileSync(file, code.replaceAll("http://127.0.0.1:8080", server.url));
    try {
      await promisify(execFile)(process.execPath, [file], { cwd: dir, timeout: 60_000 });
    } catch (err) {
      assert.fail(`snippet ${i + 1} failed:\n${err.stderr || err.message}`);
    }
  });
});
