/**
 * zod at the edge: a bad body, param or socket payload becomes VALIDATION_FAILED naming the first
 * bad field. One formatter for HTTP (400) and socket acks, so both read alike.
 */
import type { z } from "zod";
import { ErrorCode, GatehouseError } from "../../shared/errors";

/** "Invalid <path>: <zod's message>" for the first issue; `whole` names the input when the path is empty. */
export function describeInvalid(error: z.ZodError, whole: string): string {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join(".") : whole;
  return `Invalid ${where}: ${issue?.message ?? "not valid"}`;
}

export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new GatehouseError(ErrorCode.VALIDATION_FAILED, describeInvalid(result.error, "body"));
}
