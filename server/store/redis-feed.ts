/**
 * RedisFeed: the revocation feed (feed.ts) over a RedisStore's Redis. Events and acknowledgements
 * travel on sharded pub/sub channels of the {g} slot: the store SPUBLISHes each event from inside
 * the script that assigns its seq (the publish stays atomic with the revocation); this is the
 * receiving half (SSUBSCRIBE), the acknowledgements and the seq probe. Built with
 * `RedisFeed.for(store)`, on the store's connections, key names and confirmations. Each
 * subscriber is a plain connection of our own to the primary that serves {g}, on a single primary
 * and on a cluster alike, so this module knows exactly when the subscription holds: any drop
 * (a lost connection, a failover, the slot moving away, which Redis announces with an unsolicited
 * SUNSUBSCRIBE) reports `lost`, and the next subscription, made on whichever primary serves {g}
 * then, reports `resumed` so the node resyncs before it trusts its cache again. (A Redis 6.2
 * primary has no sharded pub/sub: there the same channels are classic ones, see Topology.pubsub.)
 */
import { Redis, type RedisOptions } from "ioredis";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { Confirmations } from "./confirmations";
import type { FeedStatusListener, FeedSubscription, RevocationFeed } from "./feed";
import type { RedisStore } from "./redis";
import { parseAck, parseEvent } from "./redis-codec";
import type { Keys } from "./redis-keys";
import type { Topology } from "./redis-topology";
import type { RevocationEvent } from "./store";

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const RETRY_MAX_MS = 1_000;

/** What a RedisFeed shares with the RedisStore it rides on (see RedisStore.feedBase). */
export interface FeedBase {
  topology: Topology;
  keys: Keys;
  log: StoreLogger;
  /**
   * the store's publishes record how many subscribers each event reached (the count SPUBLISH
   * returns inside its script); the feed counts the acknowledgements against it
   */
  confirmations: Confirmations;
  /** reads the seq counter, failing as every store call does (REVOCATION_UNAVAILABLE) */
  currentSeq(): Promise<number>;
  /**
   * the store closes the feed before its own connections, whatever order the owner closes them in
   * (a feed on a closed store would retry its subscriber forever); a closed store closes it at once
   */
  attach(feed: RevocationFeed): void;
}

export class RedisFeed implements RevocationFeed {
  /** open subscriptions, closed with the feed */
  private readonly subscriptions = new Set<FeedSubscription>();
  private closed = false;

  private constructor(private readonly base: FeedBase) {}

  /** The feed of `store`'s Redis: the channels its applyRevocation publishes on. */
  static for(store: RedisStore): RedisFeed {
    const base = store.feedBase();
    const feed = new RedisFeed(base);
    base.attach(feed);
    return feed;
  }

  subscribe(onEvent: (e: RevocationEvent) => void, status: FeedStatusListener, opts: { nodeId?: string } = {}): FeedSubscription {
    if (this.closed) {
      const ready = Promise.reject(new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE));
      ready.catch(() => {});
      return { ready, close: async () => {} };
    }
    const sub: FeedSubscription = openSubscription(this.base, onEvent, status, opts.nodeId, () => this.subscriptions.delete(sub));
    this.subscriptions.add(sub);
    return sub;
  }

  acknowledge(e: RevocationEvent, nodeId: string): void {
    // Our own event: counted here, no round trip through Redis.
    if (e.nodeId === nodeId) return this.base.confirmations.confirm(e.seq);
    sendAck(this.base.topology, this.base.keys, e);
  }

  confirmApplied(e: RevocationEvent, timeoutMs: number): Promise<number> {
    return this.base.confirmations.wait(e.seq, timeoutMs);
  }

  currentSeq(): Promise<number> {
    return this.base.currentSeq();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.base.confirmations.clear();
    // Through each subscription's own close, so none reports "lost" on the way out.
    await Promise.all([...this.subscriptions].map((s) => s.close()));
  }
}

