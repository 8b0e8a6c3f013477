/**
 * `npm run bots` cleans up after itself: Ctrl-C logs its guests out (their
 * sessions are gone from the store, not just disconnected), and --accounts
 * plays as the same accounts run after run, resuming their sessions instead
 * of creating guests or logging in. The built script (dist/, from the global
 * setup) runs as a child process against a real in-process node.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OnlinePlayer } from "../../shared/protocol";
import { spawnLines } from "../helpers/child";
import { adminLogin, call } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { waitFor } from "../helpers/wait";

describe("npm run bots", () => {
  let node: TestNode;
  let adminToken: string;
  let dir: string;

  beforeAll(async () => {
    node = await startNode();
    adminToken = (await adminLogin(node.url)).accessToken;
    dir = mkdtempSync(path.join(tmpdir(), "gatehouse-bots-"));
  });
  afterAll(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the bots until `count` of them are online (admin view), then Ctrl-C; returns who was online and the output. */
  async function runUntilOnline(count: number, extra: string[] = []) {
    const args = ["dist/scripts/bots.js", "--url", node.url, "--count", String(count), "--rooms", "1", "--chat", "0", ...extra];
    const bots = spawnLines(process.execPath, args, { cwd: process.cwd() });
    try {
      // Presence is only visible through the admin view: poll it.
      const online = await waitFor(
        async () => {
          const players = (await call<OnlinePlayer[]>(node.url, "GET", "/admin/players", { token: adminToken })).body;
          const mine = players.filter((p) => p.sessions.some((s) => s.nodeId === node.app.config.nodeId) && p.username !== "admin");
          return mine.length === count ? mine : null;
        },
        { timeoutMs: 15_000, intervalMs: 100, message: `${count} bots online` },
      );
      bots.proc.kill("SIGINT");
      expect(await bots.exited, bots.lines.join("\n")).toBe(0);
      return { online, lines: bots.lines };
    } finally {
      bots.proc.kill("SIGKILL");
    }
  }

  const sessionIds = (players: OnlinePlayer[]) => players.flatMap((p) => p.sessions.map((s) => s.sessionId)).sort();

  it("Ctrl-C logs every guest out: their sessions are revoked, not just disconnected", async () => {
    const { online, lines } = await runUntilOnline(3);
    expect(online.every((p) => p.username.startsWith("guest-"))).toBe(true);
    expect(lines).toContain("signed out 3 guest(s)");
    const left = await Promise.all(sessionIds(online).map((sid) => node.app.store.getSession(sid)));
    expect(left).toEqual([null, null, null]);
  });

  it("--accounts plays as the same accounts on the next run and resumes their sessions (no guests, no logins)", async () => {
    const file = path.join(dir, "bots.json");
    const first = await runUntilOnline(2, ["--accounts", file]);
    expect(first.online.some((p) => p.username.startsWith("guest-"))).toBe(false);
    const saved = JSON.parse(readFileSync(file, "utf8")) as { accounts: { username: string; pair?: { sessionId: string } }[] };
    expect(saved.accounts.map((a) => a.username).sort()).toEqual(first.online.map((p) => p.username).sort());

    const second = await runUntilOnline(2, ["--accounts", file]);
    expect(second.online.map((p) => p.username).sort()).toEqual(first.online.map((p) => p.username).sort());
    // The same sessions, refreshed: no new login happened.
    expect(sessionIds(second.online)).toEqual(sessionIds(first.online));
    expect(second.lines).toContain(`kept 2 account session(s) in ${file}`);
  });
});
