/**
 * The forced-drop queue against host code that throws: a revocation's sockets are all dropped
 * even when a "disconnect" listener of the host app fails on each of them.
 */
import { createServer } from "node:http";
import express from "express";
import { Server } from "socket.io";
import { afterAll, expect, it } from "vitest";
import { createGatehouse } from "../../server/index";
import { register } from "../helpers/http";
import { TEST_SECRET } from "../helpers/node";
import { connect, type TestSocket } from "../helpers/sockets";

const sockets: TestSocket[] = [];
let cleanup: () => Promise<void> = async () => {};
afterAll(async () => {
  sockets.forEach((s) => s.close());
  await cleanup();
});

it("drops every covered socket even if a host disconnect listener throws on each", async () => {
  const app = express();
  const http = createServer(app);
  const io = new Server(http);
  // The host's own handler, registered before attach as docs/embedding.md shows; buggy on disconnect.
  let armed = false;
  io.on("connection", (socket) =>
    socket.on("disconnect", () => {
      if (armed) throw new Error("host bug");
    }),
  );
  const gatehouse = await createGatehouse({ jwtSecret: TEST_SECRET, logLevel: "silent", rateLimitLoginIp: "0", rateLimitHandshakeIp: "0" });
  app.use("/auth", gatehouse.routers.auth);
  gatehouse.attach(io);
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  cleanup = async () => {
    await new Promise<void>((r) => io.close(() => r()));
    await gatehouse.close();
  };

  const pair = await register(url);
  for (let i = 0; i < 4; i++) sockets.push(await connect(url, pair.accessToken));
  armed = true;
  await gatehouse.kick(pair.user.id);
  // Without the guard, the first throw left the rest queued until the 30 s sweep.
  const told = await Promise.all(sockets.map((s) => s.revoked));
  expect(told.map((t) => t.reason)).toEqual(["kicked", "kicked", "kicked", "kicked"]);
  expect(io.of("/").sockets.size).toBe(0);
});
