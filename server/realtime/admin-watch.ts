/**
 * The admin dashboard's online list, pushed over the admin's own socket instead of polled
 * (docs/api.md, "Admin socket events"). A socket sends `admin:watch`; if its user record is an
 * admin's, it joins the local room `gatehouse:admins` and gets `admin:players` (the list of
 * GET /admin/players) at once and after every presence change anywhere in the cluster.
 *
 * Across nodes: a node whose presence changed (once written) tells the others with a tiny
 * serverSideEmit through the adapter; each node holding watchers re-reads the list and pushes it to
 * its own watchers. Both the signal and the push are throttled (PUSH_INTERVAL_MS), so an admin gets
 * a few pushes a second at most whatever the churn, and nodes without watchers read nothing.
 * A revoked admin's socket is disconnected by the gateway, and with it leaves the room.
 */
import type { Server } from "socket.io";
import type { Logger } from "pino";
import { ErrorCode, errorMessage } from "../../shared/errors";
import { AdminEvents, EmptyPayload, type Ack, type OnlinePlayer } from "../../shared/protocol";
import { describeInvalid } from "../http/validate";
import { Throttle } from "../util/throttle";
import type { GameSocket, Gateway } from "./gateway";
import { onlinePlayers, type Presence } from "./presence";

export interface AdminWatchDeps {
  io: Server;
  gateway: Gateway;
  presence: Presence;
  log: Logger;
  nodeId: string;
  /** from the user record, not the role claim: a demoted admin's claim still says admin (pitfall 16) */
  isAdmin(userId: string): Promise<boolean>;
}

/** The local socket.io room of the watching admin sockets. */
export const ADMINS_ROOM = "gatehouse:admins";
/** Between two pushes to the watchers of a node, and between two signals of a node. */
export const PUSH_INTERVAL_MS = 250;
/** A dead node's players vanish from presence when its keys expire, with nobody to signal it: re-read this often. */
const RECHECK_MS = 5000;
/** Node to node: "my presence changed", with the sender's node id. */
const SIGNAL = "gh:admin:presence";

export class AdminWatch {
  private readonly push = new Throttle(() => this.pushList(), PUSH_INTERVAL_MS);
  private readonly signal = new Throttle(() => this.signalOthers(), PUSH_INTERVAL_MS);
  private readonly recheck: NodeJS.Timeout;
  /** the list last pushed (JSON), to skip pushes that change nothing */
  private last = "";
  /** a watcher joined since the last push: it has no list yet */
  private joined = false;

  constructor(private readonly deps: AdminWatchDeps) {
    deps.presence.onChange(() => {
      this.signal.trigger();
      this.refresh();
    });
    deps.io.on(SIGNAL, (from: unknown) => {
      if (from !== deps.nodeId) this.refresh();
    });
    // One listener for every socket (socket.io passes the socket as `this`): no closure per socket.
    const watch = this;
    const onWatch = function (this: GameSocket, payload: unknown, ack: unknown): void {
      void watch.watch(this, payload, ack);
    };
    deps.gateway.onSocket((socket) => socket.on(AdminEvents.WATCH, onWatch));
    this.recheck = setInterval(() => this.refresh(), RECHECK_MS).unref();
  }

  close(): void {
    clearInterval(this.recheck);
    this.push.close();
    this.signal.close();
  }

  /** Watching sockets on this node. */
  get watchers(): number {
    return this.deps.io.of("/").adapter.rooms.get(ADMINS_ROOM)?.size ?? 0;
  }

  private async watch(socket: GameSocket, payload: unknown, ack: unknown): Promise<void> {
    const reply = typeof ack === "function" ? (ack as (a: Ack) => void) : () => undefined;
    const parsed = EmptyPayload.safeParse(payload);
    if (!parsed.success) return reply(fail(ErrorCode.VALIDATION_FAILED, describeInvalid(parsed.error, "payload")));
    const { claims } = socket.data;
    let admin: boolean;
    try {
      admin = claims.role === "admin" && (await this.deps.isAdmin(claims.sub));
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, "admin watch: could not read the user record");
      return reply(fail(ErrorCode.INTERNAL));
    }
    if (!admin) return reply(fail(ErrorCode.FORBIDDEN));
    if (!socket.connected || socket.data.revoked) return;
    void socket.join(ADMINS_ROOM);
    this.joined = true;
    reply({ ok: true });
    this.push.trigger();
  }

  private refresh(): void {
    if (this.watchers > 0) this.push.trigger();
  }

  private async pushList(): Promise<void> {
    if (this.watchers === 0) return;
    let players: OnlinePlayer[];
    try {
      players = onlinePlayers(await this.deps.presence.list());
    } catch (err) {
      // The next change or recheck tries again.
      this.deps.log.warn({ err: (err as Error).message }, "admin watch: could not read presence");
      return;
    }
    const json = JSON.stringify(players);
    if (json === this.last && !this.joined) return;
    this.last = json;
    this.joined = false;
    this.deps.io.local.to(ADMINS_ROOM).emit(AdminEvents.PLAYERS, players);
  }

  private signalOthers(): void {
    // Without an adapter that reaches other servers (one node, or an embedder's io without the
    // Redis adapter), there is nobody to tell, and the in-memory adapter would only warn.
    if (spansNodes(this.deps.io)) this.deps.io.serverSideEmit(SIGNAL, this.deps.nodeId);
  }
}

/**
 * Whether `io`'s adapter reaches other servers: its serverSideEmit overrides a parent's (the
 * Redis and cluster adapters override the in-memory base, whose own only logs a warning).
 * socket.io does not export that base class to compare with.
 */
function spansNodes(io: Server): boolean {
  let proto: object | null = Object.getPrototypeOf(io.of("/").adapter) as object | null;
  while (proto && !Object.prototype.hasOwnProperty.call(proto, "serverSideEmit")) proto = Object.getPrototypeOf(proto) as object | null;
  const parent = proto ? (Object.getPrototypeOf(proto) as object | null) : null;
  return parent !== null && "serverSideEmit" in parent;
}

function fail(code: ErrorCode, message: string = errorMessage[code]): Ack {
  return { ok: false, error: { code, message } };
}
