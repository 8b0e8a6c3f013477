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

export interface HandlerOptions<T> {
  schema: z.ZodType<T>;
  /** a spec (a budget of its own) or a Budget shared with other messages */
  budget?: BudgetSpec | Budget;
  /** when over budget: ack RATE_LIMITED (default), or drop silently */
  whenOver?: "refuse" | "drop";
  /** runs before the budget is spent; throw a RoomError to refuse (not in a room...) */
  precondition?(): void;
  now(): number;
  log: Logger;
}

/**
 * Registers `event` on `socket`: validate, check the precondition, then spend the
 * budget (a refused message costs nothing, so a typo does not eat a player's chat
 * allowance), then run `handle`. Its result (an object, sync or async) is merged into `{ok:true}`.
 */
export function onMessage<T>(socket: GameSocket, event: string, opts: HandlerOptions<T>, handle: (data: T) => object | void | Promise<object | void>): void {
  const spec = opts.budget;
  const budget = !spec ? null : spec instanceof Budget ? spec : new Budget(spec.rate, spec.burst, opts.now());
  const whenOver = opts.whenOver ?? (spec && !(spec instanceof Budget) ? spec.whenOver : undefined);
  socket.on(event, (payload: unknown, ack: unknown) => {
    const reply: AckFn = typeof ack === "function" ? (ack as AckFn) : () => undefined;
    const parsed = opts.schema.safeParse(payload);
    if (!parsed.success) return reply(validationFailure(parsed.error));
    try {
      opts.precondition?.();
    } catch (err) {
      return settle(err);
    }
    if (budget && !budget.take(opts.now())) {
      if (whenOver !== "drop") reply(failure(ErrorCode.RATE_LIMITED));
      return;
    }
    function settle(err: unknown): void {
      if (err instanceof GatehouseError) return reply(failure(err.code, err.message));
      opts.log.error({ err, event }, "room handler failed");
      reply(failure(ErrorCode.INTERNAL));
    }
    try {
      const out = handle(parsed.data);
      if (out instanceof Promise) out.then((r) => reply({ ok: true, ...r }), settle);
      else reply({ ok: true, ...out });
    } catch (err) {
      settle(err);
    }
  });
}
