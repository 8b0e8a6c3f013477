// Bundles the server, the tools, the browser pages and the packaged SDK with
// esbuild (~0.3 s), so `npm start` can always build first. Type checking is
// `npm run typecheck`. `--types` also writes the package's declarations
// (dist/types, tsc), which `npm pack` needs (the prepack script).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

// esbuild is a devDependency: a deploy installed with --omit=dev runs the dist/ it shipped with.
let build;
try {
  ({ build } = await import("esbuild"));
} catch {
  if (!existsSync("dist/server/main.js")) {
    console.error("build: esbuild is not installed and dist/ is not built; run `npm install` (with dev dependencies) first");
    process.exit(1);
  }
  console.error("build: esbuild is not installed (npm install --omit=dev?); using the dist/ already built");
  process.exit(0);
}

const nodeEntries = {
  "server/main": "server/main.ts",
  // `import ... from "gatehouse"` (package.json exports)
  "server/index": "server/index.ts",
  "scripts/cluster": "scripts/cluster.ts",
  "scripts/bots": "scripts/bots.ts",
  "scripts/soak": "scripts/soak.ts",
  "bench/run": "bench/run.ts",
  "bench/plain-io": "bench/baseline/plain-io.ts",
  "bench/naive-http": "bench/baseline/naive-http.ts",
  "bench/gc-probe": "bench/baseline/gc-probe.ts",
  "bench/pinger": "bench/innocent/pinger.ts",
  "bench/feed-fanout": "bench/feed-fanout.ts",
  "bench/feed-subscriber": "bench/feed/subscriber.ts",
};
const browserEntries = {
  "public/game": "client/pages/game.ts",
  "public/admin": "client/pages/admin.ts",
  "public/tictactoe": "client/pages/tictactoe.ts",
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
/**
 * `gatehouse/client`: the SDK as one ESM file for Node and bundlers alike. Its
 * dependencies stay imports (socket.io-client), so Node loads socket.io-client's
 * own Node build and a bundler picks its browser build: bundling that Node build
 * (debug, ws, xmlhttprequest-ssl: CommonJS requiring fs, tty, http) into ESM is
 * what fails with `Dynamic require of "fs"`. zod gets the same stand-in as the
 * pages: the SDK only reads constants from shared/protocol.ts.
 */
await build({
  entryPoints: { "client/index": "client/sdk/index.ts" },
  outdir: "dist",
  bundle: true,
  platform: "neutral",
  format: "esm",
  target: "es2022",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
  plugins: [zodStandIn],
});

if (process.argv.includes("--types")) emitDeclarations();

/**
 * dist/types: tsc declarations of the two package entries (--noCheck: typecheck
 * is its own step, and this keeps `npm pack` fast). Relative specifiers get their
 * `.js`, so the types resolve under moduleResolution node16/nodenext too.
 */
function emitDeclarations() {
  rmSync("dist/types", { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.types.json", "--noCheck"], { stdio: "inherit" });
  for (const file of walk("dist/types")) {
    const dir = path.dirname(file);
    const text = readFileSync(file, "utf8").replace(/((?:from|import\()\s*")(\.{1,2}\/[^"]*)"/g, (all, head, spec) => {
      if (existsSync(path.join(dir, `${spec}.d.ts`))) return `${head}${spec}.js"`;
      if (existsSync(path.join(dir, spec, "index.d.ts"))) return `${head}${spec}/index.js"`;
      return all;
    });
    writeFileSync(file, text);
  }
}

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith(".d.ts")) yield p;
  }
}

mkdirSync("dist/public", { recursive: true });
if (existsSync("client/pages/static")) cpSync("client/pages/static", "dist/public", { recursive: true });
