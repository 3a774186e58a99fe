// The chinwag web app: views over ChinwagClient. It renders state and sends
// intents; the client module owns the network (reconnect, resume, de-duplication).
import { initAuthForm } from "./auth-form.js";
import { ChinwagClient } from "./chinwag-client.js";
import { focusUnlessMoved } from "./dom.js";
import { MessageList, el } from "./messages.js";
import { MessageActions, ReplyBar } from "./message-actions.js";
import { initSearch } from "./search.js";
import { initMembers, renderMembers } from "./members.js";
import { NO_AI, firstModel, loadModels } from "./models.js";
import { initNewRoomForm, renderRoomLists } from "./room-list.js";
import { Typing } from "./typing.js";
import { initUploadForm } from "./upload-form.js";

const $ = (id) => document.getElementById(id);
const client = new ChinwagClient();
window.chinwag = client; // for the console and for tests

const state = {
  rooms: new Map(),      // my rooms: room_id -> summary
  shared: [],
  conversations: [],
  view: null,            // {kind: "room", room} | {kind: "ai", conversationId}
  typing: new Map(),     // username -> timer (current room)
  online: new Set(),
  members: [],
  models: [],
  olderCursor: null,
  loadingOlder: false,
  myStreams: new Set(),  // conversation ids of replies I asked for that are being written
};
const replyBar = new ReplyBar($("reply-bar"), $("reply-text"), $("reply-cancel"));
const actions = new MessageActions({
  client, me: () => client.user?.username,
  roomId: () => (state.view?.kind === "room" ? state.view.room : null),
  canModerate: () => state.owner === client.user?.username || !!client.user?.is_admin,
  onReply: (msg) => { replyBar.set(msg); $("message").focus(); },
  onError: (text) => showError(text),
});
const list = new MessageList($("messages"), {
  me: () => client.user?.username, client, onFileError: (e) => showError(e.message), actions,
});

const members = { client, state, roomId: () => state.view?.room, refresh: () => refreshRoomInfo(),
                  onError: (text) => showError(text) };
initMembers(members);
const typing = new Typing(client, state);

function showError(text) { $("composer-error").textContent = text ?? ""; }

const auth = initAuthForm({
  client,
  signedIn: async () => {
    client.connect();
    await Promise.all([loadModels(client, state), refreshRooms(), refreshConversations()]);
  },
  signedOut: () => { state.view = null; list.clear(); },
});

// ---- connection state ------------------------------------------------------------

client.addEventListener("state", (e) => {
  const { state: s, delay } = e.detail;
  const label = { open: "connected", connecting: "connecting…", offline: "offline",
                  "signed-out": "signed out",
                  reconnecting: delay != null ? `reconnecting in ${(delay / 1000).toFixed(1)} s…`
                                              : "reconnecting…" }[s] ?? s;
  $("conn").textContent = label;
  $("conn").dataset.state = s;
  if (s === "open") { refreshRooms(); if (state.view?.kind === "room") refreshRoomInfo(); }
});

// ---- room lists --------------------------------------------------------------------

async function refreshRooms() {
  if (!client.user) return;
  const [mine, shared] = await Promise.all([
    client.api("/api/v1/ws/rooms?scope=mine"), client.api("/api/v1/ws/rooms?scope=shared")]);
  state.rooms = new Map(mine.rooms.map((r) => [r.room_id, r]));
  state.shared = shared.rooms.filter((r) => !r.member);
  for (const r of mine.rooms) client.seqs.saw(r.room_id, r.read_seq ?? 0);
  renderRooms();
}

let roomsRefresh = null;
function refreshRoomsSoon() {
  clearTimeout(roomsRefresh);
  roomsRefresh = setTimeout(() => refreshRooms().catch(() => {}), 200);
}
// Being added to or removed from a room over HTTP sends the member no frame: the
// lists are read again whenever the page comes back into view.
window.addEventListener("focus", () => { if (client.user) refreshRoomsSoon(); });

let roomsFrame = 0;
function renderRoomsSoon() {
  if (!roomsFrame) roomsFrame = requestAnimationFrame(() => { roomsFrame = 0; renderRooms(); });
}

function renderRooms() { renderRoomLists(state, { open: openRoom, join: joinRoom }); }

async function joinRoom(roomId, opts = {}) {
  try {
    await client.ready();
    await client.join(roomId, opts);
    await refreshRooms();
    await openRoom(roomId);
  } catch (e) { showError(e.message); }
}

initNewRoomForm({ client, created: (roomId) => joinRoom(roomId), onError: (text) => showError(text) });

