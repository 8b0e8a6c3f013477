/**
 * GET /admin — the admin dashboard: admin login; online players across the
 * cluster (pushed over the admin's own socket as they change, `admin:watch`)
 * with Kick, Ban and per-session Revoke; a user search (online or offline)
 * with Kick, Ban and Unban (refreshed every 2 s, like the audit log); Revoke-all behind a
 * confirm(); the audit log. Every time shown is UTC. An action's confirmation
 * stays until the next action (refreshes never overwrite it). A non-admin
 * account or a 403 gets a clear refusal, never an empty page.
 */
import { ErrorCode } from "../../shared/errors";
import { reasonText, type AuditEntry, type OnlinePlayer, type UserView } from "../../shared/protocol";
import { GatehouseClient, GatehouseClientError, webStorage } from "../sdk";
import { byTestId, el, errorText, formatUtc, sessionIsDead, showOnly } from "./dom";

const POLL_MS = 2000;
const AUDIT_LIMIT = 50;
const SEARCH_LIMIT = 50;
const NOT_ADMIN = "This account is not an admin.";

const ui = {
  whoami: byTestId("admin-whoami"),
  name: byTestId("admin-name"),
  logout: byTestId<HTMLButtonElement>("admin-logout"),
  refused: byTestId("admin-refused"),
  refusedText: byTestId("admin-refused-text"),
  refusedBack: byTestId<HTMLButtonElement>("admin-refused-back"),
  loginView: byTestId("admin-login-view"),
  loginForm: byTestId<HTMLFormElement>("admin-login-form"),
  username: byTestId<HTMLInputElement>("admin-username"),
  password: byTestId<HTMLInputElement>("admin-password"),
  loginButton: byTestId<HTMLButtonElement>("admin-login-button"),
  loginError: byTestId("admin-login-error"),
  dashboard: byTestId("dashboard"),
  status: byTestId("admin-status"),
  notice: byTestId("admin-notice"),
  searchForm: byTestId<HTMLFormElement>("user-search-form"),
  search: byTestId<HTMLInputElement>("user-search"),
  usersTable: byTestId("users-table"),
  usersBody: byTestId<HTMLTableSectionElement>("users-body"),
  usersEmpty: byTestId("users-empty"),
  reason: byTestId<HTMLInputElement>("action-reason"),
  revokeAll: byTestId<HTMLButtonElement>("revoke-all"),
  playersBody: byTestId<HTMLTableSectionElement>("players-body"),
  playersEmpty: byTestId("players-empty"),
  onlineCount: byTestId("online-count"),
  error: byTestId("admin-error"),
  auditBody: byTestId<HTMLTableSectionElement>("audit-body"),
};
const views = [ui.loginView, ui.dashboard];

const client = new GatehouseClient({ baseUrl: location.origin, storage: webStorage(sessionStorage, "gatehouse.admin"), device: "admin dashboard" });

let pollTimer: ReturnType<typeof setTimeout> | undefined;
let polling = false;
/** stops the online list's pushes; null while not watching */
let stopWatching: (() => void) | null = null;
/** bumped by every start and stop, so a watch that settles after a stop is dropped */
let watchGeneration = 0;
/** the user search shown, refreshed with the rest; null = none yet */
let searchQuery: string | null = null;

// ---------------------------------------------------------------- views

function showLogin(message: string): void {
  stopPolling();
  notify("");
  clearSearch();
  ui.whoami.hidden = true;
  ui.refused.hidden = true;
  showOnly(ui.loginView, views);
  ui.loginError.textContent = message;
  ui.username.focus();
}

function showRefused(text = NOT_ADMIN): void {
  stopPolling();
  ui.whoami.hidden = true;
  showOnly(null, views);
  ui.refusedText.textContent = text;
  ui.refused.hidden = false;
  ui.refusedBack.focus();
}

function showDashboard(): void {
  ui.refused.hidden = true;
  ui.whoami.hidden = false;
  ui.name.textContent = client.user?.username ?? "";
  showOnly(ui.dashboard, views);
  startPolling();
}

// ---------------------------------------------------------------- auth

async function signIn(): Promise<void> {
  ui.loginError.textContent = "";
  const username = ui.username.value.trim();
  const password = ui.password.value;
  if (!username || !password) {
    ui.loginError.textContent = "Enter the admin username and password.";
    return;
  }
  ui.loginButton.disabled = true;
  try {
    const pair = await client.login(username, password);
    ui.password.value = "";
    if (pair.user.role !== "admin") {
      // Do not leave a player's session behind on the admin page.
      await client.logout().catch(() => undefined);
      return showRefused();
    }
    showDashboard();
  } catch (err) {
    ui.loginError.textContent = errorText(err);
  } finally {
    ui.loginButton.disabled = false;
  }
}

