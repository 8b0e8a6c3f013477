// Bundles the server, the tools and the browser pages with esbuild (~0.3 s), so
// `npm start` can always build first. Type checking is `npm run typecheck`.
import { build } from "esbuild";
import { existsSync, mkdirSync, cpSync } from "node:fs";

const nodeEntries = {
  "server/main": "server/main.ts",
  "scripts/cluster": "scripts/cluster.ts",
  "scripts/bots": "scripts/bots.ts",
  "scripts/soak": "scripts/soak.ts",
  "bench/run": "bench/run.ts",
  "bench/plain-io": "bench/baseline/plain-io.ts",
  "bench/naive-http": "bench/baseline/naive-http.ts",
  "bench/gc-probe": "bench/baseline/gc-probe.ts",
};
const browserEntries = {
  "public/game": "client/pages/game.ts",
  "public/admin": "client/pages/admin.ts",
};
/**
 * The pages import shared/protocol.ts for its constants and types only; its zod
 * schemas are for the server. Bundling zod would add ~450 KB to each page, so
 * browser bundles get an inert stand-in whose parse calls throw (loudly, should
 * a page ever try to validate with it).
 */
const zodStandIn = {
  name: "zod-stand-in",
  setup(b) {
    b.onResolve({ filter: /^zod(\/.*)?$/ }, (args) => ({ path: args.path, namespace: "zod-stand-in" }));
    b.onLoad({ filter: /.*/, namespace: "zod-stand-in" }, () => ({
      loader: "js",
      contents: `
        const refuse = () => { throw new Error("zod is not bundled into the browser pages: validate on the server"); };
        const PARSE = new Set(["parse", "safeParse", "parseAsync", "safeParseAsync", "decode", "encode"]);
        const stub = new Proxy(function () {}, {
          get: (_t, key) => (typeof key !== "string" || key === "then" ? undefined : PARSE.has(key) ? refuse : stub),
          apply: () => stub,
        });
        export const z = stub;
        export default stub;`,
    }));
  },
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
    plugins: [zodStandIn],
  });
}
mkdirSync("dist/public", { recursive: true });
if (existsSync("client/pages/static")) cpSync("client/pages/static", "dist/public", { recursive: true });
