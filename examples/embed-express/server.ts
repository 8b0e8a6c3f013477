/**
 * An existing express + socket.io application — a /hello route and an `echo` socket event — that
 * adds Gatehouse: accounts and tokens, the check on every socket and on the routes it chooses,
 * and revocations that drop a player's sockets on every node. main.ts runs it; the test suite
 * starts it in-process (test/integration/embed-express.test.ts).
 */
import { createServer } from "node:http";
import express from "express";
import { Server } from "socket.io";
// In your application: import { createGatehouse, type GatehouseOptions } from "gatehouse";
import { createGatehouse, type GatehouseOptions } from "../../server/index";

export async function startExample(options: GatehouseOptions = {}, port = 3000) {
  const app = express();
  const http = createServer(app);
  const io = new Server(http);

  // ---- the application as it was ----
  app.get("/hello", (_req, res) => {
    res.json({ hello: "world" });
  });
  io.on("connection", (socket) => {
    socket.on("echo", (message: unknown, ack?: (reply: unknown) => void) => ack?.(message));
  });

  // ---- Gatehouse, added ----
  const gatehouse = await createGatehouse(options);
  app.use("/auth", gatehouse.routers.auth); // register, login, guest, refresh, logout, password
  app.use("/admin", gatehouse.routers.admin); // kick, ban, revoke; admins only
  app.use(gatehouse.routers.sessions); // /me, /sessions
  app.use(gatehouse.routers.ops); // /healthz, /readyz, /metrics
  gatehouse.attach(io); // every handshake checked; revoked sockets told and dropped
  // One of the application's routes, now for signed-in players only: req.claims is the verified token.
  app.get("/profile", gatehouse.requireAuth, (req, res) => {
    res.json({ userId: req.claims!.sub, role: req.claims!.role });
  });

  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  const address = http.address();
  return {
    url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : port}`,
    gatehouse,
    close: async () => {
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await gatehouse.close();
    },
  };
}
