/** Plain JSON over fetch, every failure a GatehouseClientError. */
import { ClientErrorCode, GatehouseClientError } from "./errors";

export interface HttpOptions {
  fetch: typeof fetch;
  baseUrl: string;
  timeoutMs: number;
}

/** One JSON request; a non-2xx answer rejects with the server's `{error: {code, message}}`. */
export async function httpJson<T>(http: HttpOptions, method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let res: Response;
  try {
    res = await http.fetch(http.baseUrl + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(http.timeoutMs),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    throw new GatehouseClientError(
      timedOut ? ClientErrorCode.TIMEOUT : ClientErrorCode.NETWORK,
      timedOut ? `${method} ${path} timed out.` : `Could not reach the server (${method} ${path}).`,
      undefined,
      { cause: err },
    );
  }
  const text = res.status === 204 ? "" : await res.text().catch(() => "");
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) return Promise.reject(GatehouseClientError.fromWire((data as { error?: unknown } | undefined)?.error, res.status));
  return data as T;
}
