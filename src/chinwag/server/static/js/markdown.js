// Message text -> a DOM fragment: markdown rendered by marked, then sanitised by
// DOMPurify to a short list of formatting tags. Nothing from a message ever runs:
// no raw HTML reaches innerHTML, no script, no event handler, no image or style.
import { marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.es.js";

const ALLOWED_TAGS = ["p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol",
  "li", "a", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td"];
const ALLOWED_ATTR = ["href", "title", "start"];

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

// Raw HTML in a message is shown as the text it is, never parsed as HTML (so not
// even an inert parse sees an <img onerror>); DOMPurify still cleans what marked made.
marked.use({ gfm: true, breaks: true, renderer: { html: ({ text }) => escapeHtml(text) } });

/** A sanitised DocumentFragment for `text` (markdown); `@name` mentions are marked
 * (class "mention", and "me" when it names `me`). */
export function renderMarkdown(text, { me = null } = {}) {
  const html = marked.parse(String(text ?? ""), { async: false });
  const fragment = DOMPurify.sanitize(html, {
    ALLOWED_TAGS, ALLOWED_ATTR, ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
    RETURN_DOM_FRAGMENT: true,
  });
  markMentions(fragment, me);
  return fragment;
}

// A username as the server accepts one; a trailing ".", ":" or "-" ends the sentence.
const MENTION = /(^|[^\w@])@([A-Za-z0-9_.:-]*[A-Za-z0-9_])/g;

// Mentions are found in the sanitised tree's text nodes and wrapped in <span>s made
// with textContent: no message text is ever parsed as HTML here. Code and links stay.
function markMentions(root, me) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const hits = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.nodeValue.includes("@") && !n.parentElement?.closest("code, pre, a")) hits.push(n);
  }
  for (const node of hits) {
    const text = node.nodeValue;
    const parts = [];
    let last = 0;
    for (const m of text.matchAll(MENTION)) {
      const at = m.index + m[1].length;
      parts.push(document.createTextNode(text.slice(last, at)));
      const span = document.createElement("span");
      span.className = m[2] === me ? "mention me" : "mention";
      span.textContent = `@${m[2]}`;
      parts.push(span);
      last = at + 1 + m[2].length;
    }
    if (!parts.length) continue;
    parts.push(document.createTextNode(text.slice(last)));
    node.replaceWith(...parts);
  }
}
