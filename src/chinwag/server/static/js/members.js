// The members panel of a room: the member list (with "Remove" for the owner and
// admins) and the "Add member" form with username suggestions.
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const membersPath = (roomId) => `/api/v1/ws/rooms/${encodeURIComponent(roomId)}/members`;

/** @param {object} hooks {client, state, roomId(), refresh(), onError(text)} */
export function initMembers(hooks) {
  const { client } = hooks;
  $("members-toggle").addEventListener("click", () => {
    const m = $("members");
    m.hidden = !m.hidden;
    $("members-toggle").setAttribute("aria-expanded", String(!m.hidden));
  });
  $("add-member").addEventListener("input", async (e) => {
    const prefix = e.target.value.trim();
    if (!prefix) return;
    const r = await client.api(`/api/v1/users?prefix=${encodeURIComponent(prefix)}`).catch(() => ({ users: [] }));
    $("user-suggestions").replaceChildren(...r.users.map((u) => el("option", { value: u })));
  });
  $("add-member-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const username = $("add-member").value.trim();
    if (!username) return;
    try {
      await client.api(membersPath(hooks.roomId()), { method: "POST", body: { username } });
      $("add-member").value = "";
      hooks.refresh();
    } catch (err) { hooks.onError(err.message); }
  });
}

/** Draw the member list from `state` {members, online, owner}. */
export function renderMembers(hooks) {
  const { client, state } = hooks;
  const canRemove = state.owner === client.user.username || client.user.is_admin;
  $("member-list").replaceChildren(...state.members.map((m) => {
    const li = el("li", { class: "row" }, el("span", { text: m }),
      el("span", { class: "muted", text: state.online.has(m) ? "online" : "" }));
    if (canRemove && m !== state.owner) {
      const b = el("button", { type: "button", text: "Remove", "aria-label": `Remove ${m}` });
      b.addEventListener("click", async () => {
        await client.api(`${membersPath(hooks.roomId())}/${encodeURIComponent(m)}`, { method: "DELETE" })
          .catch((e) => hooks.onError(e.message));
        hooks.refresh();
      });
      li.append(b);
    }
    return li;
  }));
}
