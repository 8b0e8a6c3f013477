/**
 * GET /tictactoe — the second game: log in or play as guest, "Find a game"
 * (matched with a player on any node), a 3x3 board fed by `ttt:state`, and the
 * same revoked banner as the arena. A page of its own session (sessionStorage).
 */
import { USERNAME_RE, reasonText, type TicTacToeState, type TicTacToeYou } from "../../shared/protocol";
import { GatehouseClient, webStorage, type RevokedEvent } from "../sdk";
import { byTestId, errorText, showOnly } from "./dom";

const ui = {
  whoami: byTestId("whoami"),
  whoamiName: byTestId("whoami-name"),
  logout: byTestId<HTMLButtonElement>("logout"),
  banner: byTestId("revoked-banner"),
  bannerText: byTestId("revoked-text"),
  loginAgain: byTestId<HTMLButtonElement>("login-again"),
  loginView: byTestId("login-view"),
  loginForm: byTestId<HTMLFormElement>("login-form"),
  username: byTestId<HTMLInputElement>("username"),
  password: byTestId<HTMLInputElement>("password"),
  guestButton: byTestId<HTMLButtonElement>("guest-button"),
  loginError: byTestId("login-error"),
  view: byTestId("ttt-view"),
  find: byTestId<HTMLButtonElement>("find-game"),
  leave: byTestId<HTMLButtonElement>("leave-game"),
  status: byTestId("ttt-status"),
  players: byTestId("ttt-players"),
  board: byTestId("board"),
  error: byTestId("ttt-error"),
};
const views = [ui.loginView, ui.view];

const cells = Array.from({ length: 9 }, (_, i) => {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.testid = `cell-${i}`;
  b.setAttribute("aria-label", `Cell ${i + 1}`);
  ui.board.append(b);
  return b;
});

let game: TicTacToeState | null = null;
let you: TicTacToeYou | null = null;

function main(): void {
  const client = new GatehouseClient({ baseUrl: location.origin, storage: webStorage(sessionStorage, "gatehouse.tictactoe"), device: "tic-tac-toe page" });
  client.on("revoked", (e) => showRevoked(e));
  client.on("error", (err) => (ui.error.textContent = errorText(err)));
  client.on("connect", () => {
    setStatus(game && game.status !== "over" ? "Reconnected: that game is lost." : "Connected.");
    game = null;
    render();
    const s = client.socket!;
    s.off("ttt:state").off("ttt:you");
    s.on("ttt:state", (st) => {
      game = st;
      render();
    });
    s.on("ttt:you", (y) => {
      you = y;
      render();
    });
  });

  ui.loginForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const username = ui.username.value.trim();
    if (!USERNAME_RE.test(username)) return void (ui.loginError.textContent = "A username is 3-32 letters, digits, _ or -.");
    void signIn(client, () => client.login(username, ui.password.value));
  });
  ui.guestButton.addEventListener("click", () => void signIn(client, () => client.guest()));
  ui.loginAgain.addEventListener("click", () => showLogin());
  ui.logout.addEventListener("click", () => void client.logout().finally(() => showLogin()));
  ui.find.addEventListener("click", () => void findGame(client));
  ui.leave.addEventListener("click", () => void act(() => client.leaveTicTacToe(), "Left."));
  cells.forEach((b, i) => b.addEventListener("click", () => void act(() => client.playTicTacToe(i))));

  if (client.isLoggedIn) void enter(client);
  else showLogin();
}

async function signIn(client: GatehouseClient, how: () => Promise<unknown>): Promise<void> {
  ui.loginError.textContent = "";
  try {
    await how();
    ui.password.value = "";
    await enter(client);
  } catch (err) {
    ui.loginError.textContent = errorText(err);
  }
}

async function enter(client: GatehouseClient): Promise<void> {
  ui.banner.hidden = true;
  ui.whoamiName.textContent = client.user?.username ?? "";
  ui.whoami.hidden = false;
  showOnly(ui.view, views);
  try {
    await client.connect();
  } catch (err) {
    setStatus(errorText(err));
  }
}

async function findGame(client: GatehouseClient): Promise<void> {
  game = null;
  you = null;
  render();
  await act(async () => {
    const r = await client.queueTicTacToe();
    setStatus(r.status === "waiting" ? "Waiting for an opponent…" : "Matched!");
  });
}

async function act(run: () => Promise<unknown>, done?: string): Promise<void> {
  ui.error.textContent = "";
  try {
    await run();
    if (done) setStatus(done);
  } catch (err) {
    ui.error.textContent = errorText(err);
  }
}

function render(): void {
  const g = game;
  const mine = you && g && you.roomId === g.roomId ? you : null;
  cells.forEach((b, i) => {
    b.textContent = g?.board[i] ?? "";
    b.disabled = !g || g.status !== "playing" || !mine?.yourTurn || g.board[i] !== "";
    b.classList.toggle("win", !!g?.result?.line?.includes(i));
  });
  ui.leave.hidden = !g || g.status === "over";
  ui.players.textContent = g ? g.players.map((p) => `${p.mark}: ${p.username}${p.mark === mine?.mark ? " (you)" : ""}`).join(" · ") : "";
  if (!g) return;
  ui.view.dataset.status = g.status;
  if (g.status === "waiting") setStatus("Waiting for your opponent…");
  else if (g.status === "playing") setStatus(mine?.yourTurn ? `Your turn (${mine.mark}).` : "Their turn.");
  else setStatus(resultText(g, mine));
}

function resultText(g: TicTacToeState, mine: TicTacToeYou | null): string {
  const r = g.result!;
  if (r.winner === null) return r.reason === "draw" ? "Draw." : "Game called off: your opponent never arrived.";
  const won = r.winner === mine?.mark;
  if (r.reason === "forfeit") return won ? "You win: your opponent left." : "You left: game lost.";
  return won ? "You win!" : "You lose.";
}

function setStatus(text: string): void {
  ui.status.textContent = text;
}

function showLogin(): void {
  ui.whoami.hidden = true;
  showOnly(ui.loginView, views);
}

function showRevoked(e: RevokedEvent): void {
  game = null;
  ui.whoami.hidden = true;
  showOnly(null, views);
  ui.bannerText.textContent = e.message || reasonText[e.reason];
  ui.banner.dataset.reason = e.reason;
  ui.banner.hidden = false;
}

main();
