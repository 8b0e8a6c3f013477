/**
 * GET / — the browser game: log in, register or play as guest; a canvas arena
 * fed by `state` ticks, moved with arrow keys / WASD; chat; "My sessions" with
 * "Sign out this device" and "Change password"; a banner with the reason when
 * the session is revoked.
 * The pair lives in sessionStorage: one session per tab (see tab-lock.ts).
 */
import type { TokenPair } from "../../shared/claims";
import { ErrorCode } from "../../shared/errors";
import { ARENA, Events, MAX_SPEED, TICK_HZ, USERNAME_RE, isGuestName, reasonText, type ChatMessage, type PlayerView, type StatePayload } from "../../shared/protocol";
import { GatehouseClient, GatehouseClientError, webStorage, type GameSocket, type RevokedEvent } from "../sdk";
import { byTestId, el, errorText, formatDateTime, formatTime, sessionIsDead, showOnly } from "./dom";
import { claimTab, releaseTabsExcept } from "./tab-lock";

// ---------------------------------------------------------------- elements

const ui = {
  whoami: byTestId("whoami"),
  whoamiName: byTestId("whoami-name"),
  logout: byTestId<HTMLButtonElement>("logout"),
  logoutAll: byTestId<HTMLButtonElement>("logout-all"),
  banner: byTestId("revoked-banner"),
  bannerText: byTestId("revoked-text"),
  loginAgain: byTestId<HTMLButtonElement>("login-again"),
  loginView: byTestId("login-view"),
  loginForm: byTestId<HTMLFormElement>("login-form"),
  username: byTestId<HTMLInputElement>("username"),
  password: byTestId<HTMLInputElement>("password"),
  loginButton: byTestId<HTMLButtonElement>("login-button"),
  registerButton: byTestId<HTMLButtonElement>("register-button"),
  guestButton: byTestId<HTMLButtonElement>("guest-button"),
  loginError: byTestId("login-error"),
  gameView: byTestId("game-view"),
  roomForm: byTestId<HTMLFormElement>("room-form"),
  roomInput: byTestId<HTMLInputElement>("room-input"),
  status: byTestId("status"),
  canvas: byTestId<HTMLCanvasElement>("arena"),
  players: byTestId<HTMLUListElement>("players"),
  playerCount: byTestId("player-count"),
  chatLog: byTestId<HTMLOListElement>("chat-log"),
  chatForm: byTestId<HTMLFormElement>("chat-form"),
  chatInput: byTestId<HTMLInputElement>("chat-input"),
  chatError: byTestId("chat-error"),
  sessions: byTestId<HTMLUListElement>("sessions"),
  sessionsRefresh: byTestId<HTMLButtonElement>("sessions-refresh"),
  sessionsError: byTestId("sessions-error"),
  passwordPanel: byTestId<HTMLDetailsElement>("password-panel"),
  passwordForm: byTestId<HTMLFormElement>("password-form"),
  oldPassword: byTestId<HTMLInputElement>("old-password"),
  newPassword: byTestId<HTMLInputElement>("new-password"),
  passwordSubmit: byTestId<HTMLButtonElement>("password-submit"),
  passwordMessage: byTestId("password-message"),
};
const views = [ui.loginView, ui.gameView];

// ---------------------------------------------------------------- client

const storage = webStorage(sessionStorage, "gatehouse.game");

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "another OS";
  return `${browser} on ${os}`;
}

// ---------------------------------------------------------------- game state

const players = new Map<string, PlayerView>();
let selfId: string | null = null;
let currentRoom: string | null = null;
/** where we believe we are (authoritative position corrected by each state tick) */
let predicted: { x: number; y: number } | null = null;
const STEP = MAX_SPEED / TICK_HZ;
const held = new Set<string>();
let moveTimer: ReturnType<typeof setInterval> | undefined;
let boundSocket: GameSocket | undefined;

const KEY_DIRS: Record<string, [number, number]> = {
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  w: [0, -1],
  s: [0, 1],
  a: [-1, 0],
  d: [1, 0],
};