/** What every admin call does with a failure: refusal, dead session, or a message. */
async function handleFailure(err: unknown, what: string): Promise<void> {
  if (err instanceof GatehouseClientError && err.code === ErrorCode.FORBIDDEN) {
    // A demoted admin: this session is a player's, of no use here.
    await client.logout().catch(() => undefined);
    return showRefused();
  }
  if (sessionIsDead(err)) {
    client.forget();
    return showLogin(`Your admin session has ended (${errorText(err)}).`);
  }
  notify(`${what}: ${errorText(err)}`, "error");
}

/**
 * The outcome of the admin's last action. Its own element, which refreshes never touch: it stays
 * until the next action (a refresh 40 ms later used to overwrite "Kicked ...").
 */
function notify(text: string, kind: "ok" | "error" = "ok"): void {
  ui.notice.textContent = text;
  ui.notice.className = `notice ${kind}`;
  ui.notice.hidden = text === "";
}

// ---------------------------------------------------------------- polling

function startPolling(): void {
  stopPolling();
  polling = true;
  void poll();
  void watchPlayers();
}

function stopPolling(): void {
  polling = false;
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
  watchGeneration++;
  stopWatching?.();
  stopWatching = null;
}

/** The online list arrives over the admin's socket, now and on every change on any node: never polled. */
async function watchPlayers(): Promise<void> {
  const generation = ++watchGeneration;
  const current = () => generation === watchGeneration && polling;
  try {
    const stop = await client.admin.watchPlayers(
      (players) => {
        if (current()) renderPlayers(players);
      },
      (err) => {
        if (current()) void handleFailure(err, "Could not watch the online players");
      },
    );
    if (current()) stopWatching = stop;
    else stop();
  } catch (err) {
    if (current()) await handleFailure(err, "Could not watch the online players");
  }
}

/** One refresh; the next one is scheduled after it settles, so slow answers never pile up. */
async function poll(): Promise<void> {
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
  try {
    const query = searchQuery;
    const [audit, users] = await Promise.all([
      client.admin.audit(AUDIT_LIMIT),
      query === null ? Promise.resolve(null) : client.admin.users(query, SEARCH_LIMIT),
    ]);
    if (!polling) return;
    renderAudit(audit);
    // A search typed meanwhile has its own answer coming.
    if (users && query === searchQuery) renderUsers(users);
    ui.error.textContent = "";
    ui.status.textContent = `Updated ${formatUtc(Date.now())}`;
  } catch (err) {
    if (!polling) return;
    if (sessionIsDead(err) || (err instanceof GatehouseClientError && err.code === ErrorCode.FORBIDDEN)) await handleFailure(err, "Could not refresh");
    else ui.error.textContent = `Could not refresh: ${errorText(err)}`;
  }
  if (polling) pollTimer = setTimeout(() => void poll(), POLL_MS);
}

// ---------------------------------------------------------------- players

const sessionsKey = (p: OnlinePlayer) => JSON.stringify(p.sessions);

function renderPlayers(list: OnlinePlayer[]): void {
  const seen = new Set<string>();
  let previous: HTMLTableRowElement | null = null;
  for (const p of list) {
    seen.add(p.userId);
    let row = ui.playersBody.querySelector<HTMLTableRowElement>(`tr[data-user-id="${CSS.escape(p.userId)}"]`);
    if (!row) row = playerRow(p);
    // Keep the server's order (by name) without rebuilding rows: an open ban form survives refreshes.
    const wanted: ChildNode | null = previous ? previous.nextSibling : ui.playersBody.firstChild;
    if (wanted !== row) ui.playersBody.insertBefore(row, wanted);
    if (row.dataset.sessions !== sessionsKey(p)) renderSessions(row, p);
    previous = row;
  }
  for (const row of Array.from(ui.playersBody.rows)) if (!seen.has(row.dataset.userId ?? "")) row.remove();
  ui.playersEmpty.hidden = list.length > 0;
  const sockets = list.reduce((n, p) => n + p.sessions.length, 0);
  ui.onlineCount.textContent = `(${list.length} ${list.length === 1 ? "player" : "players"}, ${sockets} ${sockets === 1 ? "connection" : "connections"})`;
}

function playerRow(p: OnlinePlayer): HTMLTableRowElement {
  return el(
    "tr",
    { "data-testid": "player-row", "data-user-id": p.userId, "data-username": p.username },
    el("th", { scope: "row" }, el("span", { class: "name" }, p.username), el("small", { class: "id" }, p.userId)),
    el("td", { class: "sessions-cell" }),
    el("td", { class: "actions" }, kickButton(p.userId, p.username), banDetails(p.userId, p.username, "online")),
  );
}

