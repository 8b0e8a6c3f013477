import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, formatLogLine } from "../../server/logger";

function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  return { stream, lines };
}

describe("logger", () => {
  it("writes JSON lines unless asked for pretty output", () => {
    const { stream, lines } = sink();
    createLogger({ level: "info", nodeId: "n1" }, stream).info({ userId: "u1" }, "admin action");
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, node: "n1", userId: "u1", msg: "admin action" });
  });

  it("pretty: one readable line per entry (time, level, message, fields), secrets still redacted", () => {
    const { stream, lines } = sink();
    const log = createLogger({ level: "info", nodeId: "n1", pretty: true }, stream);
    log.warn({ username: "alice", seq: 4, password: "hunter2-hunter2" }, "admin password reset");
    log.info("listening on http://127.0.0.1:3000");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  admin password reset username=alice seq=4 password=\[redacted\]$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  listening on http:\/\/127\.0\.0\.1:3000$/);
    expect(lines.join("\n")).not.toContain("hunter2");
  });

  it("pretty: an error's stack follows its line; text that is not JSON passes through", () => {
    const line = formatLogLine(JSON.stringify({ level: 50, time: 0, msg: "unhandled error", err: { message: "boom", stack: "Error: boom\n    at x" } }));
    expect(line).toMatch(/ERROR unhandled error\nError: boom\n {4}at x$/);
    expect(formatLogLine("not json")).toBe("not json");
  });
});
