// chinwag browser client: one module that owns the network.
//
// Sign-in, the WebSocket and its token, reconnect with jittered backoff, resume by
// seq with `sync`, de-duplication by seq, resending unconfirmed messages with their
// message_id, uploads with progress, AI replies as streams. A page built on it
// renders state and sends intents; it never touches a socket. See docs/web-client.md.

const CLOSE = {
  NORMAL: 1000, GOING_AWAY: 1001, TOO_BIG: 1009, RESTART: 1012, TRY_LATER: 1013,
  SLOW_CONSUMER: 4008, AUTH_FAILED: 4401, FORBIDDEN_ORIGIN: 4403,
};
const TOKEN_KEY = "chinwag.access_token";

/** Raised for an HTTP error or an `error` frame: `.code` is the server's code. */
export class ChinwagError extends Error {
  constructor(message, { code = "ERROR", status = 0, details = null, data = null } = {}) {
    super(message);
    this.name = "ChinwagError";
    this.code = code;
    this.status = status;
    this.details = details;
    this.data = data;
  }
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^attempt)]. */
export function backoffDelay(attempt, { base = 500, cap = 15000, random = Math.random } = {}) {
  return Math.round(random() * Math.min(cap, base * 2 ** attempt));
}

/**
 * Per-room cursors: the last seq handed to the application. `accept(room, seq)` is
 * true exactly once per (room, seq) and only for seqs beyond the cursor, so an event
 * replayed by the offline queue, `sync` or a history page is never handed over twice.
 */
export class SeqTracker {
  constructor() { this.cursors = new Map(); }
  get(roomId) { return this.cursors.get(roomId) ?? 0; }
  accept(roomId, seq) {
    if (seq <= this.get(roomId)) return false;
    this.cursors.set(roomId, seq);
    return true;
  }
  /** Note what a history page showed (moves the cursor up only). */
  saw(roomId, seq) { if (seq > this.get(roomId)) this.cursors.set(roomId, seq); }
  forget(roomId) { this.cursors.delete(roomId); }
  asObject() { return Object.fromEntries(this.cursors); }
}

