/**
 * Bench baseline "auth off": a bare socket.io server with the same version and
 * the same server options as server/app.ts (serveClient false, 128 KB
 * maxHttpBufferSize and max header size; clients use the websocket transport),
 * no middleware, no adapter, no handlers. Run as a child process by bench/run.ts.
 *
 * With JWT_SECRET set it becomes the reference variant "plain + JWT verify":
 * one io.use that verifies `auth.token` with jsonwebtoken and a KeyObject (the
 * same options as Gatehouse), and nothing else, to show what share of the
 * handshake cost the signature check alone takes.
 *
 * Bench-only HTTP endpoints (the memory and disconnect figures' plain side):
 * GET /bench/memory -> {sockets, rss, heapUsed}; POST /bench/disconnect-all ->
 * io.disconnectSockets(true), answered with the count once it ran.
 */
import { createSecretKey } from "node:crypto";
import { createServer } from "node:http";
import jwt from "jsonwebtoken";
import { Server } from "socket.io";

const MAX_WIRE_BYTES = 128 * 1024;
const port = Number(process.env.PORT ?? "0");

const http = createServer({ maxHeaderSize: MAX_WIRE_BYTES }, (req, res) => {
  const json = (body: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  if (req.method === "GET" && req.url === "/bench/memory") {
    const m = process.memoryUsage();
    return json({ sockets: io.of("/").sockets.size, rss: m.rss, heapUsed: m.heapUsed });
  }
  if (req.method === "POST" && req.url === "/bench/disconnect-all") {
    const sockets = io.of("/").sockets.size;
    io.disconnectSockets(true);
    return json({ sockets });
  }
  res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"NOT_FOUND","message":"Not found."}}');
});
const io = new Server(http, { serveClient: false, maxHttpBufferSize: MAX_WIRE_BYTES });
if (process.env.JWT_SECRET) {
  const key = createSecretKey(Buffer.from(process.env.JWT_SECRET, "utf8"));
  const issuer = process.env.JWT_ISSUER ?? "gatehouse";
  const audience = process.env.JWT_AUDIENCE ?? "gatehouse-game";
  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    try {
      if (typeof token !== "string") throw new Error("TOKEN_MISSING");
      socket.data = jwt.verify(token, key, { algorithms: ["HS256"], issuer, audience, clockTolerance: 5 });
      next();
    } catch {
      next(Object.assign(new Error("TOKEN_INVALID"), { data: { code: "TOKEN_INVALID", message: "The access token is invalid." } }));
    }
  });
}
io.on("connection", () => undefined);

http.listen(port, "127.0.0.1", () => {
  const addr = http.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  process.stdout.write(`plain socket.io baseline${process.env.JWT_SECRET ? " (+ JWT verify)" : ""} listening on http://127.0.0.1:${bound}\n`);
});

const stop = () => {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
