// The message list: one <li> per stored event (keyed by seq) or live AI stream.
// Text reaches the DOM only as textContent or through renderMarkdown (sanitised).
// Changes to a message (edits, deletions, reactions) are stored events too: they
// take a seq but no <li>; MessageActions (hooks.actions) shows them on the message.
import { el } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { CHANGES } from "./message-actions.js";

export { el };

function time(ts) {
  const d = ts ? new Date(ts) : new Date();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatCost(usd) {
  const n = Number(usd || 0);
  return `$${n < 0.01 && n > 0 ? n.toFixed(6) : n.toFixed(4)}`;
}

/** "<N> tokens · <model> · $<cost>" for an AI completion. */
export function aiMeta(d) {
  const parts = [`${d.tokens_used ?? 0} tokens`, d.model_used ?? "", formatCost(d.cost_usd)];
  if (d.cancelled) parts.push("stopped");
  if (d.error) parts.push(`error: ${d.error}`);
  return parts.filter(Boolean).join(" · ");
}

export class MessageList {
  /** @param {HTMLOListElement} root  @param {object} hooks {me, client, onFileError, actions} */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.actions = hooks.actions;
    this.bySeq = new Map();
    this.changeSeqs = new Set(); // seqs of message changes handled (they have no <li>)
    this.byClientId = new Map();
    this.streams = new Map(); // conversation_id -> li of a reply being written
    this.blobUrls = [];
  }

  clear() {
    this.root.replaceChildren();
    this.bySeq.clear();
    this.changeSeqs.clear();
    this.actions.clear();
    this.byClientId.clear();
    this.streams.clear();
    for (const u of this.blobUrls) URL.revokeObjectURL(u);
    this.blobUrls = [];
  }

  get newestSeq() {
    let m = 0;
    for (const s of this.bySeq.keys()) if (s > m) m = s;
    for (const s of this.changeSeqs) if (s > m) m = s;
    return m;
  }
  get oldestSeq() { let m = Infinity; for (const s of this.bySeq.keys()) if (s < m) m = s; return m; }

  atBottom() { const r = this.root; return r.scrollHeight - r.scrollTop - r.clientHeight < 40; }
  scrollToBottom() { this.root.scrollTop = this.root.scrollHeight; }

  /** Add a stored room event (live or from history); ignored if its seq is shown. A
   * change to a message is applied when live; a history page's messages show the
   * sum of their changes already. */
  addEvent(ev, { prepend = false, history = prepend } = {}) {
    if (ev.seq != null && (this.bySeq.has(ev.seq) || this.changeSeqs.has(ev.seq))) return null;
    if (CHANGES.has(ev.type)) {
      if (ev.seq != null) this.changeSeqs.add(ev.seq);
      if (!history) this.actions.apply(ev);
      return null;
    }
    const li = this.render(ev);
    if (!li) return null;
    if (ev.seq != null) { li.dataset.seq = ev.seq; this.bySeq.set(ev.seq, li); }
    if (prepend) this.root.prepend(li);
    else this.insertInOrder(li, ev.seq);
    return li;
  }

  insertInOrder(li, seq) {
    if (seq == null) { this.root.append(li); return; }
    // Live events come in order; only a stream placeholder may sit after them.
    let after = this.root.lastElementChild;
    while (after && (after.dataset.seq == null || Number(after.dataset.seq) > seq)) {
      after = after.previousElementSibling;
    }
    if (after) after.after(li); else this.root.prepend(li);
  }

  render(ev) {
    const d = ev.data ?? {};
    if (ev.type === "chat") return this.chat(d);
    if (ev.type === "file_upload") return this.file(d);
    if (ev.type === "presence") {
      return el("li", { class: "notice", text: `${d.username} ${d.status === "joined" ? "joined" : "left"} the room` });
    }
    return null;
  }

  chat(d) {
    if (d.role === "assistant") {
      const live = d.conversation_id != null ? this.streams.get(d.conversation_id) : null;
      if (live) return this.finishStream(d); // live completions carry content "": keep the chunks
      return this.assistant(d, d.content);
    }
    const mine = d.username === this.hooks.me();
    const li = el("li", { class: `msg${mine ? " mine" : ""}` },
      el("div", { class: "meta" }, el("strong", { class: "author", text: d.username ?? "?" }),
         el("time", { text: time(d.timestamp) })),
      el("div", { class: "body" }, renderMarkdown(d.content, { me: this.hooks.me() })));
    this.actions.decorate(li, d);
    if (mine && !d.deleted) {
      const status = el("span", { class: "status", "data-status": "sent", text: "sent" });
      li.querySelector(".meta").append(status);
      if (d.client_message_id) this.byClientId.set(d.client_message_id, li);
    }
    return li;
  }

  assistant(d, content) {
    const li = el("li", { class: "msg ai" },
      el("div", { class: "meta" }, el("strong", { class: "author", text: "assistant" }),
         el("time", { text: time(d.timestamp) })),
      el("div", { class: "body" }, renderMarkdown(content ?? "")));
    if (d.done) li.append(el("div", { class: "ai-meta", text: aiMeta(d) }));
    if (d.done || d.deleted) this.actions.decorate(li, d);
    return li;
  }

  /** An AI chunk: append to the reply being written in this conversation. */
  chunk(conversationId, text) {
    let li = this.streams.get(conversationId);
    if (!li) {
      li = this.assistant({}, "");
      li.classList.add("streaming");
      li.dataset.raw = "";
      li.setAttribute("aria-busy", "true");
      this.streams.set(conversationId, li);
      this.root.append(li);
    }
    li.dataset.raw += text;
    li.querySelector(".body").replaceChildren(renderMarkdown(li.dataset.raw));
    return li;
  }

  /** A roomless completion: close the stream with its tokens, model and cost. */
  finishStream(d) {
    const li = this.streams.get(d.conversation_id);
    if (!li) {
      const done = this.assistant(d, d.content);
      this.root.append(done);
      return done;
    }
    this.streams.delete(d.conversation_id);
    li.classList.remove("streaming");
    li.removeAttribute("aria-busy");
    if (d.content) li.querySelector(".body").replaceChildren(renderMarkdown(d.content));
    li.append(el("div", { class: "ai-meta", text: aiMeta(d) }));
    this.actions.decorate(li, { ...d, content: d.content || li.dataset.raw });
    return li;
  }

  /** A delivery_confirmation for one of my messages: show its best state so far. */
  receipt(d) {
    const li = this.byClientId.get(d.message_id);
    if (!li) return;
    const status = li.querySelector(".status");
    if (!status) return; // deleted since
    const rank = { sent: 0, delivered: 1, read: 2 };
    const next = d.status === "read" ? "read" : "delivered";
    if (rank[next] < rank[status.dataset.status]) return;
    const readers = new Set((li.dataset.readers ?? "").split(",").filter(Boolean));
    if (next === "read" && d.recipient) readers.add(d.recipient);
    li.dataset.readers = [...readers].join(",");
    status.dataset.status = next;
    status.textContent = next === "read" ? `read by ${[...readers].join(", ")}` : "delivered";
  }

  /** Delivered/read state of my older messages from the members' cursors
   * (GET /rooms/{id}/receipts); live receipts then move it on. Alone in the room,
   * a stored message is delivered to everyone there is, as its live answer said. */
  applyCursors(members) {
    const others = members.filter((m) => m.username !== this.hooks.me());
    for (const [id, li] of this.byClientId) {
      const seq = Number(li.dataset.seq);
      if (!seq) continue;
      const readers = others.filter((m) => m.read_seq >= seq);
      for (const m of readers) this.receipt({ message_id: id, status: "read", recipient: m.username });
      if (!readers.length && others.every((m) => m.delivered_seq >= seq)) {
        this.receipt({ message_id: id, status: "delivered" });
      }
    }
  }

  file(d) {
    const li = el("li", { class: `msg file${d.username === this.hooks.me() ? " mine" : ""}` },
      el("div", { class: "meta" }, el("strong", { class: "author", text: d.username ?? "?" }),
         el("time", { text: time(d.timestamp) })));
    const link = el("a", { href: "#", class: "download", text: `Download ${d.file_name}` });
    link.setAttribute("download", d.file_name);
    const size = el("span", { class: "muted", text: ` (${Math.ceil((d.file_size ?? 0) / 1024)} KB)` });
    const body = el("div", { class: "body" }, link, size);
    li.append(body);
    const fetchBlob = async () => {
      const blob = await this.hooks.client.fileBlob(d.url);
      const url = URL.createObjectURL(blob);
      this.blobUrls.push(url);
      return url;
    };
    link.addEventListener("click", async (e) => {
      if (link.dataset.ready) return; // the blob URL is set: let the browser save it
      e.preventDefault();
      try {
        link.href = await fetchBlob();
        link.dataset.ready = "1";
        link.click();
      } catch (err) { this.hooks.onFileError(err); }
    }, { capture: false });
    if (/^image\/(png|jpeg|gif|webp)$/.test(d.mime_type ?? "")) {
      // shown once decoded: no empty or broken image while the bytes download
      const img = el("img", { class: "preview", alt: `Preview of ${d.file_name}` });
      img.addEventListener("load", () => body.prepend(img), { once: true });
      fetchBlob().then((u) => { img.src = u; }, () => {});
    }
    return li;
  }

  /** An AI conversation turn (from GET /conversations/{id}/messages). */
  turn(t) {
    if (t.role === "assistant") {
      return this.root.append(this.assistant({ ...t, done: true, timestamp: t.timestamp ?? t.created_at },
                                             t.content));
    }
    return this.root.append(this.chat({ ...t, role: "user", username: t.username }));
  }

  notice(text) { this.root.append(el("li", { class: "notice", text })); }
}
