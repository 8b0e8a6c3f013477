// Bundles the server, the tools and the browser pages with esbuild (~0.3 s), so
// `npm start` can always build first. Type checking is `npm run typecheck`.
import { build } from "esbuild";
import { existsSync, mkdirSync, cpSync } from "node:fs";

const nodeEntries = {
  "server/main": "server/main.ts",
  "scripts/cluster": "scripts/cluster.ts",
  "scripts/bots": "scripts/bots.ts",
  "bench/run": "bench/run.ts",
};
const browserEntries = {
  "public/game": "client/pages/game.ts",
  "public/admin": "client/pages/admin.ts",
};
const pick = (entries) => Object.fromEntries(Object.entries(entries).filter(([, src]) => existsSync(src)));

await build({
  entryPoints: pick(nodeEntries),
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
});

const pages = pick(browserEntries);
if (Object.keys(pages).length > 0) {
  await build({
    entryPoints: pages,
    outdir: "dist",
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
  });
}
mkdirSync("dist/public", { recursive: true });
if (existsSync("client/pages/static")) cpSync("client/pages/static", "dist/public", { recursive: true });