// ---- AI conversations outside rooms ---------------------------------------------------

async function refreshConversations() {
  const r = await client.api("/api/v1/conversations");
  state.conversations = r.conversations.filter((c) => c.room_id == null);
  $("conversations").replaceChildren(...state.conversations.map((c) => {
    const b = el("button", { type: "button", class: "room-button" }, el("span", { class: "name", text: c.title }));
    if (state.view?.kind === "ai" && state.view.conversationId === c.id) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => openConversation(c.id, c.title));
    return el("li", {}, b);
  }));
  if (!state.conversations.length) $("conversations").append(el("li", { class: "muted", text: "None yet" }));
}

$("new-ai").addEventListener("click", () => openConversation(null, "New AI chat"));

async function openConversation(id, title) {
  state.view = { kind: "ai", conversationId: id };
  resetRoomView(title, "AI conversation (only you see it)");
  $("model").querySelector(`option[value="${NO_AI}"]`).disabled = true;
  if ($("model").value === NO_AI) $("model").value = firstModel(state);
  if (id != null) {
    const r = await client.api(`/api/v1/conversations/${id}/messages`);
    for (const t of r.messages) list.turn(t);
    list.scrollToBottom();
  }
  refreshConversations();
}

// ---- a room ---------------------------------------------------------------------------

function resetRoomView(title, sub) {
  list.clear();
  state.typing.clear();
  state.olderCursor = null;
  replyBar.clear();
  typing.render();
  $("chat-title").textContent = title;
  $("chat-sub").textContent = sub;
  $("composer").hidden = false;
  $("room-actions").hidden = state.view.kind !== "room";
  $("members").hidden = true;
  $("members-toggle").setAttribute("aria-expanded", "false");
  $("model").querySelector(`option[value="${NO_AI}"]`).disabled = false;
  updateStop();
  renderRooms();
}

async function openRoom(roomId) {
  try {
    await showRoom(roomId);
  } catch (e) {
    if (state.view?.room !== roomId) return;
    closeView(); // removed from it, or it was deleted, since the list was read
    showError(e.message);
    refreshRoomsSoon();
  }
}

async function showRoom(roomId) {
  const focusComposer = focusUnlessMoved(); // once the room is shown
  const summary = state.rooms.get(roomId);
  state.view = { kind: "room", room: roomId };
  state.cursors = null;
  state.owner = null;
  resetRoomView(summary?.room_name ?? roomId, "");
  if (summary) { summary.unread = 0; summary.mentions = 0; }
  if ($("mention-notice").dataset.room === roomId) $("mention-notice").hidden = true;
  renderRooms();
  await refreshRoomInfo();
  const alone = state.members.length <= 1;
  $("model").value = alone ? firstModel(state) : NO_AI;
  const page = await client.history(roomId, null, 50);
  if (state.view?.room !== roomId) return;
  for (const ev of page.messages) { list.addEvent(ev, { history: true }); client.seqs.saw(roomId, ev.seq); }
  state.olderCursor = page.next_before_seq;
  list.scrollToBottom();
  markRead();
  await applyReceipts(roomId);
  if (state.view?.room === roomId) focusComposer($("message"));
}

async function applyReceipts(roomId) {
  const r = await client.api(`/api/v1/ws/rooms/${encodeURIComponent(roomId)}/receipts`).catch(() => null);
  if (!r || state.view?.room !== roomId) return;
  state.cursors = r.members;
  list.applyCursors(r.members);
}

async function refreshRoomInfo() {
  const roomId = state.view.room;
  try {
    const info = await client.api(`/api/v1/ws/rooms/${encodeURIComponent(roomId)}`);
    if (state.view?.room !== roomId) return;
    state.members = info.members;
    state.online = new Set(info.participants);
    state.owner = info.owner;
    const mineToManage = info.owner === client.user.username || client.user.is_admin;
    $("delete-room").hidden = !mineToManage;
    $("add-member-form").hidden = !(mineToManage && info.room_type !== "shared");
    renderPresence(info);
  } catch (e) { showError(e.message); }
}

function renderPresence(info) {
  const online = [...state.online].sort();
  $("chat-sub").textContent = `${info?.room_type ?? ""} · Online: ${online.join(", ") || "nobody"}`;
  renderMembers(members);
  state.roomType = info?.room_type ?? state.roomType;
}