function openSubscription(d: FeedBase, onEvent: (e: RevocationEvent) => void, status: FeedStatusListener, nodeId: string | undefined, onClose: () => void): FeedSubscription {
  const { log, confirmations } = d;
  const channel = d.keys.channel;
  const ackChannel = nodeId === undefined ? null : d.keys.acks(nodeId);

  let resolveReady!: () => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => {}); // nobody awaiting it must not mean an unhandled rejection

  let sub: Redis | null = null;
  let subscribedOnce = false;
  let lost = false;
  let closed = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;

  const markLost = (why: string): void => {
    if (closed || !subscribedOnce || lost) return;
    lost = true;
    log.warn({ why }, "revocation feed lost");
    status.onLost();
  };

  const retryLater = (): void => {
    if (closed || retryTimer) return;
    attempt++;
    retryTimer = setTimeout(
      () => {
        retryTimer = undefined;
        void connect();
      },
      Math.min(attempt * 100, RETRY_MAX_MS),
    );
    retryTimer.unref();
  };

  const onMessage = (ch: string, message: string): void => {
    if (ch === ackChannel) {
      const seq = parseAck(message);
      if (seq !== null) confirmations.confirm(seq);
      else {
        log.warn({ bytes: message.length }, "dropped a malformed revocation confirmation");
        status.onRejected?.();
      }
      return;
    }
    if (ch !== channel) return;
    const event = parseEvent(message);
    if (!event) {
      // Never its content: it is untrusted and may be huge.
      log.warn({ bytes: message.length }, "dropped a malformed revocation event");
      status.onRejected?.();
      return;
    }
    try {
      onEvent(event);
    } catch (err) {
      log.warn({ err: errMessage(err), seq: event.seq }, "revocation event handler failed");
    }
  };

  /** One connection per attempt: resolved again each time, since the primary of {g} may have changed. */
  const connect = async (): Promise<void> => {
    if (closed) return;
    let target: RedisOptions;
    try {
      target = await d.topology.subscriberOptionsFor(channel);
    } catch (err) {
      log.warn({ err: errMessage(err) }, "revocation feed: no primary known for its channel yet");
      return retryLater();
    }
    if (closed) return;
    const conn = new Redis({
      enableReadyCheck: true,
      ...target,
      // We subscribe ourselves on 'ready' and reconnect ourselves (to whichever node serves {g} then).
      retryStrategy: () => null,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
      connectionName: "gatehouse-feed",
    });
    sub = conn;
    let failed = false;
    const drop = (why: string): void => {
      if (failed) return;
      failed = true;
      markLost(why);
      conn.disconnect();
      if (sub === conn) sub = null;
      retryLater();
    };
    conn.on("error", (err: Error) => {
      // An unsolicited SUNSUBSCRIBE (the slot moved) reaches ioredis as a reply nobody asked for.
      if (/sunsubscribe|queue state/i.test(err.message)) drop("unsubscribed by the server");
    });
    conn.on("close", () => drop("connection closed"));
    const { subscribe, message } = d.topology.pubsub;
    conn.on(message, onMessage);
    conn.once("ready", () => {
      const channels = ackChannel ? [channel, ackChannel] : [channel];
      conn[subscribe](...channels).then(
        () => {
          if (closed || failed) return;
          attempt = 0;
          if (!subscribedOnce) {
            subscribedOnce = true;
            resolveReady();
          } else if (lost) {
            lost = false;
            log.info({}, "revocation feed resumed");
            status.onResumed();
          }
        },
        (err: unknown) => {
          // a MOVED (the slot went elsewhere) or a refusal (an ACL without it): try again, resolved anew
          log.warn({ err: errMessage(err) }, "revocation feed subscribe failed");
          drop("subscribe failed");
        },
      );
    });
  };
  void connect();

  return {
    ready,
    close: async () => {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      onClose();
      if (!subscribedOnce) rejectReady(new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE));
      const conn = sub;
      sub = null;
      if (conn) await quitClient(conn);
    },
  };
}

/** Tells the issuer of `e` that `nodeId` applied it (lost with a dropped connection like any publish: the issuer stops waiting at its timeout). */
function sendAck(topology: Topology, keys: Keys, e: RevocationEvent): void {
  const c = topology.client;
  (topology.pubsub.publish === "SPUBLISH" ? c.spublish(keys.acks(e.nodeId), String(e.seq)) : c.publish(keys.acks(e.nodeId), String(e.seq))).catch(() => {});
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const QUIT_TIMEOUT_MS = 1_000;

export async function quitClient(client: Redis | { status: string; quit(): Promise<unknown>; disconnect(): void }): Promise<void> {
  if (client.status === "end") return;
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("quit timed out")), QUIT_TIMEOUT_MS);
      }),
    ]);
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}
