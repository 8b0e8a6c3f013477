/**
 * The arena (contract section 4) as a room type: players move in an 800x600
 * field (the server caps speed and bounds), chat, and see everyone's
 * authoritative position in a `state` broadcast TICK_HZ times a second.
 */
import { ChatSendPayload, Events, MovePayload, TICK_HZ, type ChatMessage, type PlayerView, type StatePayload } from "../../shared/protocol";
import { defineRoom } from "../rooms/define";
import { applyMove, spawnPoint, view, type Position } from "./arena";

export const arenaRoom = defineRoom<Record<string, never>, Position, PlayerView>()({
  name: "arena",
  joinEvent: Events.ROOM_JOIN,
  leaveEvent: Events.ROOM_LEAVE,
  // Joins and leaves are broadcast to the room (and across nodes): a budget, like moves and chat.
  membershipBudget: { rate: 2, burst: 6 },
  joinedEvent: Events.PLAYER_JOINED,
  leftEvent: Events.PLAYER_LEFT,
  createState: () => ({}),
  onJoin: ({ who, now }) => ({ ...spawnPoint(who.playerId), movedAt: now }),
  view: (p) => view(p, p.state),
  tickHz: TICK_HZ,
  state: {
    event: Events.STATE,
    push: "tick",
    build: (room, now): StatePayload => ({ roomId: room.id, at: now, players: room.views() }),
  },
  messages: {
    [Events.MOVE]: {
      schema: MovePayload,
      // A flood is dropped silently, as a flood should be.
      budget: { rate: 30, burst: 45, whenOver: "drop" },
      handle: ({ player, data, now }) => {
        const at = applyMove(player.state, data, now);
        player.state = { ...at, movedAt: now };
        // The ack shows the position as `state` will (rounded), so a client can compare them.
        const { x, y } = view(player, at);
        return { x, y };
      },
    },
    [Events.CHAT_SEND]: {
      schema: ChatSendPayload,
      budget: { rate: 0.5, burst: 5 },
      handle: ({ room, player, data, now }) => {
        const msg: ChatMessage = { userId: player.userId, username: player.username, text: data.text, at: now };
        room.broadcast(Events.CHAT_MESSAGE, msg);
      },
    },
  },
});