function kickButton(userId: string, username: string): HTMLButtonElement {
  const kick = el("button", { type: "button", class: "warn", "data-testid": "kick", "aria-label": `Kick ${username}` }, "Kick");
  kick.addEventListener("click", () =>
    void act(kick, `Kicked ${username}`, async () => {
      await client.admin.kick(userId, reasonValue());
      ui.reason.value = "";
    }),
  );
  return kick;
}

/** "Ban…": reason and end (UTC); emptied and closed once the ban is done. `where` keeps ids unique per table. */
function banDetails(userId: string, username: string, where: string): HTMLDetailsElement {
  const until = el("input", { type: "datetime-local", id: `ban-until-${where}-${userId}`, "data-testid": "ban-until" });
  const reason = el("input", { id: `ban-reason-${where}-${userId}`, maxlength: "200", "data-testid": "ban-reason" });
  const confirmBan = el("button", { type: "submit", class: "danger", "data-testid": "ban-confirm" }, `Ban ${username}`);
  const form = el(
    "form",
    { class: "ban-form", "data-testid": "ban-form" },
    el("label", { for: reason.id }, "Reason (optional; the player sees it)"),
    reason,
    el("label", { for: until.id }, "Until, UTC (optional; empty = until unbanned)"),
    until,
    confirmBan,
  );
  const details = el("details", { class: "ban", "data-testid": "ban-details" }, el("summary", { "aria-label": `Ban ${username}…` }, "Ban…"), form);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    // The field is read as UTC, like every time on this page.
    const untilDate = until.value ? new Date(`${until.value}Z`) : undefined;
    if (untilDate && !(untilDate.getTime() > Date.now())) {
      notify("A ban's end must be in the future.", "error");
      until.focus();
      return;
    }
    const why = reason.value.trim();
    void act(confirmBan, `Banned ${username}${untilDate ? ` until ${formatUtc(untilDate.getTime())}` : " until unbanned"}${why ? ` (${why})` : ""}`, async () => {
      await client.admin.ban(userId, { ...(why ? { reason: why } : {}), ...(untilDate ? { until: untilDate } : {}) });
      reason.value = "";
      until.value = "";
      details.open = false;
    });
  });
  return details;
}

function renderSessions(row: HTMLTableRowElement, p: OnlinePlayer): void {
  row.dataset.sessions = sessionsKey(p);
  const cell = row.querySelector<HTMLTableCellElement>(".sessions-cell")!;
  cell.replaceChildren(
    el(
      "ul",
      { class: "session-list" },
      ...p.sessions.map((s) => {
        const revoke = el("button", { type: "button", "data-testid": "revoke-session", "aria-label": `Revoke session ${s.sessionId} of ${p.username}` }, "Revoke");
        revoke.addEventListener("click", () =>
          void act(revoke, `Revoked a session of ${p.username}`, async () => {
            await client.admin.revokeSession(s.sessionId, reasonValue());
            ui.reason.value = "";
          }),
        );
        return el(
          "li",
          { "data-testid": "admin-session", "data-session-id": s.sessionId, "data-node-id": s.nodeId },
          el("span", { class: "node" }, s.nodeId),
          ` · since ${formatUtc(s.connectedAt)} `,
          s.sessionId === client.sessionId ? el("small", { class: "this-session" }, "(this dashboard) ") : null,
          revoke,
        );
      }),
    ),
  );
}

/** The kick / revoke reason; the actions clear it once done: it belongs to one action, not to every later one. */
const reasonValue = (): string | undefined => ui.reason.value.trim() || undefined;

/** Runs an admin action with its button disabled, says how it went, then refreshes at once. */
async function act(button: HTMLButtonElement, done: string, action: () => Promise<void>): Promise<void> {
  button.disabled = true;
  notify("");
  try {
    await action();
    notify(done);
    if (polling) void poll();
  } catch (err) {
    await handleFailure(err, "Action failed");
  } finally {
    button.disabled = false;
  }
}

async function revokeAll(): Promise<void> {
  if (!confirm("Revoke ALL sessions? Every player on every node is signed out at once, and so are you.")) return;
  ui.revokeAll.disabled = true;
  stopPolling();
  try {
    await client.admin.revokeAll();
    // Our own token died with the others: log in again.
    client.forget();
    showLogin("All sessions were signed out, yours included. Log in again.");
  } catch (err) {
    await handleFailure(err, "Revoke all failed");
    if (client.isLoggedIn && !ui.dashboard.hidden) startPolling();
  } finally {
    ui.revokeAll.disabled = false;
  }
}

// ---------------------------------------------------------------- user search

async function search(): Promise<void> {
  const query = ui.search.value.trim();
  if (!/^[A-Za-z0-9_-]{0,32}$/.test(query)) {
    notify("A username has only letters, digits, _ and -.", "error");
    return;
  }
  searchQuery = query;
  try {
    const users = await client.admin.users(query, SEARCH_LIMIT);
    if (query === searchQuery) renderUsers(users);
  } catch (err) {
    await handleFailure(err, "Search failed");
  }
}

