/**
 * The package as a user gets it: `npm pack` (its prepack builds dist/ and the
 * declarations) from a copy of the sources, installed into an empty project,
 * then the docs' example (examples/client-node/demo.mjs) run there with plain
 * `node` against a real node, kicked through the admin API.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminLogin, call } from "../helpers/http";
import { spawnLines } from "../helpers/child";
import { startNode, type TestNode } from "../helpers/node";

const run = promisify(execFile);
const ROOT = process.cwd();
const DEMO = "examples/client-node/demo.mjs";
/** What `npm pack` needs to build: sources, configs, docs (no dist/, no tests). */
const SOURCES = ["package.json", "README.md", "tsconfig.json", "tsconfig.types.json", "scripts", "server", "client", "shared", "docs", "examples"];
/** npm's own variables from an enclosing `npm test` would steer the nested npm calls. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));

describe("npm package", () => {
  let node: TestNode;
  let dir: string;
  let app: string;
  let packed: { files: { path: string }[] };

  /** Copies the sources, packs them and installs the tarball into an empty project. */
  async function packAndInstall(): Promise<void> {
    const src = path.join(dir, "src");
    for (const f of SOURCES) cpSync(path.join(ROOT, f), path.join(src, f), { recursive: true });
    symlinkSync(realpathSync(path.join(ROOT, "node_modules")), path.join(src, "node_modules"), "dir");
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: src, env });
    packed = (JSON.parse(stdout) as { files: { path: string }[]; filename: string }[])[0]!;
    mkdirSync(app);
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "empty", private: true, type: "module" }));
    const tgz = path.join(dir, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tgz], { cwd: app, env });
    cpSync(path.join(ROOT, DEMO), path.join(app, "demo.mjs"));
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "gatehouse-pkg-"));
    app = path.join(dir, "app");
    [node] = await Promise.all([startNode(), packAndInstall()]);
  }, 240_000);
  afterAll(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("ships built JS, declarations and docs, and installs only the runtime dependencies", () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["dist/client/index.js", "dist/server/index.js", "dist/types/client/sdk/index.d.ts", "dist/types/server/index.d.ts", "docs/client.md", DEMO]));
    expect(files.filter((f) => /^test\/|\.map$|(?<!\.d)\.ts$/.test(f))).toEqual([]);
    const installed = (name: string) => existsSync(path.join(app, "node_modules", name, "package.json"));
    expect(["socket.io-client", "express", "socket.io", "ioredis", "zod"].filter((n) => !installed(n))).toEqual([]);
    expect(["esbuild", "typescript", "vitest", "playwright-core", "@types/express"].filter(installed)).toEqual([]);
  });

  it("gatehouse/client bundles for the browser with no Node-only import, and without zod", async () => {
    // platform "browser" refuses to resolve a Node built-in (fs, tty, http...) anywhere in the graph.
    const out = await build({
      stdin: { contents: 'export { GatehouseClient } from "gatehouse/client";', resolveDir: app },
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(out.metafile.inputs);
    // metafile paths are relative to the cwd (this repo), so match on the tail
    expect(inputs.some((i) => i.endsWith("node_modules/gatehouse/dist/client/index.js"))).toBe(true);
    expect(inputs.filter((i) => /node_modules\/(zod|ws|debug|xmlhttprequest-ssl)\//.test(i))).toEqual([]);
  });

  it("gatehouse exports the server library (createApp, loadConfig)", async () => {
    const script = 'import { createApp, loadConfig } from "gatehouse"; console.log(typeof createApp, loadConfig({ PORT: "0" }).port);';
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: app, env });
    expect(stdout.trim()).toBe("function 0");
  });

  it("the docs' demo plays as a guest, joins a room and prints revoked: kicked when an admin kicks it", async () => {
    const demo = spawnLines(process.execPath, ["demo.mjs", node.url], { cwd: app, env });
    try {
      const [, userId] = await demo.line(/^signed in as \S+ \((.+)\)$/);
      await demo.line(/^joined lobby /);
      const admin = await adminLogin(node.url);
      const kick = await call(node.url, "POST", `/admin/users/${userId}/kick`, { token: admin.accessToken, body: {} });
      expect(kick.status).toBe(202);
      // It exits by itself: the SDK stopped its socket and timers.
      expect(await demo.exited).toBe(0);
      expect(demo.lines).toContainEqual(expect.stringMatching(/^revoked: kicked \(.+\)$/));
    } finally {
      demo.proc.kill();
    }
  });

  it("docs/client.md shows that exact script and the command that runs it", () => {
    const doc = readFileSync(path.join(ROOT, "docs/client.md"), "utf8");
    expect(doc).toContain("```js\n" + readFileSync(path.join(ROOT, DEMO), "utf8") + "```");
    expect(doc).toContain("node demo.mjs http://127.0.0.1:3000");
  });
});
