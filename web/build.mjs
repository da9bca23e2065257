// Bundles the web console: src/app.ts -> dist/app.js (and src/console.ts -> dist/console.js
// when present), then copies public/* to dist/. Run by scripts/setup.sh; nothing is fetched.
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const entryPoints = ["app", "console"]
  .map((name) => join(here, "src", `${name}.ts`))
  .filter((path) => existsSync(path));

await build({
  entryPoints,
  outdir: dist,
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: process.env.PYVIRT_WEB_DEBUG ? false : true,
  sourcemap: process.env.PYVIRT_WEB_DEBUG ? "inline" : false,
  legalComments: "linked",
  loader: { ".css": "css" },
  logLevel: "warning",
});
cpSync(join(here, "public"), dist, { recursive: true });
console.log(`web: built ${entryPoints.length} bundle(s) into ${dist}`);
