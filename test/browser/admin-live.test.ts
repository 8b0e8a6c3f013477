/**
 * The dashboard's online list in Chromium on a 2-node cluster: pushed over the admin's own socket
 * (`admin:watch`), never polled. A player connecting on the other node appears, and leaving
 * disappears, while the page sends no GET /admin/players at all.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatehouseClient } from "../../client/sdk";
import { launchBrowser, openPage, screenshot, type TrackedPage } from "../helpers/browser";
import { startCluster, type LocalCluster } from "../helpers/cluster";

describe("admin dashboard live list (2 nodes)", () => {
  let cluster: LocalCluster;
  let browser: Browser;
  let admin: TrackedPage | undefined;
  let player: GatehouseClient | undefined;

  beforeAll(async () => {
    [cluster, browser] = await Promise.all([startCluster(2), launchBrowser()]);
  });
  afterAll(async () => {
    player?.close();
    await admin?.context.close();
    await browser?.close();
    await cluster?.stop();
  });

  it("shows a player who connects on the other node, and their leaving, with no GET /admin/players", async () => {
    const [home, other] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    admin = await openPage(browser, `${home.url}/admin`);
    const a = admin.page;
    const adminRequests: string[] = [];
    a.on("request", (r) => {
      const path = new URL(r.url()).pathname;
      if (path.startsWith("/admin/")) adminRequests.push(`${r.method()} ${path}`);
    });
    await a.getByTestId("admin-username").fill(cluster.admin.username);
    await a.getByTestId("admin-password").fill(cluster.admin.password);
    await a.getByTestId("admin-login-button").click();
    await a.getByTestId("dashboard").waitFor();
    // The first push: the admin's own dashboard connection, on its node.
    const own = a.locator(`[data-testid="player-row"][data-username="${cluster.admin.username}"]`);
    await own.waitFor({ timeout: 5000 });
    await expect(own.getByTestId("admin-session").getAttribute("data-node-id")).resolves.toBe(home.nodeId);

    player = new GatehouseClient({ baseUrl: other.url, device: "script" });
    const { user } = await player.guest();
    await player.connect();
    const row = a.locator(`[data-testid="player-row"][data-user-id="${user.id}"]`);
    await row.waitFor({ timeout: 5000 });
    await expect(row.getByTestId("admin-session").getAttribute("data-node-id")).resolves.toBe(other.nodeId);
    await expect(a.getByTestId("online-count").textContent()).resolves.toBe("(2 players, 2 connections)");
    await screenshot(a, "admin-live-list");

    player.close();
    await row.waitFor({ state: "detached", timeout: 5000 });
    // The audit log is still refreshed over HTTP; the online list never is.
    expect(adminRequests.some((r) => r === "GET /admin/audit")).toBe(true);
    expect(adminRequests.filter((r) => r === "GET /admin/players")).toEqual([]);
    expect(admin.errors).toEqual([]);
  });
});