$("leave-room").addEventListener("click", async () => {
  const roomId = state.view?.room;
  if (!roomId) return;
  try { await client.leave(roomId); } catch (e) { showError(e.message); return; }
  closeView();
  refreshRooms();
});
$("delete-room").addEventListener("click", async () => {
  const roomId = state.view?.room;
  if (!roomId || !confirm(`Delete room ${state.rooms.get(roomId)?.room_name ?? roomId} for everyone?`)) return;
  try { await client.api(`/api/v1/ws/rooms/${encodeURIComponent(roomId)}`, { method: "DELETE" }); }
  catch (e) { showError(e.message); }
});

function closeView() {
  state.view = null;
  list.clear();
  $("chat-title").textContent = "Pick a room";
  $("chat-sub").textContent = "";
  $("composer").hidden = true;
  $("room-actions").hidden = true;
  $("members").hidden = true;
  renderRooms();
}

// Older pages when the list is scrolled to the top.
$("messages").addEventListener("scroll", () => { if ($("messages").scrollTop <= 80) loadOlder(); });

async function loadOlder() {
  if (state.view?.kind !== "room" || !state.olderCursor || state.loadingOlder) return;
  state.loadingOlder = true;
  const roomId = state.view.room;
  try {
    const page = await client.history(roomId, state.olderCursor, 50);
    if (state.view?.room !== roomId) return;
    const root = $("messages");
    const before = root.scrollHeight;
    for (const ev of [...page.messages].reverse()) list.addEvent(ev, { prepend: true });
    root.scrollTop += root.scrollHeight - before; // keep what was on screen in place
    state.olderCursor = page.next_before_seq;
    if (state.cursors) list.applyCursors(state.cursors);
  } finally { state.loadingOlder = false; }
}

/** Open a room at one of its messages (a search result), loading older pages to it. */
async function openAt(roomId, messageId) {
  if (state.view?.room !== roomId) await openRoom(roomId);
  for (let i = 0; i < 20 && state.view?.room === roomId && !actions.byId.has(messageId)
                  && state.olderCursor; i += 1) await loadOlder();
  if (state.view?.room === roomId && !actions.jumpTo(messageId)) showError("That message is no longer here.");
}

let readTimer = null;
function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (state.view?.kind !== "room" || document.hidden) return;
    const seq = list.newestSeq;
    if (seq) client.markRead(state.view.room, seq);
  }, 300);
}
document.addEventListener("visibilitychange", markRead);

// ---- live events ----------------------------------------------------------------------

client.addEventListener("room-event", (e) => {
  const ev = e.detail;
  const summary = state.rooms.get(ev.room_id);
  if (summary) summary.last_seq = ev.seq;
  if (state.view?.kind === "room" && state.view.room === ev.room_id) {
    const stick = list.atBottom();
    const li = list.addEvent(ev);
    if (li && ev.type === "chat" && ev.data.role === "assistant" && !ev.data.content) {
      fillCompletion(li, ev); // a reply whose chunks this page did not see
    }
    if (ev.type === "chat" && ev.data.role === "assistant") state.myStreams.delete(ev.data.conversation_id);
    if (ev.type === "chat" && ev.data.username) typing.clear(ev.data.username);
    if (stick || (ev.type === "chat" && ev.data.username === client.user.username)) list.scrollToBottom();
    markRead();
    updateStop();
  } else if (summary && (ev.type === "chat" || ev.type === "file_upload")
             && ev.data.username !== client.user.username) {
    summary.unread = (summary.unread ?? 0) + 1;
    renderRoomsSoon(); // a backlog of thousands arrives at connect: draw once per frame
  } else if (!summary) {
    refreshRoomsSoon(); // added to a room by its owner: its events start arriving
  }
});

async function fillCompletion(li, ev) {
  if (li.querySelector(".body").textContent) return;
  const page = await client.history(ev.room_id, ev.seq + 1, 1).catch(() => null);
  const stored = page?.messages.find((m) => m.seq === ev.seq);
  if (!stored?.data.content) return;
  const full = list.render(stored);
  full.dataset.seq = ev.seq;
  li.replaceWith(full);
  list.bySeq.set(ev.seq, full);
}

client.addEventListener("chunk", (e) => {
  const { room_id: roomId, conversation_id: cid, content } = e.detail;
  const here = roomId ? state.view?.kind === "room" && state.view.room === roomId
                      : state.view?.kind === "ai" && state.view.conversationId === cid;
  if (!here) return;
  const stick = list.atBottom();
  list.chunk(cid, content);
  if (stick) list.scrollToBottom();
});

client.addEventListener("ai-done", (e) => {
  const d = e.detail;
  state.myStreams.delete(d.conversation_id);
  if (state.view?.kind === "ai" && state.view.conversationId === d.conversation_id) {
    list.finishStream(d);
    list.scrollToBottom();
  }
  updateStop();
  refreshConversations();
});

