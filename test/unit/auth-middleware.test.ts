/** The Bearer middleware's edge: a check that fails without a reason must still refuse. */
import type { NextFunction, Request, Response } from "express";
import { describe, expect, it } from "vitest";
import type { LiveTokenCheck } from "../../server/auth/check";
import { authenticated, requireAuth } from "../../server/http/auth-middleware";

const request = () => ({ url: "/me", headers: { authorization: "Bearer a.b.c" } }) as unknown as Request;
const failing: LiveTokenCheck = () => Promise.reject(undefined);

describe("a read-through check that rejects with nothing", () => {
  // express takes next() without an argument as "go on": the request must not pass.
  it("refuses through requireAuth", async () => {
    const err = await new Promise((resolve) => requireAuth(failing)(request(), {} as Response, resolve as NextFunction));
    expect(err).toMatchObject({ code: "REVOCATION_UNAVAILABLE" });
  });

  it("refuses through authenticated, without running the handler", async () => {
    let ran = false;
    const handler = authenticated(failing, () => {
      ran = true;
    });
    const err = await new Promise((resolve) => handler(request(), {} as Response, resolve as NextFunction));
    expect(err).toMatchObject({ code: "REVOCATION_UNAVAILABLE" });
    expect(ran).toBe(false);
  });
});
