/** socket.io clients for the bench: many of them, each recording what happened to it and when. */
import { performance } from "node:perf_hooks";
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { SessionRevokedPayload } from "../../shared/protocol";
import { mapLimit } from "./stats";

export interface BenchSocket {
  socket: Socket;
  /** index of the node it is connected to */
  node: number;
  /** every session:revoked payload received */
  revocations: SessionRevokedPayload[];
  /** performance.now() of the disconnect event, null while connected */
  disconnectedAt: number | null;
  disconnectReason: string | null;
  /** true when a session:revoked arrived before the disconnect */
  toldWhy: boolean;
  /** resolves at the disconnect event */
  gone: Promise<void>;
}

/** Every bench socket not yet disconnected, so a failing run can still close them all. */
export const liveSockets = new Set<Socket>();

/** Client options every bench socket uses: websocket only, one engine per socket, never reconnect. */
export const CLIENT_OPTS: Partial<ManagerOptions & SocketOptions> = { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 20_000 };

/** Connects one authenticated socket; rejects with the connect_error. */
export function openSocket(url: string, token: string, node: number): Promise<BenchSocket> {
  const socket = io(url, { ...CLIENT_OPTS, auth: { token } });
  liveSockets.add(socket);
  let markGone!: () => void;
  const bs: BenchSocket = {
    socket,
    node,
    revocations: [],
    disconnectedAt: null,
    disconnectReason: null,
    toldWhy: false,
    gone: new Promise<void>((resolve) => (markGone = resolve)),
  };
  socket.on("session:revoked", (p: SessionRevokedPayload) => {
    bs.revocations.push(p);
    if (bs.disconnectedAt === null) bs.toldWhy = true;
  });
  socket.on("disconnect", (reason) => {
    bs.disconnectedAt = performance.now();
    bs.disconnectReason = reason;
    liveSockets.delete(socket);
    markGone();
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(bs));
    socket.once("connect_error", (err: Error) => {
      socket.disconnect();
      liveSockets.delete(socket);
      reject(new Error(`socket to ${url} refused: ${err.message}`));
    });
  });
}

export interface SocketSpec {
  url: string;
  token: string;
  node: number;
}

/** Opens many sockets with at most `concurrency` handshakes in flight. */
export function openMany(specs: readonly SocketSpec[], concurrency: number): Promise<BenchSocket[]> {
  return mapLimit(specs, concurrency, (s) => openSocket(s.url, s.token, s.node));
}

/** Client-side close of whatever is still connected. */
export function closeAll(sockets: Iterable<BenchSocket>): void {
  for (const s of sockets) if (s.socket.connected || s.socket.active) s.socket.disconnect();
}