client.addEventListener("receipt", (e) => list.receipt(e.detail));
client.addEventListener("mention", (e) => {
  const d = e.detail;
  if (state.view?.room === d.room_id && !document.hidden) return; // the message is on screen
  const summary = state.rooms.get(d.room_id);
  if (summary) { summary.mentions = (summary.mentions ?? 0) + 1; renderRoomsSoon(); }
  const notice = $("mention-notice");
  notice.dataset.room = d.room_id;
  $("mention-open").textContent = `${d.by} mentioned you in ${summary?.room_name ?? d.room_id}`;
  notice.hidden = false;
});
$("mention-open").addEventListener("click", () => {
  $("mention-notice").hidden = true;
  openRoom($("mention-notice").dataset.room);
});
$("mention-dismiss").addEventListener("click", () => { $("mention-notice").hidden = true; });
client.addEventListener("room-deleted", (e) => {
  if (state.view?.room === e.detail.room_id) { closeView(); showError("This room was deleted."); }
  refreshRooms();
});
client.addEventListener("presence", (e) => {
  const d = e.detail;
  if (state.view?.room !== d.room_id) return;
  if (d.status === "online") state.online.add(d.username);
  if (d.status === "offline") state.online.delete(d.username);
  if (d.status === "joined" || d.status === "left") { refreshRoomInfo(); return; }
  renderPresence({ room_type: state.roomType });
});
client.addEventListener("typing", (e) => typing.heard(e.detail));
client.addEventListener("error", (e) => showError(e.detail.error));

// ---- composing ----------------------------------------------------------------------------

$("message").addEventListener("input", () => typing.input());
$("message").addEventListener("blur", () => typing.blur());
$("message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
  if (e.key === "Escape" && replyBar.id != null) { e.preventDefault(); replyBar.clear(); }
});

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("message").value;
  if (!text.trim() || !state.view) return;
  $("message").value = "";
  showError("");
  typing.sentMessage();
  const model = $("model").value;
  try {
    if (state.view.kind === "room") {
      const ai = model !== NO_AI;
      const sent = client.send(state.view.room, text, { ai, model: model || null, replyTo: replyBar.id });
      replyBar.clear();
      if (sent.stream) trackStream(sent.stream);
      await sent.confirmed;
    } else {
      const first = state.view.conversationId == null;
      list.addEvent({ type: "chat", data: { role: "user", content: text, username: client.user.username,
                                            timestamp: new Date().toISOString() } });
      list.scrollToBottom();
      const stream = client.ask(text, { conversationId: state.view.conversationId, model: model || null });
      trackStream(stream);
      const c = await stream.confirmed;
      if (first && state.view?.kind === "ai") {
        state.view.conversationId = c.conversation_id;
        refreshConversations();
      }
    }
  } catch (err) { showError(`${err.code ?? ""} ${err.message}`.trim()); }
});

function trackStream(stream) {
  const started = () => { if (stream.conversationId != null) { state.myStreams.add(stream.conversationId); updateStop(); } };
  const poll = setInterval(() => { if (stream.conversationId != null) { started(); clearInterval(poll); } }, 50);
  stream.done.then(() => {}, (e) => showError(`${e.code ?? ""} ${e.message}`.trim())).finally(() => {
    clearInterval(poll);
    state.myStreams.delete(stream.conversationId);
    updateStop();
  });
}

function visibleStreams() {
  return [...state.myStreams].filter((cid) => list.streams.has(cid) ||
    (state.view?.kind === "ai" && state.view.conversationId === cid));
}
function updateStop() { $("stop").hidden = visibleStreams().length === 0; }
client.addEventListener("chunk", updateStop);
$("stop").addEventListener("click", () => {
  for (const cid of visibleStreams()) client.cancel(cid);
});

initUploadForm({
  client, view: () => state.view, onError: (text) => showError(text),
  onOwnFile: (done) => list.addEvent({ type: "file_upload", data: { ...done, username: client.user.username } }),
});

initSearch({ form: $("search-form"), input: $("search"), scope: $("search-scope"),
              panel: $("search-results"), summary: $("search-summary"), list: $("search-list"),
              close: $("search-close") },
            { client, currentRoom: () => (state.view?.kind === "room" ? state.view.room : null),
              roomName: (id) => state.rooms.get(id)?.room_name ?? id, open: openAt });

// ---- boot -------------------------------------------------------------------------------

client.restore().then((user) => { if (!user) auth.showSignedOut(""); })
  .catch(() => auth.showSignedOut("the server could not be reached"));
