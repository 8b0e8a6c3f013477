/**
 * The tic-tac-toe page in Chromium: a guest finds a game, is matched with a
 * scripted opponent (the SDK), plays to a win by clicking, and sees the
 * revoked banner when signed out elsewhere. Served under the strict CSP.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatehouseClient } from "../../client/sdk";
import { PAGE_CSP } from "../../server/http/routes-pages";
import type { TicTacToeState } from "../../shared/protocol";
import { launchBrowser, openPage, screenshot, type TrackedPage } from "../helpers/browser";
import { call } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";

describe("tic-tac-toe page", () => {
  let node: TestNode;
  let browser: Browser;
  let tab: TrackedPage | undefined;
  const bot = () => new GatehouseClient({ baseUrl: node.url });
  let opponent: GatehouseClient | undefined;

  beforeAll(async () => {
    [node, browser] = await Promise.all([startNode(), launchBrowser()]);
  });
  afterAll(async () => {
    opponent?.close();
    await tab?.context.close();
    await browser?.close();
    await node?.close();
  });

  it("is served with the strict CSP, and the arena links to it", async () => {
    const r = await fetch(`${node.url}/tictactoe`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-security-policy")).toBe(PAGE_CSP);
    expect(await r.text()).not.toMatch(/<script>|<style>|style="/);
    // A new player finds it from the arena (it is not on the first screen otherwise).
    expect(await (await fetch(`${node.url}/`)).text()).toContain('href="/tictactoe"');
  });

  it("a guest is matched with another player, plays to a win by clicking, then is signed out with a reason", async () => {
    tab = await openPage(browser, `${node.url}/tictactoe`);
    const { page } = tab;
    await page.getByTestId("guest-button").click();
    await expect.poll(() => page.getByTestId("ttt-status").textContent()).toContain("Connected");
    await page.getByTestId("find-game").click();
    await expect.poll(() => page.getByTestId("ttt-status").textContent()).toContain("Waiting");

    opponent = bot();
    await opponent.guest();
    const socket = await opponent.connect();
    let last: TicTacToeState | undefined;
    socket.on("ttt:state", (st) => (last = st));
    await opponent.queueTicTacToe();
    await expect.poll(() => page.getByTestId("ttt-status").textContent()).toContain("Your turn (X)");

    // X (the page) takes the top row; O (the bot) answers in the middle row.
    for (const [mine, theirs] of [[0, 3], [1, 4]] as const) {
      await page.getByTestId(`cell-${mine}`).click();
      await expect.poll(() => last?.board[mine]).toBe("X");
      await opponent.playTicTacToe(theirs);
      await expect.poll(() => page.getByTestId(`cell-${theirs}`).textContent()).toBe("O");
    }
    expect(await page.getByTestId("cell-3").isDisabled()).toBe(true); // taken
    await page.getByTestId("cell-2").click();
    await expect.poll(() => page.getByTestId("ttt-status").textContent()).toBe("You win!");
    expect(last?.result).toEqual({ winner: "X", reason: "line", line: [0, 1, 2] });
    await screenshot(page, "tictactoe-won");

    // Signed out everywhere from another device: the page says why.
    const pair = await page.evaluate(() => JSON.parse(sessionStorage.getItem("gatehouse.tictactoe") ?? "{}") as { accessToken: string });
    await call(node.url, "POST", "/auth/logout-all", { token: pair.accessToken });
    await page.getByTestId("revoked-banner").waitFor();
    expect(await page.getByTestId("revoked-text").textContent()).toContain("signed out everywhere");
    expect(tab.errors).toEqual([]);
  });
});