async function main(): Promise<void> {
  // A duplicated tab arrives with a copy of this tab's session: it must not use it.
  const stored = storage.load();
  let duplicate = false;
  if (stored && !(await claimTab(stored.sessionId))) {
    storage.save(null);
    duplicate = true;
  }
  const client = new GatehouseClient({ baseUrl: location.origin, storage, device: deviceName() });
  wire(client);
  if (client.isLoggedIn) void enterGame(client);
  else showLogin(duplicate ? "This session is open in another tab. Log in or play as a guest here: each tab has its own session." : "");
}

function wire(client: GatehouseClient): void {
  client.on("session", (pair) => releaseTabsExcept(pair?.sessionId ?? null));
  client.on("revoked", (e) => showRevoked(e));
  client.on("error", (err) => setStatus(`Problem: ${errorText(err)}`));
  client.on("disconnect", (reason) => {
    stopMoving();
    if (client.isLoggedIn && reason !== "io client disconnect") setStatus("Connection lost; reconnecting…");
  });
  client.on("connect", () => {
    setStatus("Connected");
    // Bound here, not after connect() resolves: that may have timed out while the socket kept trying.
    if (client.socket) bindSocket(client.socket);
    // A (re)connection is a new player on the server: (re)join the room.
    void join(client, currentRoom ?? ui.roomInput.value);
  });

  ui.loginForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void signIn(client, "login");
  });
  ui.registerButton.addEventListener("click", () => void signIn(client, "register"));
  ui.guestButton.addEventListener("click", () => void signIn(client, "guest"));
  ui.loginAgain.addEventListener("click", () => {
    ui.banner.hidden = true;
    showLogin("");
  });
  ui.logout.addEventListener("click", () => void signOut(client, false));
  ui.logoutAll.addEventListener("click", () => void signOut(client, true));
  ui.roomForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void join(client, ui.roomInput.value.trim());
  });
  ui.chatForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void sendChat(client);
  });
  ui.sessionsRefresh.addEventListener("click", () => void loadSessions(client));
  ui.passwordForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void changePassword(client);
  });

  window.addEventListener("keydown", (ev) => onKey(client, ev, true));
  window.addEventListener("keyup", (ev) => onKey(client, ev, false));
  window.addEventListener("blur", () => stopMoving());
  ui.canvas.addEventListener("pointerdown", () => ui.canvas.focus());
  requestAnimationFrame(draw);
}

// ---------------------------------------------------------------- views

function showLogin(message: string): void {
  resetGame();
  ui.whoami.hidden = true;
  showOnly(ui.loginView, views);
  ui.loginError.textContent = message;
  ui.username.focus();
}

function showRevoked(e: RevokedEvent): void {
  resetGame();
  ui.whoami.hidden = true;
  showOnly(null, views);
  ui.bannerText.textContent = e.message || reasonText[e.reason];
  ui.banner.dataset.reason = e.reason;
  ui.banner.hidden = false;
  ui.loginAgain.focus();
}

function setStatus(text: string): void {
  ui.status.textContent = text;
}

function setBusy(busy: boolean): void {
  for (const b of [ui.loginButton, ui.registerButton, ui.guestButton]) b.disabled = busy;
}

async function signIn(client: GatehouseClient, how: "login" | "register" | "guest"): Promise<void> {
  ui.loginError.textContent = "";
  const username = ui.username.value.trim();
  const password = ui.password.value;
  if (how !== "guest") {
    if (!USERNAME_RE.test(username)) return fail("A username is 3-32 letters, digits, _ or -.", ui.username);
    if (password.length < 8) return fail("A password is at least 8 characters.", ui.password);
  }
  setBusy(true);
  try {
    const pair: TokenPair = how === "guest" ? await client.guest() : how === "register" ? await client.register(username, password) : await client.login(username, password);
    await claimTab(pair.sessionId);
    ui.password.value = "";
    await enterGame(client);
  } catch (err) {
    fail(errorText(err), how === "guest" ? ui.guestButton : ui.username);
  } finally {
    setBusy(false);
  }

  function fail(text: string, focus: HTMLElement): void {
    ui.loginError.textContent = text;
    focus.focus();
  }
}

