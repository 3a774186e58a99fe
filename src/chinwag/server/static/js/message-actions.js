// What a person does to a message in a room (SPEC 14): react, reply, edit, delete;
// and how the stored changes (message_edited, message_deleted, reaction) show.
//
// Invariant: a message's state lives on its <li> as `li.msg` (the chat's data:
// content, edited_at, deleted, reactions). History items carry the sum of every
// change already, so only live changes are applied; a change whose message is not
// on screen yet waits in `pending` and is applied, in seq order, when it appears.
// Every change is set-like (content := x, user in/out of an emoji's list), so
// applying one the history item already counted changes nothing.
import { el, plain } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

export const EMOJI = [["👍", "thumbs up"], ["❤️", "heart"], ["😂", "laughing"], ["🎉", "party"],
  ["😮", "surprised"]];
export const CHANGES = new Set(["message_edited", "message_deleted", "reaction"]);
const PENDING_MAX = 500;

function snippet(msg, n = 80) {
  if (!msg) return "an earlier message";
  if (msg.deleted) return "message deleted";
  return plain(msg.content, n);
}

function time(ts) {
  return new Date(ts).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export class MessageActions {
  /** @param {object} hooks {client, me(), roomId(), canModerate(), onReply(msg), onError(text)} */
  constructor(hooks) {
    this.hooks = hooks;
    this.byId = new Map();     // server message id -> li
    this.pending = new Map();  // server message id -> [change events] for messages not shown
  }

  clear() { this.byId.clear(); this.pending.clear(); }

  get enabled() { return this.hooks.roomId() != null; }

  /** Give a chat's <li> its id, reply quote, reactions and action buttons. */
  decorate(li, d) {
    if (d.message_id == null || !this.enabled) return;
    li.msg = { ...d, reactions: { ...(d.reactions ?? {}) } };
    li.dataset.messageId = d.message_id;
    li.tabIndex = -1; // a quote's click moves focus here
    this.byId.set(d.message_id, li);
    if (d.deleted) { this.tombstone(li); return; }
    if (d.role === "user" && typeof d.reply_to === "number") {
      li.querySelector(".meta").after(this.quote(d.reply_to));
    }
    if (d.edited_at) this.markEdited(li, d.edited_at);
    if (li.querySelector(".body .mention.me")) li.classList.add("mentions-me");
    li.append(el("div", { class: "reactions", role: "group", "aria-label": "Reactions" }));
    this.renderReactions(li);
    li.append(this.toolbar(li));
    const waiting = this.pending.get(d.message_id);
    if (waiting) { this.pending.delete(d.message_id); for (const ev of waiting) this.apply(ev); }
    for (const q of document.querySelectorAll(`.quote[data-quote-of="${d.message_id}"]`)) {
      this.fillQuote(q, li);
    }
  }

  // ---- showing changes --------------------------------------------------------------

  /** A live message_edited / message_deleted / reaction event. */
  apply(ev) {
    const d = ev.data;
    const li = this.byId.get(d.message_id);
    if (!li) { this.wait(ev); return; }
    const msg = li.msg;
    if (ev.type === "message_deleted" || d.deleted) { this.tombstone(li); return; }
    if (msg.deleted) return;
    if (ev.type === "message_edited") {
      msg.content = d.content;
      msg.edited_at = d.edited_at;
      li.querySelector(".body").replaceChildren(renderMarkdown(d.content, { me: this.hooks.me() }));
      li.classList.toggle("mentions-me", !!li.querySelector(".body .mention.me"));
      this.markEdited(li, d.edited_at);
      this.refreshQuotes(li);
    } else if (ev.type === "reaction") {
      const who = (msg.reactions[d.emoji] ?? []).filter((u) => u !== d.username);
      if (d.on) who.push(d.username);
      if (who.length) msg.reactions[d.emoji] = who; else delete msg.reactions[d.emoji];
      this.renderReactions(li);
    }
  }

  wait(ev) {
    const id = ev.data.message_id;
    if (!this.pending.has(id) && this.pending.size >= PENDING_MAX) {
      this.pending.delete(this.pending.keys().next().value);
    }
    const list = this.pending.get(id) ?? [];
    list.push(ev);
    this.pending.set(id, list);
  }

  tombstone(li) {
    li.msg = { ...li.msg, deleted: true, content: undefined, reactions: {} };
    li.classList.add("deleted");
    li.classList.remove("mentions-me");
    for (const n of li.querySelectorAll(".quote, .edited, .status, .reactions, .actions, .picker, .editor, .ai-meta")) {
      n.remove();
    }
    const body = li.querySelector(".body");
    body.hidden = false;
    body.replaceChildren(el("em", { class: "tombstone", text: "message deleted" }));
    this.refreshQuotes(li);
  }

  markEdited(li, editedAt) {
    let mark = li.querySelector(".edited");
    if (!mark) {
      mark = el("span", { class: "edited", text: "(edited)" });
      li.querySelector(".meta time").after(mark);
    }
    mark.title = `edited ${time(editedAt)}`;
  }

  renderReactions(li) {
    const box = li.querySelector(".reactions");
    if (!box) return;
    const me = this.hooks.me();
    box.replaceChildren(...Object.entries(li.msg.reactions).map(([emoji, who]) => {
      const mine = who.includes(me);
      const chip = el("button", { type: "button", class: "chip", text: `${emoji} ${who.length}`,
        title: `${who.join(", ")} reacted with ${emoji}`, "aria-pressed": String(mine) });
      chip.addEventListener("click", () => this.react(li, emoji, !mine));
      return chip;
    }));
  }

  // ---- replies ----------------------------------------------------------------------

  quote(targetId) {
    const q = el("button", { type: "button", class: "quote", "data-quote-of": targetId },
      el("span", { class: "quote-author" }), el("span", { class: "quote-text" }));
    this.fillQuote(q, this.byId.get(targetId));
    q.addEventListener("click", () => this.jumpTo(targetId));
    return q;
  }

  fillQuote(q, target) {
    q.querySelector(".quote-author").textContent = target ? `↪ ${target.msg.username}` : "↪";
    q.querySelector(".quote-text").textContent = snippet(target?.msg);
    q.title = target ? "Show the message this replies to" : "That message is not loaded";
  }

  refreshQuotes(li) {
    for (const q of document.querySelectorAll(`.quote[data-quote-of="${li.msg.message_id}"]`)) {
      this.fillQuote(q, li);
    }
  }

  /** Scroll to a shown message and flash it; false when it is not loaded. */
  jumpTo(messageId) {
    const li = this.byId.get(messageId);
    if (!li) return false;
    li.scrollIntoView({ block: "center" });
    li.focus({ preventScroll: true });
    li.classList.remove("flash");
    void li.offsetWidth; // restart the animation
    li.classList.add("flash");
    return true;
  }

  // ---- the buttons on a message -----------------------------------------------------

  toolbar(li) {
    const d = li.msg;
    const mine = d.username === this.hooks.me() && d.role === "user";
    const bar = el("div", { class: "actions", role: "group", "aria-label": "Message actions" });
    const button = (text, label, onClick) => {
      const b = el("button", { type: "button", text, "aria-label": label });
      b.addEventListener("click", onClick);
      bar.append(b);
      return b;
    };
    const react = button("React", "React", () => this.togglePicker(li, react));
    button("Reply", "Reply", () => this.hooks.onReply(li.msg));
    if (mine) button("Edit", "Edit", () => this.edit(li));
    if (mine || this.hooks.canModerate()) button("Delete", "Delete", () => this.remove(li));
    react.setAttribute("aria-expanded", "false");
    return bar;
  }

  togglePicker(li, opener) {
    const open = li.querySelector(".picker");
    if (open) {
      open.remove();
      opener.setAttribute("aria-expanded", "false");
      document.removeEventListener("pointerdown", this.outside, true);
      opener.focus();
      return;
    }
    document.removeEventListener("pointerdown", this.outside, true);
    for (const other of document.querySelectorAll(".picker")) { // one picker at a time
      other.closest("li")?.querySelector(".actions [aria-expanded]")?.setAttribute("aria-expanded", "false");
      other.remove();
    }
    this.outside = (e) => { if (!li.contains(e.target)) this.togglePicker(li, opener); };
    document.addEventListener("pointerdown", this.outside, true);
    const picker = el("div", { class: "picker", role: "group", "aria-label": "Pick a reaction" });
    for (const [emoji, name] of EMOJI) {
      const b = el("button", { type: "button", text: emoji, "aria-label": `React with ${emoji}`,
                                title: name });
      b.addEventListener("click", () => {
        const mine = (li.msg.reactions[emoji] ?? []).includes(this.hooks.me());
        this.react(li, emoji, !mine);
        this.togglePicker(li, opener);
      });
      picker.append(b);
    }
    picker.addEventListener("keydown", (e) => { if (e.key === "Escape") this.togglePicker(li, opener); });
    li.querySelector(".actions").after(picker);
    opener.setAttribute("aria-expanded", "true");
    picker.querySelector("button").focus();
  }

  async react(li, emoji, on) {
    try { await this.hooks.client.react(this.hooks.roomId(), li.msg.message_id, emoji, on); }
    catch (e) { this.hooks.onError(e.message); }
  }

  async remove(li) {
    if (!confirm("Delete this message for everyone?")) return;
    try { await this.hooks.client.deleteMessage(this.hooks.roomId(), li.msg.message_id); }
    catch (e) { this.hooks.onError(e.message); }
  }

  edit(li) {
    if (li.querySelector(".editor")) { li.querySelector(".editor textarea").focus(); return; }
    const body = li.querySelector(".body");
    const input = el("textarea", { rows: 2, "aria-label": "Edit message" });
    input.value = li.msg.content ?? "";
    const save = el("button", { type: "submit", class: "primary", text: "Save" });
    const cancel = el("button", { type: "button", text: "Cancel" });
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "editor" }, input, el("div", { class: "row" }, save, cancel), error);
    const close = () => { form.remove(); body.hidden = false; li.focus({ preventScroll: true }); };
    cancel.addEventListener("click", close);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); close(); }
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = input.value;
      if (!text.trim() || text === li.msg.content) { close(); return; }
      save.disabled = true;
      try {
        await this.hooks.client.editMessage(this.hooks.roomId(), li.msg.message_id, text);
        close();
      } catch (err) { error.textContent = err.message; save.disabled = false; }
    });
    body.hidden = true;
    body.after(form);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
}

/** The "Replying to …" bar above the composer. */
export class ReplyBar {
  constructor(bar, text, cancel, onChange = () => {}) {
    this.bar = bar;
    this.text = text;
    this.id = null;
    this.onChange = onChange;
    cancel.addEventListener("click", () => this.clear());
  }

  set(msg) {
    this.id = msg.message_id;
    this.text.replaceChildren(el("span", { class: "muted", text: "Replying to " }),
      el("strong", { text: msg.username ?? "?" }), el("span", { text: `: ${snippet(msg, 60)}` }));
    this.bar.hidden = false;
    this.onChange();
  }

  clear() {
    this.id = null;
    this.bar.hidden = true;
    this.onChange();
  }
}
