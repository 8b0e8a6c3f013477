/** Real socket.io clients for tests, with promises for the events that matter. */
import { io, type Socket } from "socket.io-client";
import type { SessionRevokedPayload } from "../../shared/protocol";

export interface TestSocket {
  socket: Socket;
  /** resolves with the session:revoked payload and the disconnect reason once both arrived */
  revoked: Promise<{ reason: string; message?: string; disconnectReason: string }>;
  /** every session:revoked payload received */
  revocations: SessionRevokedPayload[];
  close(): void;
}

/** Connects with `auth.token`; rejects with the connect_error (message = code, data = {code, message}). */
export function connect(url: string, token: unknown, extra: Record<string, unknown> = {}): Promise<TestSocket> {
  const socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: true, forceNew: true, ...extra });
  const revocations: SessionRevokedPayload[] = [];
  const revoked = new Promise<{ reason: string; message?: string; disconnectReason: string }>((resolve) => {
    let payload: SessionRevokedPayload | undefined;
    socket.on("session:revoked", (p: SessionRevokedPayload) => {
      revocations.push(p);
      payload = p;
    });
    socket.on("disconnect", (disconnectReason) => {
      if (payload) resolve({ ...payload, disconnectReason });
    });
  });
  revoked.catch(() => undefined);
  return new Promise((resolve, reject) => {
    // Each listener removes the other: a connect_error during a later reconnection must not
    // reach this first-connection handler (it would stop the client's reconnecting).
    const onConnect = () => {
      socket.off("connect_error", onError);
      resolve({ socket, revoked, revocations, close: () => socket.disconnect() });
    };
    const onError = (err: Error & { data?: unknown }) => {
      socket.off("connect", onConnect);
      socket.disconnect();
      reject(err);
    };
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
  });
}

/** The connect_error a refused handshake produces. */
export async function refusedCode(url: string, token: unknown, extra: Record<string, unknown> = {}): Promise<{ message: string; data: any }> {
  try {
    const s = await connect(url, token, extra);
    s.close();
    return { message: "CONNECTED", data: undefined };
  } catch (err) {
    const e = err as Error & { data?: any };
    return { message: e.message, data: e.data };
  }
}

/** Emits with an ack, with a timeout so a missing ack fails the test instead of hanging it. */
export function emitAck<T = any>(socket: Socket, event: string, payload: unknown, timeoutMs = 5000): Promise<T> {
  return socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<T>;
}

/** Resolves on the next `event`, or rejects after timeoutMs. */
export function nextEvent<T = any>(socket: Socket, event: string, timeoutMs = 5000, filter: (p: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timed out waiting for ${event}`));
    }, timeoutMs);
    const handler = (p: T) => {
      if (!filter(p)) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(p);
    };
    socket.on(event, handler);
  });
}