async function signOut(client: GatehouseClient, everywhere: boolean): Promise<void> {
  try {
    await (everywhere ? client.logoutAll() : client.logout());
    showLogin(everywhere ? "You signed out everywhere." : "You signed out.");
  } catch (err) {
    showLogin(`Signed out here, but the server could not be told: ${errorText(err)}`);
  }
}

async function enterGame(client: GatehouseClient): Promise<void> {
  const user = client.user;
  if (!user) return showLogin("");
  ui.banner.hidden = true;
  ui.whoami.hidden = false;
  ui.whoamiName.textContent = user.username;
  // Guests have no password to change.
  ui.passwordPanel.hidden = isGuestName(user.username);
  ui.passwordPanel.open = false;
  ui.passwordMessage.textContent = "";
  showOnly(ui.gameView, views);
  setStatus("Connecting…");
  try {
    await client.connect();
    ui.canvas.focus();
    void loadSessions(client);
  } catch (err) {
    if (sessionIsDead(err)) {
      // A stored session that died while the tab was closed: forget it quietly.
      client.forget();
      showLogin(errorText(err));
    } else {
      setStatus(`Problem: ${errorText(err)}`);
    }
  }
}

// ---------------------------------------------------------------- socket

function bindSocket(socket: GameSocket): void {
  if (boundSocket === socket) return;
  boundSocket = socket;
  socket.on(Events.STATE, (st) => onState(st));
  socket.on(Events.PLAYER_LEFT, (p) => {
    players.delete(p.playerId);
    renderPlayerList();
  });
  socket.on(Events.CHAT_MESSAGE, (m) => addChat(m));
}

async function join(client: GatehouseClient, roomId: string): Promise<void> {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(roomId)) {
    setStatus("A room name is 1-32 letters, digits, _ or -.");
    ui.roomInput.focus();
    return;
  }
  try {
    const { room, you } = await client.joinRoom(roomId);
    currentRoom = room.id;
    selfId = you.playerId;
    predicted = { x: you.x, y: you.y };
    players.clear();
    for (const p of room.players) players.set(p.playerId, p);
    renderPlayerList();
    ui.chatLog.replaceChildren();
    setStatus(`In room “${room.id}”`);
    ui.gameView.dataset.room = room.id;
  } catch (err) {
    setStatus(`Could not join: ${errorText(err)}`);
  }
}

function onState(st: StatePayload): void {
  if (st.roomId !== currentRoom) return;
  players.clear();
  for (const p of st.players) players.set(p.playerId, p);
  const me = selfId ? players.get(selfId) : undefined;
  // Drift correction: snap the prediction back when the server disagrees by more than a few steps.
  if (me && (!predicted || Math.hypot(me.x - predicted.x, me.y - predicted.y) > 3 * STEP || held.size === 0)) predicted = { x: me.x, y: me.y };
  renderPlayerList();
}

function resetGame(): void {
  stopMoving();
  players.clear();
  selfId = null;
  currentRoom = null;
  predicted = null;
  boundSocket = undefined;
  renderPlayerList();
  ui.chatLog.replaceChildren();
  ui.sessions.replaceChildren();
  delete ui.gameView.dataset.room;
}

// ---------------------------------------------------------------- movement

function onKey(client: GatehouseClient, ev: KeyboardEvent, down: boolean): void {
  const target = ev.target as HTMLElement | null;
  if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (!(key in KEY_DIRS) || ui.gameView.hidden) return;
  ev.preventDefault();
  if (down) held.add(key);
  else held.delete(key);
  if (held.size > 0 && moveTimer === undefined) {
    step(client);
    moveTimer = setInterval(() => step(client), 1000 / TICK_HZ);
  } else if (held.size === 0) {
    stopMoving();
  }
}