function clearSearch(): void {
  searchQuery = null;
  ui.usersBody.replaceChildren();
  ui.usersTable.hidden = true;
  ui.usersEmpty.hidden = true;
}

/** Rows updated in place, like the online list: an open ban form survives refreshes. */
function renderUsers(list: UserView[]): void {
  const seen = new Set<string>();
  let previous: HTMLTableRowElement | null = null;
  for (const u of list) {
    seen.add(u.userId);
    const row = ui.usersBody.querySelector<HTMLTableRowElement>(`tr[data-user-id="${CSS.escape(u.userId)}"]`) ?? userRow(u);
    const wanted: ChildNode | null = previous ? previous.nextSibling : ui.usersBody.firstChild;
    if (wanted !== row) ui.usersBody.insertBefore(row, wanted);
    updateUserRow(row, u);
    previous = row;
  }
  for (const row of Array.from(ui.usersBody.rows)) if (!seen.has(row.dataset.userId ?? "")) row.remove();
  ui.usersTable.hidden = list.length === 0;
  ui.usersEmpty.hidden = list.length > 0;
}

function userRow(u: UserView): HTMLTableRowElement {
  const unban = el("button", { type: "button", "data-testid": "unban", "aria-label": `Unban ${u.username}` }, "Unban");
  unban.addEventListener("click", () => void act(unban, `Unbanned ${u.username}`, () => client.admin.unban(u.userId)));
  return el(
    "tr",
    { "data-testid": "user-row", "data-user-id": u.userId, "data-username": u.username },
    el("th", { scope: "row" }, el("span", { class: "name" }, u.username), el("small", { class: "id" }, u.userId)),
    el("td", {}, u.role),
    el("td", { class: "presence", "data-testid": "user-online" }),
    el("td", { class: "ban-state", "data-testid": "user-ban" }),
    el("td", { class: "actions" }, kickButton(u.userId, u.username), banDetails(u.userId, u.username, "search"), unban),
  );
}

/** What changes between refreshes: presence, the ban, and so which actions make sense. */
function updateUserRow(row: HTMLTableRowElement, u: UserView): void {
  row.dataset.online = String(u.online);
  row.dataset.banned = String(u.ban !== null);
  row.querySelector(".presence")!.replaceChildren(el("span", { class: u.online ? "badge online" : "badge" }, u.online ? "online" : "offline"));
  row.querySelector(".ban-state")!.textContent = u.ban
    ? `banned ${u.ban.until ? `until ${formatUtc(u.ban.until)}` : "until unbanned"}${u.ban.reason ? ` (${u.ban.reason})` : ""}`
    : "";
  // Kick needs someone to kick; Unban only while a ban holds (never a stale one).
  row.querySelector<HTMLElement>('[data-testid="kick"]')!.hidden = !u.online;
  row.querySelector<HTMLElement>('[data-testid="unban"]')!.hidden = u.ban === null;
}

// ---------------------------------------------------------------- audit

function renderAudit(entries: AuditEntry[]): void {
  if (entries.length === 0) {
    ui.auditBody.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "No admin actions yet.")));
    return;
  }
  ui.auditBody.replaceChildren(
    ...entries.map((e) => {
      const detail = e.detail ?? {};
      const username = typeof detail.username === "string" ? detail.username : undefined;
      const rest = Object.entries(detail)
        .filter(([k, v]) => k !== "username" && v !== null && v !== undefined)
        .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(", ");
      // No Unban here: an old ban entry cannot tell whether the ban still holds (the search can).
      const targetCell = el("td", {}, username ? el("span", { class: "name" }, username) : null, e.target ? el("small", { class: "id" }, e.target) : null);
      return el(
        "tr",
        { "data-testid": "audit-row", "data-action": e.action },
        el("td", {}, el("time", { datetime: e.at }, formatUtc(e.at))),
        el("td", {}, e.actorName),
        el("td", {}, el("span", { class: `action action-${e.action}` }, e.action.replace(/_/g, " "))),
        targetCell,
        el("td", { class: "detail" }, rest),
      );
    }),
  );
}

// ---------------------------------------------------------------- start

ui.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  void signIn();
});
ui.logout.addEventListener("click", () => {
  stopPolling();
  void client.logout().finally(() => showLogin("You signed out."));
});
ui.refusedBack.addEventListener("click", () => showLogin(""));
ui.searchForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  void search();
});
// A background refresh found the session dead (revoked, banned...): say so, do not poll on.
client.on("revoked", (e) => showLogin(`Your admin session has ended: ${e.message || reasonText[e.reason]}`));
ui.revokeAll.addEventListener("click", () => void revokeAll());

if (!client.isLoggedIn) showLogin("");
else if (client.user?.role !== "admin") void client.logout().finally(() => showRefused());
else showDashboard();