let counter = 0;
function newMessageId() {
  counter += 1;
  const rnd = (globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`);
  return `web-${rnd}-${counter}`;
}

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function sha256Hex(buffer) {
  if (!globalThis.crypto?.subtle) {
    throw new ChinwagError("uploads need a secure page (https, or http on localhost)",
                           { code: "INSECURE_CONTEXT" });
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * An AI reply being written: `for await (const text of stream)` yields the chunks;
 * `stream.done` resolves with the completion ({tokens_used, model_used, cost_usd,
 * cancelled?}); `stream.stop()` cancels it.
 */
export class AIStream {
  constructor(client, conversationId = null) {
    this.client = client;
    this.conversationId = conversationId;
    this.text = "";
    this._queue = [];
    this._wake = null;
    this._finished = false;
    this.done = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.done.catch(() => {});
  }
  _push(text) { this.text += text; this._queue.push(text); this._wake?.(); }
  _finish(summary) { this._finished = true; this._resolve(summary); this._wake?.(); }
  _fail(error) { this._finished = true; this._reject(error); this._wake?.(); }
  stop() { if (this.conversationId != null) this.client.cancel(this.conversationId); }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this._queue.length) { yield this._queue.shift(); continue; }
      if (this._finished) { await this.done; return; }
      await new Promise((r) => { this._wake = r; });
      this._wake = null;
    }
  }
}

/**
 * The client. Events (CustomEvent, payload in `.detail`):
 *  - `state`      {state: "connecting"|"open"|"reconnecting"|"offline"|"signed-out", delay?, reason?}
 *  - `room-event` a stored room event {type, room_id, seq, data}, once, in seq order per room
 *  - `chunk`      an AI stream piece {room_id?, conversation_id, content}
 *  - `ai-done`    a roomless AI completion {conversation_id, tokens_used, model_used, cost_usd, ...}
 *                 (also a `room-event` of the personal stream "@<username>", where it is stored)
 *  - `receipt`    a delivery_confirmation (delivered / read, with recipient)
 *  - `mention`    {room_id, message_id, seq, by}: a chat named the signed-in user (not replayed)
 *  - `typing`, `presence`, `room-deleted`, `joined`, `left`, `error`, `sync`
 *  - `signed-in`, `signed-out` {reason}
 */
export class ChinwagClient extends EventTarget {
  constructor({ baseUrl = globalThis.location?.origin ?? "", storage = globalThis.localStorage,
                backoff = {} } = {}) {
    super();
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.storage = storage;
    this.backoff = backoff;
    this.accessToken = storage?.getItem(TOKEN_KEY) ?? null;
    this.user = null;
    this.state = "offline";
    this.seqs = new SeqTracker();
    this.ws = null;
    this._attempt = 0;
    this._timer = null;
    this._refreshTimer = null;
    this._wanted = false;
    this._pending = new Map();   // message_id -> {frame, resolve, reject, keep}
    this._streams = new Map();   // conversation_id -> AIStream
    this._awaiting = new Map();  // message_id -> AIStream whose conversation id is not known yet
    this._openWaiters = [];
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // ---- HTTP ---------------------------------------------------------------------

  /** A JSON request with the access token. A 401 signs the client out. */
  async api(path, { method = "GET", body, raw = false } = {}) {
    const headers = {};
    if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(this.baseUrl + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (raw && r.ok) return r;
    if (r.status === 204) return null;
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new ChinwagError(typeof data.detail === "string" ? data.detail : r.statusText,
                                   { code: data.code ?? `HTTP_${r.status}`, status: r.status,
                                     details: data.details ?? null });
      if (r.status === 401 && this.accessToken) this._signedOut(err.message);
      throw err;
    }
    return data;
  }

  async signUp(username, password) {
    await this.api("/api/v1/auth/register", { method: "POST", body: { username, password } });
    return this.signIn(username, password);
  }

  async signIn(username, password) {
    const r = await this.api("/api/v1/auth/login", { method: "POST", body: { username, password } });
    this.accessToken = r.access_token;
    this.storage?.setItem(TOKEN_KEY, r.access_token);
    return this.restore();
  }

  /** Resume a stored sign-in (null when there is none or it no longer works). */
  async restore() {
    if (!this.accessToken) return null;
    try {
      this.user = await this.api("/api/v1/auth/me");
    } catch (e) {
      if (e.status === 401) return null;
      throw e;
    }
    this._emit("signed-in", this.user);
    return this.user;
  }

  signOut() { this._signedOut("signed out"); }

  _signedOut(reason) {
    const was = this.accessToken;
    this.accessToken = null;
    this.user = null;
    this.storage?.removeItem(TOKEN_KEY);
    this._wanted = false;
    this._teardown(CLOSE.NORMAL, "signed out");
    for (const p of this._pending.values()) p.reject(new ChinwagError(reason, { code: "AUTH_FAILED" }));
    this._pending.clear();
    this._setState("signed-out", { reason });
    if (was) this._emit("signed-out", { reason });
  }

  history(roomId, beforeSeq = null, limit = 50) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (beforeSeq) q.set("before_seq", String(beforeSeq));
    return this.api(`/api/v1/ws/rooms/${encodeURIComponent(roomId)}/messages?${q}`);
  }

  /** The bytes of an uploaded file as a Blob (downloads need the bearer token). */
  async fileBlob(url) {
    const r = await this.api(url, { raw: true });
    return r.blob();
  }

  // ---- the connection -------------------------------------------------------------

  /** Connect and stay connected (reconnecting after any drop) until close() or sign-out. */
  connect() {
    this._wanted = true;
    if (!this.ws && !this._timer) this._open();
  }

  close() {
    this._wanted = false;
    this._teardown(CLOSE.NORMAL, "closed by the page");
    this._setState("offline");
  }

  /** Resolves once the socket is open (and its `connect` frame read). */
  ready() {
    if (this.state === "open") return Promise.resolve();
    return new Promise((resolve) => this._openWaiters.push(resolve));
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit("state", { state, ...extra });
    if (state === "open") { for (const w of this._openWaiters.splice(0)) w(); }
  }

  async _wsToken() {
    const r = await this.api("/api/v1/ws/token", { method: "POST" });
    return r;
  }

  async _open() {
    this._timer = null;
    if (!this._wanted || !this.accessToken) return;
    this._setState(this._attempt ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this._wsToken();
    } catch (e) {
      if (e.status === 401 || e.status === 403) return; // signed out already
      this._retry(CLOSE.TRY_LATER, e.message);
      return;
    }
    if (!this._wanted) return;
    const url = new URL("/api/v1/ws/ws", this.baseUrl || location.origin);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", token.token);
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (ev) => this._frame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._rejectInFlight();
      this._afterClose(ev.code, ev.reason);
    };
    this._armRefresh(token.expires_in);
  }

  _teardown(code, reason) {
    clearTimeout(this._timer);
    clearTimeout(this._refreshTimer);
    this._timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) { try { ws.close(code, reason); } catch { /* already closing */ } }
  }

  _afterClose(code, reason) {
    clearTimeout(this._refreshTimer);
    if (!this._wanted) { this._setState("offline"); return; }
    if (code === CLOSE.FORBIDDEN_ORIGIN) {
      this._wanted = false;
      this._setState("offline", { reason: reason || "origin refused" });
      return;
    }
    // 4401: the token is bad or expired (or the account was disabled); _open asks
    // for a new one, and a 401 there signs out. 1013: the server is full: back off.
    this._retry(code, reason);
  }

  _retry(code, reason) {
    const attempt = this._attempt;
    this._attempt += 1;
    let delay = backoffDelay(attempt, this.backoff);
    if (code === CLOSE.TRY_LATER) delay = Math.max(delay, 2000);
    if (code === CLOSE.SLOW_CONSUMER && attempt === 0) delay = 0;
    this._setState("reconnecting", { delay, reason, code });
    this._timer = setTimeout(() => this._open(), delay);
  }

  _armRefresh(expiresIn) {
    // Send a fresh WebSocket token a minute (or 10 %) before this one expires.
    clearTimeout(this._refreshTimer);
    const lead = Math.min(60, expiresIn * 0.1);
    this._refreshTimer = setTimeout(async () => {
      try {
        const t = await this._wsToken();
        this._send({ type: "refresh_token", data: { token: t.token } });
        this._armRefresh(t.expires_in);
      } catch { /* the server closes with 4401 at expiry; reconnect handles it */ }
    }, Math.max(1, expiresIn - lead) * 1000);
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** Send a frame and wait for the answer carrying its message_id. `keep`: resend
   * it after a reconnect (idempotent frames such as chat); otherwise a drop rejects. */
  _request(frame, { keep = false, id = frame.message_id ?? newMessageId() } = {}) {
    frame.message_id = id;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { frame, resolve, reject, keep });
      this._send(frame);
    });
  }

  _rejectInFlight() {
    for (const [id, p] of this._pending) {
      if (!p.keep) {
        this._pending.delete(id);
        p.reject(new ChinwagError("the connection dropped", { code: "DISCONNECTED" }));
      }
    }
  }

  _onConnected() {
    this._attempt = 0;
    this._setState("open");
    const rooms = this.seqs.asObject();
    if (Object.keys(rooms).length) this._send({ type: "sync", data: { rooms } });
    for (const p of this._pending.values()) this._send(p.frame); // same message_id: no duplicates
  }

  // ---- frames from the server ---------------------------------------------------

  _frame(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    const d = f.data ?? {};
    switch (f.type) {
      case "connect": this._onConnected(); return;
      case "delivery_confirmation": this._confirmation(d); return;
      case "error": this._error(d); return;
      case "file_upload":
        if (f.seq != null) {  // a room upload's answer is the room event itself
          this._answer(`finalize:${d.file_id}`, d);
          this._roomEvent(f);
          return;
        }
        this._answer(d.message_id, d);
        return;
      case "chat":
        if (d.streaming) { this._chunk(f); return; }
        if (f.seq != null) {
          // A roomless reply is stored in the asker's personal stream "@<username>".
          const fresh = this._roomEvent(f);
          this._completion(d, f.room_id);
          if (fresh && d.done && f.room_id.startsWith("@")) this._emit("ai-done", d);
          return;
        }
        if (d.done) { this._completion(d, null); this._emit("ai-done", d); }
        return;
      case "join_room": this._answer(`join:${f.room_id}`, d); this._emit("joined", d); return;
      case "leave_room": this._answer(`leave:${f.room_id}`, d); this._emit("left", d); return;
      case "room_deleted":
        this._answer(`delete:${d.room_id}`, d);
        this.seqs.forget(d.room_id);
        this._emit("room-deleted", d);
        return;
      case "typing": this._emit("typing", d); return;
      case "presence":
        if (f.seq != null) this._roomEvent(f); else this._emit("presence", d);
        return;
      case "sync": this._emit("sync", d); return;
      case "mention": this._emit("mention", { ...d, room_id: f.room_id }); return;
      case "refresh_token": case "pong": case "system": return;
      default:
        if (f.seq != null) this._roomEvent(f);
    }
  }

  _roomEvent(f) {
    if (!this.seqs.accept(f.room_id, f.seq)) return false; // seen already (replay, sync, history)
    const waiting = f.type === "chat" ? this._awaiting.get(f.data?.client_message_id) : undefined;
    if (waiting && f.data.conversation_id != null) {
      this._awaiting.delete(f.data.client_message_id);
      waiting.conversationId = f.data.conversation_id;
      this._streams.set(f.data.conversation_id, waiting);
    }
    this._emit("room-event", { type: f.type, room_id: f.room_id, seq: f.seq, data: f.data ?? {} });
    if (f.type === "presence") this._emit("presence", f.data);
    return true;
  }

  _confirmation(d) {
    const p = d.message_id != null ? this._pending.get(d.message_id) : undefined;
    if (p && d.status === "delivered" && !d.recipient) {
      this._pending.delete(d.message_id);
      p.resolve(d);
    }
    this._emit("receipt", d);
  }

  _error(d) {
    const err = new ChinwagError(d.error ?? "error", { code: d.code, details: d.details, data: d });
    if (d.conversation_id != null && this._streams.has(d.conversation_id)) {
      const s = this._streams.get(d.conversation_id);
      this._streams.delete(d.conversation_id);
      s._fail(err);
    }
    if (d.message_id != null && this._pending.has(d.message_id)) {
      const p = this._pending.get(d.message_id);
      this._pending.delete(d.message_id);
      p.reject(err);
      return;
    }
    this._emit("error", d);
  }

  _answer(id, d) {
    const p = id != null ? this._pending.get(id) : undefined;
    if (!p) return;
    this._pending.delete(id);
    p.resolve(d);
  }

  _chunk(f) {
    const d = f.data;
    const stream = this._streams.get(d.conversation_id);
    if (stream) stream._push(d.content);
    this._emit("chunk", { room_id: f.room_id ?? null, conversation_id: d.conversation_id,
                          content: d.content });
  }

  _completion(d, roomId) {
    if (d.role !== "assistant" || !d.done) return;
    const stream = this._streams.get(d.conversation_id);
    if (stream) {
      this._streams.delete(d.conversation_id);
      stream._finish({ ...d, room_id: roomId });
    }
  }

  // ---- intents ----------------------------------------------------------------------

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

  /**
   * Upload a File/Blob in chunks; `onProgress(sentBytes, totalBytes)` is called as
   * chunks are acknowledged. Resolves with the `complete` reply ({file_id, url, ...});
   * with `roomId` every member also gets it as a room event. After a dropped
   * connection it asks `status` and sends only what is missing.
   */
  async upload(file, { roomId = null, onProgress = () => {}, window = 3 } = {}) {
    const buffer = await file.arrayBuffer();
    const bytes = new Uint8Array(buffer);
    const checksum = await sha256Hex(buffer);
    const envelope = (data) => (roomId ? { type: "file_upload", room_id: roomId, data }
                                       : { type: "file_upload", data });
    await this.ready();
    const init = await this._request(envelope({
      upload_type: "init", file_name: file.name || "file", file_size: bytes.length,
      mime_type: file.type || null,
    }));
    const { file_id: fileId, chunk_size: size, total_chunks: total } = init;
    const done = new Set();
    onProgress(0, bytes.length);
    const sentBytes = () => Math.min(bytes.length, done.size * size);
    for (let round = 0; done.size < total; round += 1) {
      try {
        if (round > 0) {
          await this.ready();
          const st = await this._request(envelope({ upload_type: "status", file_id: fileId }));
              for (const i of st.received_chunks) done.add(i);
        }
        const todo = [];
        for (let i = 0; i < total; i += 1) if (!done.has(i)) todo.push(i);
        let next = 0;
        const worker = async () => {
          while (next < todo.length) {
            const i = todo[next++];
            const part = bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size));
            await this._request(envelope({ upload_type: "chunk", file_id: fileId, chunk_index: i,
                                           total_chunks: total, chunk_data: base64(part) }));
            done.add(i);
            onProgress(sentBytes(), bytes.length);
          }
        };
        await Promise.all(Array.from({ length: Math.min(window, todo.length) }, worker));
      } catch (e) {
        if (e.code !== "DISCONNECTED") throw e;
      }
    }
    for (;;) {
      try {
        await this.ready();
        const complete = await this._request(envelope({ upload_type: "finalize", file_id: fileId,
                                                        checksum }),
                                             { id: `finalize:${fileId}` });
        onProgress(bytes.length, bytes.length);
        return complete;
      } catch (e) {
        if (e.code !== "DISCONNECTED") throw e;
      }
    }
  }
}
