// chinwag browser client: the modules that own the network. A page built on it
// renders state and sends intents; it never touches a socket. See docs/web-client.md.
//
// connection.js: sign-in, the WebSocket, reconnect and resume by seq, requests and
// events. This module: the intents (rooms, chat, edits, search, AI). ai-stream.js: an
// AI reply as a stream. uploads.js: files sent in chunks with progress.

import { AIStream } from "./ai-stream.js";
import { Connection, newMessageId } from "./connection.js";
import { upload } from "./uploads.js";

export { AIStream } from "./ai-stream.js";
export { ChinwagError, SeqTracker, backoffDelay } from "./connection.js";

/** The client: a Connection (its events are listed there) and what a page asks of it. */
export class ChinwagClient extends Connection {
  /** Join (or create) a room; resolves with the join_room confirmation. */
  join(roomId, { roomType = "shared", roomName = null } = {}) {
    const data = { room_type: roomType };
    if (roomName) data.room_name = roomName;
    const id = `join:${roomId}`;
    return this._requestKeyed(id, { type: "join_room", room_id: roomId, data });
  }

  leave(roomId) {
    this.seqs.forget(roomId);
    return this._requestKeyed(`leave:${roomId}`, { type: "leave_room", room_id: roomId, data: {} });
  }

  deleteRoom(roomId) {
    return this._requestKeyed(`delete:${roomId}`, { type: "delete_room", room_id: roomId, data: {} });
  }

  _requestKeyed(key, frame) {
    // The server answers these by room, not by message_id; an error echoes message_id.
    frame.message_id = key;
    return this._request(frame);
  }

  /**
   * Send a chat to a room. Resolves with the delivery_confirmation ({seq,
   * server_message_id, queued_for}). Unconfirmed messages are resent with the same
   * message_id after a reconnect, so a drop neither loses nor duplicates them.
   * With `ai: true` the returned object also has `.stream` (an AIStream).
   */
  send(roomId, text, { ai = false, model = null, replyTo = null, messageId = newMessageId() } = {}) {
    const data = { message: text, ai };
    if (ai && model) data.model_preference = model;
    if (replyTo != null) data.reply_to = replyTo;
    const confirmed = this._request({ type: "chat", room_id: roomId, data, message_id: messageId },
                                    { keep: true });
    const result = { messageId, confirmed, stream: null };
    if (ai) {
      // The room's copy of this message names the conversation the reply belongs to.
      result.stream = new AIStream(this);
      this._awaiting.set(messageId, result.stream);
      confirmed.catch((e) => { this._awaiting.delete(messageId); result.stream._fail(e); });
    }
    return result;
  }

  /**
   * Change a stored chat (SPEC 14): `editMessage`, `deleteMessage`, `react` resolve
   * with the confirmation (`unchanged:true` when nothing changed); the change itself
   * reaches every member, this page too, as a `room-event` (message_edited,
   * message_deleted, reaction). Resent after a drop like `send`: the server answers
   * a repeated id with the first answer.
   */
  editMessage(roomId, messageId, content) {
    return this._op("edit_message", roomId, { message_id: messageId, content });
  }

  deleteMessage(roomId, messageId) { return this._op("delete_message", roomId, { message_id: messageId }); }

  react(roomId, messageId, emoji, on = true) {
    return this._op("react", roomId, { message_id: messageId, emoji, on });
  }

  _op(type, roomId, data) {
    return this._request({ type, room_id: roomId, data, message_id: newMessageId() }, { keep: true });
  }

  /** Full-text search of the caller's rooms (or one room): `{results, next_before_id}`. */
  search(q, { roomId = null, limit = 20 } = {}) {
    const p = new URLSearchParams({ q, limit: String(limit) });
    if (roomId) p.set("room_id", roomId);
    return this.api(`/api/v1/search?${p}`);
  }

  /** Ask the AI outside any room. Returns an AIStream (chunks, `.done`, `.stop()`). */
  ask(text, { conversationId = null, model = null, messageId = newMessageId() } = {}) {
    const data = { message: text, conversation_id: conversationId, ai: true };
    if (model) data.model_preference = model;
    const confirmed = this._request({ type: "chat", data, message_id: messageId }, { keep: true });
    const stream = this._streamFor(confirmed, conversationId);
    stream.confirmed = confirmed;
    return stream;
  }

  _streamFor(confirmed, conversationId = null) {
    const stream = new AIStream(this, conversationId);
    if (conversationId != null) this._streams.set(conversationId, stream);
    confirmed.then((c) => {
      if (c.conversation_id != null && stream.conversationId == null) {
        stream.conversationId = c.conversation_id;
        this._streams.set(c.conversation_id, stream);
      }
    }, (e) => stream._fail(e));
    return stream;
  }

  /** The AIStream of a reply this client asked for, by conversation id (or null). */
  streamOf(conversationId) { return this._streams.get(conversationId) ?? null; }

  cancel(conversationId) { this._send({ type: "cancel", data: { conversation_id: conversationId } }); }

  typing(roomId, isTyping) { this._send({ type: "typing", room_id: roomId, data: { is_typing: isTyping } }); }

  markRead(roomId, seq) { this._send({ type: "read_receipt", room_id: roomId, data: { seq } }); }

  /** Upload a File/Blob in chunks (uploads.js); resolves with the `complete` reply. */
  upload(file, options = {}) { return upload(this, file, options); }
}
