/** zod at the edge: a bad body or param becomes 400 VALIDATION_FAILED naming the first bad field. */
import type { z } from "zod";
import { ErrorCode, GatehouseError } from "../../shared/errors";

export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join(".") : "body";
  throw new GatehouseError(ErrorCode.VALIDATION_FAILED, `Invalid ${where}: ${issue?.message ?? "not valid"}`);
}
