/**
 * `import { createGatehouse } from "gatehouse"`: the server as a library.
 *
 * Embedding into an existing express + socket.io application (docs/embedding.md):
 *
 *   const gatehouse = await createGatehouse({ jwtSecret: process.env.JWT_SECRET });
 *   app.use("/auth", gatehouse.routers.auth);
 *   gatehouse.attach(io);
 *
 * The standalone server (what `npm start` runs) is `createApp(loadConfig(process.env))`.
 */
export { createGatehouse, type Gatehouse, type GatehouseDeps, type RevocationNote } from "./gatehouse";
export { createApp, type App, type AppDeps } from "./app";
export { ConfigError, loadConfig, type Config, type GatehouseOptions, type RateLimit } from "./config";
export type { GameSocket, SocketData } from "./realtime/gateway";
export { GatehouseError } from "../shared/errors";
export type { AccessClaims } from "../shared/claims";
