// The admin page: live stats (GET /api/v1/ws/stats) with a chart, users with their
// AI spend (disable / enable), rooms (delete). Every number comes from admin-only
// endpoints; a non-admin is told they are refused.
import { ChinwagClient } from "./chinwag-client.js";
import { el, formatCost } from "./messages.js";

const $ = (id) => document.getElementById(id);
const client = new ChinwagClient();
window.chinwag = client;
const REFRESH_MS = 2000;
const WINDOW_SAMPLES = 150; // 5 minutes at one sample per 2 s
const samples = [];          // {t, messages, connections}
let timer = null;

function show(id) {
  for (const s of ["auth", "refused", "admin"]) $(s).hidden = s !== id;
}

/** The §2 stats, flattened to their names ("rooms.shared", "ai.cost_usd", ...). */
function flatten(obj, prefix = "") {
  const out = [];
  for (const [k, v] of Object.entries(obj)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object") out.push(...flatten(v, name));
    else out.push([name, v]);
  }
  return out;
}

function renderStats(stats) {
  $("stats").replaceChildren(...flatten(stats).map(([name, value]) => {
    const shown = name.endsWith("cost_usd") ? formatCost(value) : String(value);
    const dd = el("dd", { text: shown, "data-stat": name });
    return el("div", { class: "stat" }, el("dt", { text: name }), dd);
  }));
}

function renderChart() {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const W = 600, H = 180, pad = 6;
  const rates = samples.map((s, i) => (i === 0 ? 0 : Math.max(0, s.messages - samples[i - 1].messages)));
  const conns = samples.map((s) => s.connections);
  const top = Math.max(1, ...rates, ...conns);
  // The x axis spans what has been sampled so far, up to the last 5 minutes.
  const step = (W - 2 * pad) / Math.max(1, samples.length - 1);
  const line = (values, color) => {
    const p = document.createElementNS(ns, "polyline");
    p.setAttribute("points", values.map((v, i) =>
      `${(pad + i * step).toFixed(1)},${(H - pad - (v / top) * (H - 2 * pad)).toFixed(1)}`).join(" "));
    p.setAttribute("fill", "none");
    p.setAttribute("stroke", color);
    p.setAttribute("stroke-width", "2");
    p.setAttribute("vector-effect", "non-scaling-stroke");
    return p;
  };
  svg.replaceChildren(line(rates, "#2f5bd3"), line(conns, "#1f7a45"));
  const seconds = Math.round((samples.at(-1).t - samples[0].t) / 1000);
  $("chart-scale").textContent = `top of the chart: ${top} · span: ${seconds} s`;
}

function budgetText(b) {
  const parts = [];
  if (b.tokens_per_day != null) parts.push(`${b.tokens_per_day} tokens/day`);
  if (b.usd_per_month != null) parts.push(`${formatCost(b.usd_per_month)}/month`);
  return parts.join(", ") || "default";
}

function renderUsers(users) {
  $("users").replaceChildren(...users.map((u) => {
    const toggle = el("button", { type: "button", text: u.disabled ? "Enable" : "Disable",
                                  class: u.disabled ? "" : "danger" });
    toggle.setAttribute("aria-label", `${u.disabled ? "Enable" : "Disable"} ${u.username}`);
    toggle.disabled = u.username === client.user.username;
    toggle.addEventListener("click", () => patchUser(u.username, { disabled: !u.disabled }));
    return el("tr", { "data-user": u.username },
      el("td", { text: u.username }), el("td", { text: u.is_admin ? "admin" : "user" }),
      el("td", { text: u.disabled ? "disabled" : "active" }),
      el("td", { text: u.online ? "online" : "" }),
      el("td", { text: String(u.ai.tokens_used) }), el("td", { text: formatCost(u.ai.cost_usd) }),
      el("td", { text: budgetText(u.budget) }), el("td", {}, toggle));
  }));
}

function renderRooms(rooms) {
  $("rooms").replaceChildren(...rooms.map((r) => {
    const del = el("button", { type: "button", text: "Delete", class: "danger" });
    del.setAttribute("aria-label", `Delete room ${r.room_id}`);
    del.addEventListener("click", async () => {
      if (!confirm(`Delete room ${r.room_id} for everyone?`)) return;
      await client.api(`/api/v1/ws/rooms/${encodeURIComponent(r.room_id)}`, { method: "DELETE" })
        .catch((e) => { $("admin-error").textContent = e.message; });
      refresh();
    });
    return el("tr", {}, el("td", { text: r.room_id }), el("td", { text: r.room_name }),
      el("td", { text: r.room_type }), el("td", { text: r.owner }),
      el("td", { text: String(r.members) }), el("td", { text: String(r.last_seq) }), el("td", {}, del));
  }));
}

async function patchUser(username, body) {
  $("admin-error").textContent = "";
  try {
    await client.api(`/api/v1/admin/users/${encodeURIComponent(username)}`, { method: "PATCH", body });
  } catch (e) { $("admin-error").textContent = e.message; }
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [stats, users, rooms] = await Promise.all([
      client.api("/api/v1/ws/stats"), client.api("/api/v1/admin/users"), client.api("/api/v1/admin/rooms")]);
    samples.push({ t: Date.now(), messages: stats.messages_received, connections: stats.active_connections });
    if (samples.length > WINDOW_SAMPLES) samples.shift();
    renderStats(stats);
    renderChart();
    renderUsers(users.users);
    renderRooms(rooms.rooms);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("updated").dataset.state = "open";
  } catch (e) {
    if (e.status === 403) { refused(); return; }
    if (e.status === 401) { show("auth"); return; }
    $("updated").textContent = "not reachable";
    $("updated").dataset.state = "reconnecting";
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function refused() {
  clearTimeout(timer);
  $("refused-user").textContent = client.user?.username ?? "";
  show("refused");
}

async function start() {
  $("whoami").textContent = client.user.username;
  $("sign-out").hidden = false;
  if (!client.user.is_admin) { refused(); return; }
  show("admin");
  refresh();
}

$("auth-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("auth-error").textContent = "";
  try {
    await client.signIn($("auth-username").value.trim(), $("auth-password").value);
  } catch (err) { $("auth-error").textContent = err.message; }
});
$("sign-out").addEventListener("click", () => client.signOut());
client.addEventListener("signed-in", start);
client.addEventListener("signed-out", () => {
  clearTimeout(timer);
  $("sign-out").hidden = true;
  $("whoami").textContent = "";
  show("auth");
});

client.restore().then((u) => { if (!u) show("auth"); }, () => show("auth"));
