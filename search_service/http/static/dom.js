// Safe DOM building. Article text never goes through innerHTML: every string becomes a text node or an
// attribute value, and highlighted text is rebuilt from text nodes and <mark> elements only.

/** An element with attributes and children. Strings become text nodes; null/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

/** Undo the API's HTML escaping (Python's html.escape) in one pass, so "&amp;lt;" stays "&lt;". */
export function decodeEntities(text) {
  return text.replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
}

/**
 * A highlight from the API (HTML-escaped text whose only markup is <mark>…</mark>) as DOM nodes.
 * The string is split on the literal tags; everything else is decoded and inserted as text, so any
 * other markup, escaped or not, can only ever show up as characters on the page.
 */
export function highlighted(escaped) {
  const fragment = document.createDocumentFragment();
  let marked = false;
  for (const part of String(escaped ?? "").split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>" || part === "</mark>") {
      marked = part === "<mark>";
    } else if (part) {
      const text = document.createTextNode(decodeEntities(part));
      fragment.append(marked ? h("mark", {}, text) : text);
    }
  }
  return fragment;
}

/** The URL if it is an absolute http(s) URL, else null (no javascript:, data:, relative tricks). */
export function safeHttpUrl(value) {
  if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

const numberFormat = new Intl.NumberFormat("en");
export const formatCount = (n) => numberFormat.format(n);

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A UTC date (ms, Date or ISO string) as "26 Feb 1987" (day), "Feb 1987" (month) or "1987" (year). */
export function formatDate(value, unit = "day") {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  const year = String(date.getUTCFullYear());
  if (unit === "year") return year;
  const month = `${MONTHS[date.getUTCMonth()]} ${year}`;
  return unit === "month" ? month : `${date.getUTCDate()} ${month}`;
}

export function debounce(fn, ms) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
