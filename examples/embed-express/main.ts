/**
 * Runs the example on http://127.0.0.1:3000 with an admin account admin / admin-password-1:
 *   npx vite-node examples/embed-express/main.ts
 */
import { startExample } from "./server";

const example = await startExample({ adminUsername: "admin", adminPassword: "admin-password-1" }, Number(process.env.PORT ?? 3000));
console.log(`example app with Gatehouse on ${example.url} (try ${example.url}/hello)`);
const stop = () => void example.close().then(() => process.exit(0));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
