/**
 * Validated socket messages: one wrapper every room event goes through, so a bad
 * payload is acked `{ok:false, error:{code:"VALIDATION_FAILED", message}}` naming
 * the field (like HTTP's `parse`), a budget refuses floods, and a throwing handler
 * is acked INTERNAL and logged instead of reaching socket.io.
 */
import type { Logger } from "pino";
import type { z } from "zod";
import { ErrorCode, GatehouseError, errorMessage, type WireError } from "../../shared/errors";
import { describeInvalid } from "../http/validate";
import type { GameSocket } from "../realtime/gateway";
import { Budget } from "./budget";

/** A per-socket allowance for one message: `rate` per second, bursts of `burst`. */
export interface BudgetSpec {
  rate: number;
  burst: number;
  /** over budget: ack RATE_LIMITED (default), or drop silently (a flood of moves) */
  whenOver?: "refuse" | "drop";
}

/** Thrown by a handler to refuse a message with a code and a message for the client. */
export class RoomError extends GatehouseError {}

type AckFn = (reply: unknown) => void;

export const failure = (code: ErrorCode, message: string = errorMessage[code]): { ok: false; error: WireError } => ({ ok: false, error: { code, message } });

/** The ack for a payload zod refused: the first bad field by its path ("payload" when the whole thing is wrong). */
export function validationFailure(error: z.ZodError): { ok: false; error: WireError } {
  return failure(ErrorCode.VALIDATION_FAILED, describeInvalid(error, "payload"));
}

/**
 * One budget per socket for a message (or for several messages that share it), made at the
 * socket's first message rather than at connect: a new budget starts full and a full one stays
 * full, so a late one behaves exactly like an early one, and an idle socket holds none.
 */
export class SocketBudgets {
  private readonly of = new WeakMap<GameSocket, Budget>();
  constructor(private readonly spec: BudgetSpec) {}
  take(socket: GameSocket, now: number): boolean {
    let budget = this.of.get(socket);
    if (!budget) this.of.set(socket, (budget = new Budget(this.spec.rate, this.spec.burst, now)));
    return budget.take(now);
  }
}

export interface HandlerOptions<T> {
  schema: z.ZodType<T>;
  /** a spec (budgets of its own) or SocketBudgets shared with other messages */
  budget?: BudgetSpec | SocketBudgets;
  /** when over budget: ack RATE_LIMITED (default), or drop silently */
  whenOver?: "refuse" | "drop";
  /** runs before the budget is spent; throw a RoomError to refuse (not in a room...) */
  precondition?(socket: GameSocket): void;
  now(): number;
  log: Logger;
}

/** A listener shared by every socket (socket.io passes the socket as `this`). */
export type MessageListener = (this: GameSocket, payload: unknown, ack: unknown) => void;

/**
 * The listener of `event`, made once and registered on every socket (`socket.on(event, l)`):
 * no closure or budget per socket until it sends something. It validates, checks the
 * precondition, then spends the budget (a refused message costs nothing, so a typo does not eat
 * a player's chat allowance), then runs `handle`. Its result (an object, sync or async) is merged
 * into `{ok:true}`.
 */
export function messageListener<T>(
  event: string,
  opts: HandlerOptions<T>,
  handle: (socket: GameSocket, data: T) => object | void | Promise<object | void>,
): MessageListener {
  const spec = opts.budget;
  const budgets = !spec ? null : spec instanceof SocketBudgets ? spec : new SocketBudgets(spec);
  const whenOver = opts.whenOver ?? (spec && !(spec instanceof SocketBudgets) ? spec.whenOver : undefined);
  return function (this: GameSocket, payload: unknown, ack: unknown): void {
    const socket = this;
    const reply: AckFn = typeof ack === "function" ? (ack as AckFn) : () => undefined;
    const parsed = opts.schema.safeParse(payload);
    if (!parsed.success) return reply(validationFailure(parsed.error));
    function settle(err: unknown): void {
      if (err instanceof GatehouseError) return reply(failure(err.code, err.message));
      opts.log.error({ err, event }, "room handler failed");
      reply(failure(ErrorCode.INTERNAL));
    }
    try {
      opts.precondition?.(socket);
    } catch (err) {
      return settle(err);
    }
    if (budgets && !budgets.take(socket, opts.now())) {
      if (whenOver !== "drop") reply(failure(ErrorCode.RATE_LIMITED));
      return;
    }
    try {
      const out = handle(socket, parsed.data);
      if (out instanceof Promise) out.then((r) => reply({ ok: true, ...r }), settle);
      else reply({ ok: true, ...out });
    } catch (err) {
      settle(err);
    }
  };
}
