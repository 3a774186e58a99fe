// chinwag browser client, the connection: sign-in and HTTP with the token, the
// WebSocket and its token refresh, reconnect with jittered backoff, resume by seq
// with `sync`, de-duplication by seq, requests answered by message_id (resent after a
// reconnect when idempotent), and the server's frames turned into events. The
// intents built on it are in chinwag-client.js.

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
export function newMessageId() {
  counter += 1;
  const rnd = (globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`);
  return `web-${rnd}-${counter}`;
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
export class Connection extends EventTarget {
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

}
