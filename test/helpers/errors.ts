/** The GatehouseError code a promise rejects with (undefined if it resolves), for asserting on codes, not messages. */
import { GatehouseError } from "../../shared/errors";

export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof GatehouseError ? err.code : `not a GatehouseError: ${String(err)}`;
  }
}
