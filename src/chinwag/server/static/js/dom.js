// el(tag, props, ...children): the one way the views make elements. Text goes in
// as textContent ("text"), never as HTML.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

/** Markdown source as plain words for a one-line snippet (list, heading and quote
 * marks and emphasis characters left out), cut to `n` characters. */
export function plain(text, n = Infinity) {
  const flat = String(text ?? "").replace(/^\s*(?:[-*+>]|\d+\.|#+)\s+/gm, "")
    .replace(/[*_~`]+/g, "").replace(/\s+/g, " ").trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

/** Remember where the focus is now; the function returned focuses `target` later,
 * unless the user has moved the focus elsewhere meanwhile (to the search box, say). */
export function focusUnlessMoved() {
  const before = document.activeElement;
  return (target) => {
    const now = document.activeElement;
    if (now === before || now === document.body) target.focus();
  };
}
