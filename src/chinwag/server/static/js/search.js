// The message search box (GET /api/v1/search): results show room, author, time and
// a snippet with the words found marked; choosing one opens its room at the message.
// Result text is set as textContent only.
import { el, plain } from "./dom.js";

const WORD = /[\p{L}\p{N}_]+/gu;

/** `text` as nodes, the words of `query` wrapped in <mark>. */
function marked(text, query) {
  const words = new Set((query.match(WORD) ?? []).map((w) => w.toLowerCase()));
  const out = [];
  let last = 0;
  for (const m of text.matchAll(WORD)) {
    if (!words.has(m[0].toLowerCase())) continue;
    out.push(document.createTextNode(text.slice(last, m.index)), el("mark", { text: m[0] }));
    last = m.index + m[0].length;
  }
  out.push(document.createTextNode(text.slice(last)));
  return out;
}

function around(text, query, n = 140) {
  const flat = plain(text);
  if (flat.length <= n) return flat;
  const first = (query.match(WORD) ?? [])[0];
  const at = first ? Math.max(0, flat.toLowerCase().indexOf(first.toLowerCase()) - 40) : 0;
  return `${at ? "…" : ""}${flat.slice(at, at + n)}${at + n < flat.length ? "…" : ""}`;
}

/**
 * @param {object} ui {form, input, scope, panel, summary, list, close}
 * @param {object} hooks {client, currentRoom(), roomName(id), open(roomId, messageId)}
 */
export function initSearch(ui, hooks) {
  let asked = 0;
  const hide = () => { ui.panel.hidden = true; };
  ui.close.addEventListener("click", () => { hide(); ui.input.focus(); });
  ui.panel.addEventListener("keydown", (e) => { if (e.key === "Escape") { hide(); ui.input.focus(); } });
  ui.input.addEventListener("keydown", (e) => { if (e.key === "Escape") hide(); });
  ui.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = ui.input.value.trim();
    if (!q) { hide(); return; }
    const roomId = ui.scope.value === "room" ? hooks.currentRoom() : null;
    const mine = ++asked;
    ui.panel.hidden = false;
    ui.summary.textContent = "Searching…";
    ui.list.replaceChildren();
    let r;
    try { r = await hooks.client.search(q, { roomId }); } catch (err) {
      if (mine === asked) ui.summary.textContent = err.message;
      return;
    }
    if (mine !== asked) return; // a newer search is under way
    const where = roomId ? ` in ${hooks.roomName(roomId)}` : "";
    ui.summary.textContent = r.results.length
      ? `${r.results.length}${r.next_before_id ? "+" : ""} result${r.results.length === 1 ? "" : "s"} for “${q}”${where}`
      : `Nothing found for “${q}”${where}`;
    ui.list.replaceChildren(...r.results.map((hit) => {
      const b = el("button", { type: "button", class: "hit" },
        el("span", { class: "hit-head" },
          el("strong", { class: "hit-room", text: hooks.roomName(hit.room_id) }),
          el("span", { class: "hit-user", text: hit.username ?? "" }),
          el("time", { class: "muted", text: new Date(hit.timestamp).toLocaleString([],
            { dateStyle: "medium", timeStyle: "short" }) })),
        el("span", { class: "hit-text" }, ...marked(around(hit.content, q), q)));
      b.addEventListener("click", () => { hide(); hooks.open(hit.room_id, hit.message_id); });
      return el("li", {}, b);
    }));
  });
}
