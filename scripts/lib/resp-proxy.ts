/**
 * A TCP proxy between Gatehouse nodes and Redis that can refuse subscriptions
 * while passing every other command: the "feed down, commands fine" outage some
 * Redis proxies cause. The soak (`--fault subscribe-refused`) and its tests put
 * it in front of Redis (REDIS_URL = the proxy).
 *
 * Client -> server bytes are parsed as RESP command arrays, just enough to read
 * each command's name. A refused SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE is not
 * answered by the proxy itself: it is forwarded renamed, so Redis answers
 * `-ERR unknown command` in its place and replies stay in pipeline order.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";

const SUBSCRIBE_COMMANDS = new Set(["subscribe", "psubscribe", "ssubscribe"]);
/** What Redis sees instead of a refused subscription (and names in its -ERR). */
const REFUSED_NAME = "SUBSCRIBE-REFUSED-BY-PROXY";

export interface RespProxy {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  /** from now on, answer every (P|S)SUBSCRIBE with an error (true) or pass it again (false) */
  refuseSubscribe(on: boolean): void;
  /** closes every connection that has asked to subscribe (their clients reconnect and subscribe again); returns how many */
  cutSubscribers(): number;
  /** subscriptions refused so far */
  readonly refused: number;
  close(): Promise<void>;
}

/** Splits a byte stream into RESP commands; each complete command comes back as its raw bytes and its lower-cased name. */
export class RespCommandReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { raw: Buffer; name: string }[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: { raw: Buffer; name: string }[] = [];
    for (;;) {
      const end = this.commandEnd();
      if (end === null) break;
      out.push({ raw: this.buf.subarray(0, end.at), name: end.name });
      this.buf = this.buf.subarray(end.at);
    }
    return out;
  }

  /** Where the first complete command ends, or null if more bytes are needed. */
  private commandEnd(): { at: number; name: string } | null {
    const b = this.buf;
    if (b.length === 0) return null;
    const line = (from: number) => {
      const nl = b.indexOf("\r\n", from);
      return nl < 0 ? null : { text: b.toString("latin1", from, nl), next: nl + 2 };
    };
    if (b[0] !== 0x2a /* '*' */) {
      // An inline command (redis-cli style): one line.
      const l = line(0);
      return l ? { at: l.next, name: l.text.trim().split(/\s+/)[0]!.toLowerCase() } : null;
    }
    const head = line(0);
    if (!head) return null;
    const count = Number(head.text.slice(1));
    let at = head.next;
    let name = "";
    for (let i = 0; i < count; i++) {
      const len = line(at);
      if (!len) return null;
      const n = Number(len.text.slice(1));
      if (len.next + n + 2 > b.length) return null;
      if (i === 0) name = b.toString("latin1", len.next, len.next + n).toLowerCase();
      at = len.next + n + 2;
    }
    return { at, name };
  }
}

/** `-ERR`-producing replacement for a subscription command (same arguments, unknown name). */
function renamed(raw: Buffer, name: string): Buffer {
  // "*N\r\n$<len>\r\n<name>\r\n..." -> same with REFUSED_NAME.
  const firstBulk = raw.indexOf("\r\n") + 2;
  const nameStart = raw.indexOf("\r\n", firstBulk) + 2;
  const rest = raw.subarray(nameStart + name.length + 2);
  return Buffer.concat([raw.subarray(0, firstBulk), Buffer.from(`$${REFUSED_NAME.length}\r\n${REFUSED_NAME}\r\n`), rest]);
}

export async function startRespProxy(upstream: { host?: string; port: number }): Promise<RespProxy> {
  let refusing = false;
  let refused = 0;
  const conns = new Set<{ client: Socket; up: Socket; subscriber: boolean }>();

  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    const up = tcpConnect(upstream.port, upstream.host ?? "127.0.0.1");
    up.setNoDelay(true);
    const conn = { client, up, subscriber: false };
    conns.add(conn);
    const reader = new RespCommandReader();
    const end = () => {
      conns.delete(conn);
      client.destroy();
      up.destroy();
    };
    client.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
    up.pipe(client);
    client.on("data", (chunk: Buffer) => {
      const parts: Buffer[] = [];
      for (const cmd of reader.push(chunk)) {
        const sub = SUBSCRIBE_COMMANDS.has(cmd.name);
        if (sub) conn.subscriber = true;
        if (sub && refusing && cmd.raw[0] === 0x2a) {
          refused++;
          parts.push(renamed(cmd.raw, cmd.name));
        } else parts.push(cmd.raw);
      }
      if (parts.length > 0 && !up.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts))) {
        client.pause();
        up.once("drain", () => client.resume());
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    refuseSubscribe: (on) => void (refusing = on),
    cutSubscribers: () => {
      let n = 0;
      for (const c of [...conns]) {
        if (!c.subscriber) continue;
        n++;
        c.client.destroy();
        c.up.destroy();
        conns.delete(c);
      }
      return n;
    },
    get refused() {
      return refused;
    },
    close: async () => {
      for (const c of conns) {
        c.client.destroy();
        c.up.destroy();
      }
      conns.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
