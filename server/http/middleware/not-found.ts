/** After every router: the one error shape for a path nothing answered. */
import type { RequestHandler } from "express";
import { ErrorCode, GatehouseError } from "../../../shared/errors";

export const notFound: RequestHandler = (_req, _res, next) => next(new GatehouseError(ErrorCode.NOT_FOUND));
