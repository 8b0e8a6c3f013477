/**
 * `import { createApp, loadConfig } from "gatehouse"`: the server as a library.
 *
 * Deliberately small for now: the composition root and the config parser, the
 * same pair server/main.ts uses. `createGatehouse` (embedding into an existing
 * express + socket.io app, issue 11 part 2) will take its place here.
 *
 *   const app = await createApp(loadConfig(process.env));
 *   await app.listen();
 */
export { createApp, type App, type AppDeps } from "./app";
export { loadConfig, type Config, type RateLimit } from "./config";
