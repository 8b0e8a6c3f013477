/**
 * The Gatehouse client SDK, for Node (>= 20) and the browser: only `fetch` and
 * socket.io-client, no Node-only imports. `import { GatehouseClient } from "gatehouse/client"`.
 *
 * One file per concern: client.ts (sessions, tokens, socket lifecycle),
 * errors.ts, storage.ts, tokens.ts, http.ts, socket.ts, admin.ts.
 */
export { GatehouseClient, type ClientEvents, type GatehouseClientOptions, type RevokedEvent } from "./client";
export { ClientErrorCode, GatehouseClientError } from "./errors";
export { memoryStorage, webStorage, type TokenStorage } from "./storage";
export { decodeAccessToken } from "./tokens";
export type { ClientToServerEvents, GameSocket, JoinedRoom, PlayerJoined, PlayerLeft, ServerToClientEvents, TicTacToeMatched } from "./socket";
export { AdminApi } from "./admin";

export { AdminEvents, Events, RevocationReason, TicTacToeEvents, reasonText } from "../../shared/protocol";
export { ErrorCode } from "../../shared/errors";
export type { TokenPair, PublicUser } from "../../shared/claims";
export type { SessionView, OnlinePlayer, AuditEntry, PlayerView, RoomView, StatePayload, ChatMessage, TicTacToeMark, TicTacToePlayer, TicTacToeState, TicTacToeYou } from "../../shared/protocol";
