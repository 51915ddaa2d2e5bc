// Builds dist/: tsc compiles src/ to one ES module per file with .d.ts
// (dist/index.js, dist/node.js, ...), and esbuild bundles the browser entry
// into dist/hallpass.js: one file, no imports at all, for a <script
// type="module"> or an import from a static page.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")], { stdio: "inherit" });
await build({
  entryPoints: [join(root, "src", "index.ts")],
  outfile: join(root, "dist", "hallpass.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  legalComments: "none",
  banner: { js: "// @hallpass/client browser bundle (clients/js). Built by `npm run build`; do not edit." },
  logLevel: "warning",
});
