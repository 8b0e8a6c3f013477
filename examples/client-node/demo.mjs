// A guest on a Gatehouse node, from a plain Node ESM script (no TypeScript, no
// bundler): it joins the lobby and waits until an admin kicks it.
//   node demo.mjs http://127.0.0.1:3000
import { GatehouseClient } from "gatehouse/client";

const client = new GatehouseClient({ baseUrl: process.argv[2] ?? "http://127.0.0.1:3000", device: "node demo" });

// The SDK has already closed the socket and stopped its timers: nothing keeps the process alive.
client.on("revoked", ({ reason, message }) => console.log(`revoked: ${reason} (${message})`));
client.on("error", (err) => console.error(`error: ${err.code} ${err.message}`));
// Ctrl-C signs the guest out instead of leaving its session behind.
process.once("SIGINT", () => client.logout().finally(() => process.exit(130)));

const { user } = await client.guest();
console.log(`signed in as ${user.username} (${user.id})`);
await client.connect();
const { room, you } = await client.joinRoom("lobby");
console.log(`joined ${room.id} at (${Math.round(you.x)}, ${Math.round(you.y)}); waiting to be kicked`);
