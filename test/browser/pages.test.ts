/**
 * The pages in Chromium against an in-process node: a guest plays and sees a
 * scripted player move; an admin kicks the guest from /admin and the guest's
 * page shows why; a user signs out their other device from "My sessions"; a
 * player on /admin is refused clearly. Screenshots go to test/artifacts/.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GatehouseClient } from "../../client/sdk";
import { ErrorCode } from "../../shared/errors";
import { reasonText } from "../../shared/protocol";
import { launchBrowser, openPage, screenshot, type TrackedPage } from "../helpers/browser";
import { register, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";

describe("browser pages", () => {
  let node: TestNode;
  let browser: Browser;
  const pages: TrackedPage[] = [];
  const bots: GatehouseClient[] = [];

  const adminPath = "/admin";

  beforeAll(async () => {
    [node, browser] = await Promise.all([startNode(), launchBrowser()]);
  });
  afterEach(async () => {
    bots.splice(0).forEach((b) => b.close());
    await Promise.all(pages.splice(0).map((p) => p.context.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await node?.close();
  });

  async function open(path: string): Promise<TrackedPage> {
    const p = await openPage(browser, node.url + path);
    pages.push(p);
    return p;
  }

  /** A player scripted with the SDK, in `room`. */
  async function scriptedPlayer(room: string) {
    const bot = new GatehouseClient({ baseUrl: node.url, device: "script" });
    bots.push(bot);
    const pair = await bot.guest();
    await bot.connect();
    const joined = await bot.joinRoom(room);
    return { bot, user: pair.user, you: joined.you };
  }

  async function playAsGuest(page: Page, room?: string): Promise<string> {
    await page.getByTestId("guest-button").click();
    await expect.poll(() => page.getByTestId("status").textContent(), { timeout: 10_000 }).toContain("In room");
    if (room) {
      await page.getByTestId("room-input").fill(room);
      await page.getByTestId("join-button").click();
      await page.locator(`[data-testid="game-view"][data-room="${room}"]`).waitFor();
    }
    return (await page.getByTestId("whoami-name").textContent()) ?? "";
  }

  async function loginOnPage(page: Page, username: string, password: string): Promise<void> {
    await page.getByTestId("username").fill(username);
    await page.getByTestId("password").fill(password);
    await page.getByTestId("login-button").click();
    // expect.poll's default 1 s is too short on a loaded machine (login = scrypt + a socket handshake).
    await expect.poll(() => page.getByTestId("status").textContent(), { timeout: 10_000 }).toContain("In room");
  }

  /** /admin, signed in as the test node's admin. */
  async function openAdmin(): Promise<TrackedPage> {
    const admin = await open(adminPath);
    await admin.page.getByTestId("admin-username").fill("admin");
    await admin.page.getByTestId("admin-password").fill("admin-password-1");
    await admin.page.getByTestId("admin-login-button").click();
    await admin.page.getByTestId("dashboard").waitFor();
    return admin;
  }

  /** Resolves once the dashboard has refreshed `times` more times (its "Updated ..." stamp changed). */
  async function refreshes(a: Page, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      const stamp = await a.getByTestId("admin-status").textContent();
      await expect.poll(() => a.getByTestId("admin-status").textContent(), { timeout: 5000 }).not.toBe(stamp);
    }
  }

  /** A registered user (password "password-123") signed in on two pages; a third session "setup" is offline. */
  async function twoDevices(prefix: string) {
    const username = uniqueName(prefix);
    await register(node.url, username, "password-123", "setup");
    const [laptop, phone] = [await open("/"), await open("/")];
    await loginOnPage(laptop.page, username, "password-123");
    await loginOnPage(phone.page, username, "password-123");
    return { username, laptop, phone };
  }

  /** The position the page shows for a player (data-* attributes of its list entry). */
  const positionOf = (page: Page, userId: string) =>
    page.evaluate((id) => {
      const li = document.querySelector<HTMLElement>(`[data-testid="player"][data-user-id="${id}"]`);
      return li ? { x: Number(li.dataset.x), y: Number(li.dataset.y), self: li.dataset.self === "true" } : null;
    }, userId);

  it("a guest plays: sees a scripted player move on the canvas, moves with the keys, chats", async () => {
    const guest = await open("/");
    const { page } = guest;
    await expect(page.title()).resolves.toBe("Gatehouse");
    await page.getByTestId("login-view").waitFor();
    await screenshot(page, "game-login");
    const name = await playAsGuest(page); // default room "lobby"
    expect(name).toMatch(/^guest-/);
    await expect(page.getByTestId("password-panel").isHidden()).resolves.toBe(true); // guests have no password
    await expect(page.locator('[data-testid="game-view"]').getAttribute("data-room")).resolves.toBe("lobby");

    const other = await scriptedPlayer("lobby");
    const row = page.locator(`[data-testid="player"][data-user-id="${other.user.id}"]`);
    await row.waitFor();
    const before = await positionOf(page, other.user.id);
    expect(before).toMatchObject({ x: other.you.x, y: other.you.y, self: false });

    // The scripted player walks; the page's state (and canvas) follows the server's ticks.
    const target = { x: other.you.x > 400 ? other.you.x - 80 : other.you.x + 80, y: other.you.y };
    const walk = setInterval(() => other.bot.move(target.x, target.y), 50);
    try {
      await page.waitForFunction(
        ([id, x]) => {
          const li = document.querySelector<HTMLElement>(`[data-testid="player"][data-user-id="${id}"]`);
          return li !== null && Math.abs(Number(li.dataset.x) - Number(x)) >= 40;
        },
        [other.user.id, String(before!.x)] as const,
        { timeout: 5000 },
      );
    } finally {
      clearInterval(walk);
    }

    // Our own player: highlighted in the list, moved by holding an arrow key.
    const self = page.locator('[data-testid="player"][data-self="true"]');
    await self.waitFor();
    await expect(self.getAttribute("data-username")).resolves.toBe(name);
    const selfId = (await self.getAttribute("data-user-id"))!;
    const start = (await positionOf(page, selfId))!;
    const key = start.x > 400 ? "ArrowLeft" : "ArrowRight";
    await page.getByTestId("arena").click();
    await page.keyboard.down(key);
    try {
      await page.waitForFunction(
        ([id, x]) => {
          const li = document.querySelector<HTMLElement>(`[data-testid="player"][data-user-id="${id}"]`);
          return li !== null && Math.abs(Number(li.dataset.x) - Number(x)) >= 60;
        },
        [selfId, String(start.x)] as const,
        { timeout: 5000 },
      );
    } finally {
      await page.keyboard.up(key);
    }
    expect((await positionOf(page, selfId))!.y).toBeCloseTo(start.y, 0);

    // Chat both ways.
    await other.bot.chat("hello from the script");
    await page.getByTestId("chat-log").getByText("hello from the script").waitFor();
    await page.getByTestId("chat-input").fill("hi script");
    await page.getByTestId("chat-send").click();
    await page.getByTestId("chat-log").getByText("hi script").waitFor();
    await expect(page.getByTestId("chat-input").inputValue()).resolves.toBe("");

    await screenshot(page, "game");
    expect(guest.errors).toEqual([]);
  });

  it("an admin kicks the guest from /admin; the guest's page shows the kicked banner within 2 s", async () => {
    const guest = await open("/");
    const guestName = await playAsGuest(guest.page, "kick-room");
    await scriptedPlayer("kick-room");

    const admin = await open(adminPath);
    const a = admin.page;
    await expect(a.title()).resolves.toBe("Gatehouse admin");
    await a.getByTestId("admin-username").fill("admin");
    await a.getByTestId("admin-password").fill("admin-password-1");
    await a.getByTestId("admin-login-button").click();
    const row = a.locator(`[data-testid="player-row"][data-username="${guestName}"]`);
    await row.waitFor({ timeout: 5000 });
    await expect(row.locator('[data-testid="admin-session"]').count()).resolves.toBe(1);
    await expect(row.locator('[data-testid="admin-session"]').getAttribute("data-node-id")).resolves.toBe(node.app.config.nodeId);
    await screenshot(a, "admin-dashboard");

    await a.getByTestId("action-reason").fill("browser test");
    const clicked = Date.now();
    await row.getByTestId("kick").click();
    const banner = guest.page.getByTestId("revoked-banner");
    await banner.waitFor({ state: "visible", timeout: 2000 });
    expect(Date.now() - clicked).toBeLessThan(2000);
    await expect(banner.textContent()).resolves.toContain(reasonText.kicked);
    // ... with the reason the admin typed on the dashboard.
    await expect(banner.textContent()).resolves.toContain("browser test");
    await expect(banner.getAttribute("role")).resolves.toBe("alert");
    await expect(guest.page.getByTestId("game-view").isHidden()).resolves.toBe(true);

    // The dashboard's live table loses the guest by itself; the audit log has the kick.
    await row.waitFor({ state: "detached", timeout: 5000 });
    await a.locator('[data-testid="audit-row"][data-action="kick"]').first().waitFor();
    await expect(a.locator('[data-testid="audit-row"][data-action="kick"]').first().textContent()).resolves.toContain("browser test");
    await screenshot(guest.page, "game-kicked");
    await screenshot(a, "admin-after-kick");

    // Nothing reconnected behind the banner: the server has no socket for that guest.
    const online = await a.evaluate(() => document.querySelectorAll('[data-testid="player-row"]:not([data-username="admin"])').length);
    expect(online).toBe(1); // the scripted player only (besides the dashboard's own connection)
    // "Log in again" returns to the login form.
    await guest.page.getByTestId("login-again").click();
    await guest.page.getByTestId("login-view").waitFor();
    await expect(guest.page.getByTestId("revoked-banner").isHidden()).resolves.toBe(true);
    expect(guest.errors).toEqual([]);
    expect(admin.errors).toEqual([]);
  });

  it("an admin bans an online player until a given time from the dashboard; the audit log offers no (stale) Unban", async () => {
    const username = uniqueName("banme");
    await register(node.url, username, "password-123", "setup");
    const bot = new GatehouseClient({ baseUrl: node.url, device: "script" });
    bots.push(bot);
    const target = { bot, user: (await bot.login(username, "password-123")).user };
    await bot.connect();
    await bot.joinRoom("ban-room");
    const revoked = new Promise<string>((resolve) => target.bot.on("revoked", (e) => resolve(e.reason)));
    const admin = await open(adminPath);
    const a = admin.page;
    await a.getByTestId("admin-username").fill("admin");
    await a.getByTestId("admin-password").fill("admin-password-1");
    await a.getByTestId("admin-login-button").click();
    const row = a.locator(`[data-testid="player-row"][data-user-id="${target.user.id}"]`);
    await row.waitFor();

    await row.getByTestId("ban-details").locator("summary").click();
    await row.getByTestId("ban-reason").fill("griefing");
    // The dashboard reads the end as UTC, like every time it shows: tomorrow, this minute.
    const until = new Date(Date.now() + 86_400_000);
    await row.getByTestId("ban-until").fill(until.toISOString().slice(0, 16));
    // The open ban form survives the 2 s refreshes (rows are updated in place, not rebuilt).
    const stamp = await a.getByTestId("admin-status").textContent();
    await expect.poll(() => a.getByTestId("admin-status").textContent(), { timeout: 5000 }).not.toBe(stamp);
    await expect(row.getByTestId("ban-reason").inputValue()).resolves.toBe("griefing");
    await expect(row.getByTestId("ban-form").isVisible()).resolves.toBe(true);
    await screenshot(a, "admin-ban-form");
    await row.getByTestId("ban-confirm").click();

    expect(await revoked).toBe("banned");
    await row.waitFor({ state: "detached", timeout: 5000 });
    const banRow = a.locator('[data-testid="audit-row"][data-action="ban"]').first();
    await banRow.waitFor();
    await expect(banRow.textContent()).resolves.toContain("griefing");
    const minute = `${until.toISOString().slice(0, 16).replace("T", " ")}:00 UTC`;
    await expect(a.getByTestId("admin-notice").textContent()).resolves.toBe(`Banned ${username} until ${minute} (griefing)`);
    await expect(bot.login(username, "password-123")).rejects.toMatchObject({
      code: ErrorCode.USER_BANNED,
      details: { until: `${until.toISOString().slice(0, 16)}:00.000Z`, reason: "griefing" },
    });
    // An old ban entry cannot know whether the ban still holds: unbanning is done from the search.
    await expect(banRow.getByTestId("unban").count()).resolves.toBe(0);
    expect(admin.errors).toEqual([]);
  });

  it("the search finds an offline user; banned from the result, the player's login page shows the reason and end; unbanned, the Unban button goes", async () => {
    const stem = uniqueName("Offline");
    const username = `${stem}_x`;
    await register(node.url, username, "password-123", "setup");
    await register(node.url, `${stem}_y`, "password-123", "setup");
    const { page: a, errors } = await openAdmin();

    await a.getByTestId("user-search").fill(stem.toLowerCase());
    await a.getByTestId("user-search-button").click();
    const row = a.locator(`[data-testid="user-row"][data-username="${username}"]`);
    await row.waitFor();
    await expect(a.getByTestId("user-row").count()).resolves.toBe(2);
    await expect(row.getByTestId("user-online").textContent()).resolves.toBe("offline");
    await expect(row.getByTestId("kick").isHidden()).resolves.toBe(true); // nobody to kick
    await expect(row.getByTestId("unban").isHidden()).resolves.toBe(true); // not banned

    await row.getByTestId("ban-details").locator("summary").click();
    await row.getByTestId("ban-reason").fill("chargeback fraud");
    const until = new Date(Date.now() + 2 * 86_400_000);
    await row.getByTestId("ban-until").fill(until.toISOString().slice(0, 16));
    await row.getByTestId("ban-confirm").click();
    const untilText = `${until.toISOString().slice(0, 16).replace("T", " ")}:00 UTC`;
    await expect.poll(() => row.getByTestId("user-ban").textContent()).toBe(`banned until ${untilText} (chargeback fraud)`);
    await expect(row.getByTestId("unban").isVisible()).resolves.toBe(true);
    // the form is emptied and closed after use
    await expect(row.getByTestId("ban-form").isVisible()).resolves.toBe(false);
    await expect(row.getByTestId("ban-reason").inputValue()).resolves.toBe("");
    await screenshot(a, "admin-search-banned");

    // The player tries to log in on the game page: told why and until when.
    const game = await open("/");
    await game.page.getByTestId("username").fill(username);
    await game.page.getByTestId("password").fill("password-123");
    await game.page.getByTestId("login-button").click();
    await expect.poll(() => game.page.getByTestId("login-error").textContent(), { timeout: 10_000 }).toBe(
      `This account is banned until ${untilText}. Reason: chargeback fraud`,
    );
    await screenshot(game.page, "game-login-banned");

    await row.getByTestId("unban").click();
    await expect.poll(() => row.getByTestId("user-ban").textContent()).toBe("");
    await expect(row.getByTestId("unban").isHidden()).resolves.toBe(true);
    await expect(a.getByTestId("admin-notice").textContent()).resolves.toBe(`Unbanned ${username}`);
    await loginOnPage(game.page, username, "password-123");
    // Online now: the search result says so on its next refresh, and offers Kick.
    await expect.poll(() => row.getByTestId("user-online").textContent(), { timeout: 5000 }).toBe("online");
    await expect(row.getByTestId("kick").isVisible()).resolves.toBe(true);
    expect(errors).toEqual([]);
    // the refused login is the only thing the browser logs
    expect(game.errors).toEqual([expect.stringContaining("status of 403")]);
  });

  it("an action's confirmation stays visible across refreshes; the reason field is emptied after use", async () => {
    const guest = await open("/");
    const guestName = await playAsGuest(guest.page, "notice-room");
    const { page: a, errors } = await openAdmin();
    const row = a.locator(`[data-testid="player-row"][data-username="${guestName}"]`);
    await a.getByTestId("action-reason").fill("spamming chat");
    await row.getByTestId("kick").click();
    const notice = a.getByTestId("admin-notice");
    await expect.poll(() => notice.textContent()).toBe(`Kicked ${guestName}`);
    await expect(a.getByTestId("action-reason").inputValue()).resolves.toBe("");
    // Two refreshes later (the first one comes at once, right after the action), still there.
    await refreshes(a, 2);
    await expect(notice.textContent()).resolves.toBe(`Kicked ${guestName}`);
    await expect(notice.isVisible()).resolves.toBe(true);
    await expect(guest.page.getByTestId("revoked-banner").textContent()).resolves.toContain("spamming chat");
    expect(errors).toEqual([]);
  });

  it("the dashboard shows every time in UTC, labelled, and primary buttons stay readable on hover", async () => {
    const { page: a, errors } = await openAdmin();
    // the admin's own login needs no audit entry: make one
    await a.getByTestId("user-search").fill("admin");
    await a.getByTestId("user-search-button").click();
    await a.locator('[data-testid="user-row"][data-username="admin"]').waitFor();
    const guest = await open("/");
    const guestName = await playAsGuest(guest.page);
    await a.locator(`[data-testid="player-row"][data-username="${guestName}"]`).getByTestId("kick").click();
    const time = a.locator('[data-testid="audit-row"] time').first();
    await time.waitFor();
    const iso = (await time.getAttribute("datetime"))!;
    await expect(time.textContent()).resolves.toBe(`${iso.slice(0, 19).replace("T", " ")} UTC`);
    await expect(a.locator('[data-testid="audit-table"] thead').textContent()).resolves.toContain("When (UTC)");
    await expect(a.getByTestId("admin-status").textContent()).resolves.toMatch(/^Updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);

    const button = a.getByTestId("user-search-button");
    await button.hover();
    const contrast = await button.evaluate((b) => {
      const rgb = (c: string) => (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);
      const lum = (c: string) => {
        const [r, g, bl] = rgb(c).map((v) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
      };
      const style = getComputedStyle(b);
      const [l1, l2] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
      return (l1! + 0.05) / (l2! + 0.05);
    });
    // WCAG AA for normal text
    expect(contrast).toBeGreaterThanOrEqual(4.5);
    expect(errors).toEqual([]);
  });

  it("a user signs out their other device from My sessions; that device shows why", async () => {
    const { laptop, phone } = await twoDevices("twodev");

    const l = laptop.page;
    await l.getByTestId("sessions-refresh").click();
    // setup (register), laptop, phone: the newest other one is the phone.
    const others = l.locator('[data-testid="session-row"][data-current="false"]');
    await expect.poll(() => others.count()).toBe(2);
    const phoneSession = await phone.page.evaluate(() => JSON.parse(sessionStorage.getItem("gatehouse.game") ?? "{}").sessionId as string);
    const phoneRow = l.locator(`[data-testid="session-row"][data-session-id="${phoneSession}"]`);
    await expect(phoneRow.getAttribute("data-current")).resolves.toBe("false");
    await expect(phoneRow.textContent()).resolves.toContain("online");
    await screenshot(l, "game-sessions");

    await phoneRow.getByTestId("revoke-session").click();
    const banner = phone.page.getByTestId("revoked-banner");
    await banner.waitFor({ state: "visible", timeout: 2000 });
    await expect(banner.textContent()).resolves.toMatch(/signed out from another device/);
    await screenshot(phone.page, "game-signed-out");

    // The laptop plays on; its list no longer has the phone.
    await phoneRow.waitFor({ state: "detached" });
    await expect(l.getByTestId("revoked-banner").isHidden()).resolves.toBe(true);
    await expect(l.getByTestId("status").textContent()).resolves.toContain("In room");
    expect(laptop.errors).toEqual([]);
    expect(phone.errors).toEqual([]);
  });

  it("a password change on one device signs out the other, and this tab plays on with its new session", async () => {
    const { username, laptop, phone } = await twoDevices("pwd");
    const l = laptop.page;
    const before = await l.evaluate(() => JSON.parse(sessionStorage.getItem("gatehouse.game") ?? "{}").sessionId as string);

    await l.getByTestId("password-panel").locator("summary").click();
    // A wrong current password is refused in place.
    await l.getByTestId("old-password").fill("not-the-password");
    await l.getByTestId("new-password").fill("password-456");
    await l.getByTestId("password-submit").click();
    await expect.poll(() => l.getByTestId("password-message").textContent(), { timeout: 10_000 }).toContain("current password is wrong");
    await expect(phone.page.getByTestId("revoked-banner").isHidden()).resolves.toBe(true);

    await l.getByTestId("old-password").fill("password-123");
    await l.getByTestId("password-submit").click();
    await expect.poll(() => l.getByTestId("password-message").textContent(), { timeout: 10_000 }).toContain("Password changed");
    const banner = phone.page.getByTestId("revoked-banner");
    await banner.waitFor({ state: "visible", timeout: 2000 });
    await expect(banner.textContent()).resolves.toContain(reasonText.password_changed);

    // The laptop is on a new session, back in its room, and the only session left.
    const after = await l.evaluate(() => JSON.parse(sessionStorage.getItem("gatehouse.game") ?? "{}").sessionId as string);
    expect(after).not.toBe(before);
    await expect.poll(() => l.getByTestId("status").textContent()).toContain("In room");
    await expect.poll(() => l.locator('[data-testid="session-row"]').count()).toBe(1);
    await expect(l.locator('[data-testid="session-row"]').getAttribute("data-current")).resolves.toBe("true");
    await expect(l.getByTestId("revoked-banner").isHidden()).resolves.toBe(true);
    await screenshot(l, "game-password-changed");
    // The new password is the one that works now.
    const relogin = await open("/");
    await loginOnPage(relogin.page, username, "password-456");
    // The browser logs the deliberate wrong-password 401; nothing else went wrong.
    expect(laptop.errors).toEqual(["console: Failed to load resource: the server responded with a status of 401 (Unauthorized)"]);
    expect(phone.errors).toEqual([]);
  });

  it("GET /admin serves the dashboard page", async () => {
    const res = await fetch(node.url + "/admin");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain('data-testid="admin-login-view"');
  });

  it("a reload resumes the tab's session; a duplicated tab does not reuse it", async () => {
    const first = await open("/");
    const name = await playAsGuest(first.page, "tabs-room");
    const stored = await first.page.evaluate(() => sessionStorage.getItem("gatehouse.game"));
    expect(JSON.parse(stored!).user.username).toBe(name);

    // Reload: same tab, same session, straight back into the game.
    await first.page.reload();
    await expect.poll(() => first.page.getByTestId("status").textContent()).toContain("In room");
    await expect(first.page.getByTestId("whoami-name").textContent()).resolves.toBe(name);

    // A duplicated tab arrives with a copy of sessionStorage (same context = same browser profile).
    const dup = await first.context.newPage();
    await dup.addInitScript((value) => sessionStorage.setItem("gatehouse.game", value), stored!);
    await dup.goto(node.url + "/");
    await dup.getByTestId("login-view").waitFor();
    await expect(dup.getByTestId("login-error").textContent()).resolves.toContain("open in another tab");
    await expect(dup.evaluate(() => sessionStorage.getItem("gatehouse.game"))).resolves.toBeNull();
    // It gets a session of its own; the first tab never noticed.
    const other = await playAsGuest(dup);
    expect(other).not.toBe(name);
    await expect(first.page.getByTestId("revoked-banner").isHidden()).resolves.toBe(true);
    await expect(first.page.getByTestId("status").textContent()).resolves.toContain("In room");
    expect(first.errors).toEqual([]);
  });

  // Last: it signs out every session on this node.
  it("revoke all asks first; confirmed, it signs out every player and the admin", async () => {
    const guest = await open("/");
    await playAsGuest(guest.page, "all-room");
    const admin = await open(adminPath);
    const a = admin.page;
    await a.getByTestId("admin-username").fill("admin");
    await a.getByTestId("admin-password").fill("admin-password-1");
    await a.getByTestId("admin-login-button").click();
    await a.getByTestId("player-row").first().waitFor();

    const dialogs: string[] = [];
    a.once("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await a.getByTestId("revoke-all").click();
    expect(dialogs[0]).toMatch(/Revoke ALL sessions/);
    await expect(guest.page.getByTestId("revoked-banner").isHidden()).resolves.toBe(true);

    a.once("dialog", (d) => void d.accept());
    await a.getByTestId("revoke-all").click();
    const banner = guest.page.getByTestId("revoked-banner");
    await banner.waitFor({ state: "visible", timeout: 2000 });
    await expect(banner.textContent()).resolves.toContain(reasonText.revoked_all);
    await a.getByTestId("admin-login-view").waitFor();
    await expect(a.getByTestId("admin-login-error").textContent()).resolves.toContain("yours included");
    // Logging in again works at once (the new token is not born dead).
    await a.getByTestId("admin-password").fill("admin-password-1");
    await a.getByTestId("admin-login-button").click();
    await a.locator('[data-testid="audit-row"][data-action="revoke_all"]').first().waitFor();
    expect(guest.errors).toEqual([]);
    // The dashboard stops polling before it revokes, and forgets its dead session without a call.
    expect(admin.errors).toEqual([]);
  });

  it("a player's account on /admin gets a clear refusal, not an empty page", async () => {
    const username = uniqueName("notadmin");
    await register(node.url, username, "password-123");
    const { page, errors } = await open(adminPath);
    await page.getByTestId("admin-username").fill(username);
    await page.getByTestId("admin-password").fill("password-123");
    await page.getByTestId("admin-login-button").click();
    const refused = page.getByTestId("admin-refused");
    await refused.waitFor({ state: "visible" });
    await expect(refused.textContent()).resolves.toContain("This account is not an admin");
    await expect(page.getByTestId("dashboard").isHidden()).resolves.toBe(true);
    await screenshot(page, "admin-refused");
    expect(errors).toEqual([]);
  });
});
