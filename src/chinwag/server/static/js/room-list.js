// The sidebar's room lists (my rooms with unread and mention badges, the shared rooms
// I may join) and the "New room" form.
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

/** Draw both lists from `state.rooms` and `state.shared`. @param {object} on {open(id), join(id)} */
export function renderRoomLists(state, on) {
  const mine = $("my-rooms");
  mine.replaceChildren(...[...state.rooms.values()].map((r) => {
    const current = state.view?.kind === "room" && state.view.room === r.room_id;
    const b = el("button", { type: "button", class: "room-button" },
      el("span", { class: "name", text: r.room_name }),
      el("span", { class: "kind muted", text: r.room_type }));
    if (r.mentions && !current) {
      b.append(el("span", { class: "badge mention-badge", text: `@${r.mentions}`,
                            "aria-label": `${r.mentions} mention${r.mentions === 1 ? "" : "s"}` }));
    }
    if (r.unread && !current) {
      b.append(el("span", { class: "badge", text: String(r.unread), "aria-label": `${r.unread} unread` }));
    }
    if (current) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => on.open(r.room_id));
    return el("li", {}, b);
  }));
  if (!state.rooms.size) mine.append(el("li", { class: "muted", text: "No rooms yet" }));
  const shared = $("shared-rooms");
  shared.replaceChildren(...state.shared.map((r) => {
    const b = el("button", { type: "button", text: "Join" });
    b.setAttribute("aria-label", `Join ${r.room_name}`);
    b.addEventListener("click", () => on.join(r.room_id));
    return el("li", { class: "row" }, el("span", { class: "name", text: r.room_name }),
              el("span", { class: "muted", text: `${r.members} members` }), b);
  }));
  if (!state.shared.length) shared.append(el("li", { class: "muted", text: "Nothing to join" }));
}

function slug(name) {
  const base = name.toLowerCase().replace(/[^a-z0-9_.:-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48);
  const suffix = Math.random().toString(36).slice(2, 7);
  return `${base || "room"}-${suffix}`;
}

/** The "New room" form: creates the room over HTTP, then `created(roomId)` joins it. */
export function initNewRoomForm({ client, created, onError }) {
  $("new-room").addEventListener("click", () => {
    const form = $("new-room-form");
    form.hidden = !form.hidden;
    $("new-room").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("room-name").focus();
  });
  $("new-room-cancel").addEventListener("click", () => { $("new-room-form").hidden = true; });
  $("new-room-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("room-name").value.trim();
    if (!name) return;
    try {
      const room = await client.api("/api/v1/ws/rooms", {
        method: "POST", body: { room_id: slug(name), room_name: name, room_type: $("room-type").value } });
      $("new-room-form").hidden = true;
      $("room-name").value = "";
      await created(room.room_id);
    } catch (err) { onError(err.message); }
  });
}
