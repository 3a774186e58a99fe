// The model picker: "No AI", then the models the server offers (or its default one).
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
export const NO_AI = "none";
export const DEFAULT_MODEL = "";

export async function loadModels(client, state) {
  try {
    const models = await client.api("/api/v1/models");
    state.models = Array.isArray(models) ? models : (models.models ?? []);
  } catch {
    state.models = []; // no model list on this server: the default model answers
  }
  const select = $("model");
  select.replaceChildren(el("option", { value: NO_AI, text: "No AI" }));
  if (state.models.length === 0) select.append(el("option", { value: DEFAULT_MODEL, text: "AI (default model)" }));
  for (const m of state.models) {
    select.append(el("option", { value: m.id, text: m.provider ? `${m.id} (${m.provider})` : m.id }));
  }
}

export function firstModel(state) { return state.models[0]?.id ?? DEFAULT_MODEL; }