function step(client: GatehouseClient): void {
  if (!predicted || !currentRoom) return;
  let dx = 0;
  let dy = 0;
  for (const k of held) {
    const d = KEY_DIRS[k];
    if (d) {
      dx += d[0];
      dy += d[1];
    }
  }
  const len = Math.hypot(dx, dy);
  if (len === 0) return;
  predicted = {
    x: Math.min(ARENA.width, Math.max(0, predicted.x + (dx / len) * STEP)),
    y: Math.min(ARENA.height, Math.max(0, predicted.y + (dy / len) * STEP)),
  };
  client.move(predicted.x, predicted.y);
}

function stopMoving(): void {
  held.clear();
  if (moveTimer !== undefined) clearInterval(moveTimer);
  moveTimer = undefined;
}

// ---------------------------------------------------------------- rendering

const ctx = ui.canvas.getContext("2d");

function colorOf(userId: string): string {
  let h = 0;
  for (let i = 0; i < userId.length; i++) h = (h * 31 + userId.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 55% 55%)`;
}

function draw(): void {
  requestAnimationFrame(draw);
  if (!ctx || ui.gameView.hidden) return;
  const { width, height } = ARENA;
  ctx.fillStyle = "#10151f";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#1c2533";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let x = 50; x < width; x += 50) {
    ctx.moveTo(x + 0.5, 0);
    ctx.lineTo(x + 0.5, height);
  }
  for (let y = 50; y < height; y += 50) {
    ctx.moveTo(0, y + 0.5);
    ctx.lineTo(width, y + 0.5);
  }
  ctx.stroke();
  if (!currentRoom) {
    ctx.fillStyle = "#8a96a8";
    ctx.font = "20px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("Join a room to play", width / 2, height / 2);
    return;
  }
  // Others first, self on top.
  const list = [...players.values()].sort((a, b) => Number(a.playerId === selfId) - Number(b.playerId === selfId));
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  for (const p of list) {
    const self = p.playerId === selfId;
    ctx.beginPath();
    ctx.arc(p.x, p.y, self ? 13 : 11, 0, Math.PI * 2);
    ctx.fillStyle = self ? "#ffd34d" : colorOf(p.userId);
    ctx.fill();
    ctx.lineWidth = self ? 4 : 2;
    ctx.strokeStyle = self ? "#ffffff" : "#0b0f16";
    ctx.stroke();
    ctx.font = self ? "bold 14px system-ui, sans-serif" : "13px system-ui, sans-serif";
    ctx.fillStyle = self ? "#ffe58f" : "#e6ebf2";
    const labelY = p.y - 18 < 16 ? p.y + 34 : p.y - 18;
    ctx.fillText(self ? `${p.username} (you)` : p.username, Math.min(width - 60, Math.max(60, p.x)), labelY);
  }
}

/** The list beside the canvas mirrors what is drawn; its data-* attributes are the page's state for tests. */
function renderPlayerList(): void {
  const seen = new Set<string>();
  for (const p of players.values()) {
    seen.add(p.playerId);
    let li = ui.players.querySelector<HTMLLIElement>(`li[data-player-id="${CSS.escape(p.playerId)}"]`);
    const self = p.playerId === selfId;
    if (!li) {
      li = el("li", { "data-testid": "player", "data-player-id": p.playerId });
      const dot = el("span", { class: "dot", "aria-hidden": "true" });
      dot.style.background = self ? "#ffd34d" : colorOf(p.userId); // CSSOM, not a style attribute: the CSP refuses those
      li.append(dot, el("span", { class: "name" }), el("span", { class: "pos" }));
      ui.players.append(li);
    }
    li.dataset.userId = p.userId;
    li.dataset.username = p.username;
    li.dataset.x = String(p.x);
    li.dataset.y = String(p.y);
    li.dataset.self = String(self);
    li.classList.toggle("self", self);
    li.querySelector(".name")!.textContent = self ? `${p.username} (you)` : p.username;
    li.querySelector(".pos")!.textContent = `${Math.round(p.x)}, ${Math.round(p.y)}`;
  }
  for (const li of Array.from(ui.players.children) as HTMLElement[]) if (!seen.has(li.dataset.playerId ?? "")) li.remove();
  ui.playerCount.textContent = players.size ? `(${players.size})` : "";
}

// ---------------------------------------------------------------- chat

function addChat(m: ChatMessage): void {
  const li = el("li", { "data-testid": "chat-message" }, el("time", { datetime: new Date(m.at).toISOString() }, formatTime(m.at)), " ", el("b", {}, m.username), ": ", m.text);
  ui.chatLog.append(li);
  while (ui.chatLog.children.length > 100) ui.chatLog.firstElementChild?.remove();
  li.scrollIntoView({ block: "nearest" });
}

async function sendChat(client: GatehouseClient): Promise<void> {
  const text = ui.chatInput.value.trim();
  ui.chatError.textContent = "";
  if (!text) return;
  try {
    await client.chat(text);
    ui.chatInput.value = "";
  } catch (err) {
    ui.chatError.textContent = errorText(err);
  }
}

// ---------------------------------------------------------------- sessions

async function loadSessions(client: GatehouseClient): Promise<void> {
  ui.sessionsError.textContent = "";
  try {
    // This device first, then the others newest first (the server's order).
    const list = (await client.sessions()).sort((a, b) => Number(b.current) - Number(a.current));
    ui.sessions.replaceChildren(
      ...list.map((s) => {
        const li = el(
          "li",
          { "data-testid": "session-row", "data-session-id": s.sessionId, "data-current": String(s.current) },
          el("div", { class: "device" }, s.device, s.current ? el("span", { class: "badge" }, "this device") : null, s.online ? el("span", { class: "badge online" }, "online") : null),
          el("div", { class: "meta" }, `signed in ${formatDateTime(s.createdAt)} · last seen ${formatDateTime(s.lastSeenAt)}`),
        );
        if (!s.current) {
          const button = el("button", { type: "button", "data-testid": "revoke-session", "aria-label": `Sign out ${s.device} (signed in ${formatDateTime(s.createdAt)})` }, "Sign out this device");
          button.addEventListener("click", () => void revoke(client, s.sessionId, button));
          li.append(button);
        }
        return li;
      }),
    );
  } catch (err) {
    ui.sessionsError.textContent = errorText(err);
  }
}

/** Every other device is signed out (`password_changed`); this tab carries on with the fresh pair on a new session. */
async function changePassword(client: GatehouseClient): Promise<void> {
  const msg = ui.passwordMessage;
  msg.className = "error";
  msg.textContent = "";
  if (ui.newPassword.value.length < 8) {
    msg.textContent = "A password is at least 8 characters.";
    return ui.newPassword.focus();
  }
  ui.passwordSubmit.disabled = true;
  try {
    const pair = await client.changePassword(ui.oldPassword.value, ui.newPassword.value);
    await claimTab(pair.sessionId);
    releaseTabsExcept(pair.sessionId);
    ui.oldPassword.value = "";
    ui.newPassword.value = "";
    msg.className = "success";
    msg.textContent = "Password changed. Your other devices were signed out.";
    void loadSessions(client);
  } catch (err) {
    msg.textContent = err instanceof GatehouseClientError && err.code === ErrorCode.CREDENTIALS_INVALID ? "The current password is wrong." : errorText(err);
    ui.oldPassword.focus();
  } finally {
    ui.passwordSubmit.disabled = false;
  }
}

async function revoke(client: GatehouseClient, sessionId: string, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  try {
    await client.revokeSession(sessionId);
  } catch (err) {
    ui.sessionsError.textContent = errorText(err);
  }
  await loadSessions(client);
  ui.sessionsRefresh.focus();
}

void main();
