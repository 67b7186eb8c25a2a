// The date histogram: bucket arithmetic (UTC, like the API) and a bar chart that filters by a click, a
// drag across bars, or the keyboard (arrow keys move between bars, Enter or Space picks one).

import { formatCount, formatDate, h, replaceChildren } from "./dom.js";

export const INTERVALS = ["year", "month", "week", "day"];
const DAY_MS = 86_400_000;
// The API refuses a histogram of more than 5,000 buckets; stay well below it.
const MAX_BUCKETS = 4_000;

/** Milliseconds of an ISO date or datetime ("1987-03-01" is UTC midnight); NaN when invalid. */
export function parseDay(text) {
  if (!text) return Number.NaN;
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
}

/** "YYYY-MM-DD" of a UTC instant. */
export function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The start of the next bucket after `start` (a bucket start in ms). */
export function nextBucket(start, interval) {
  const d = new Date(start);
  if (interval === "year") return Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  if (interval === "month") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return start + (interval === "week" ? 7 : 1) * DAY_MS;
}

function bucketStart(ms, interval) {
  const d = new Date(ms);
  if (interval === "year") return Date.UTC(d.getUTCFullYear(), 0, 1);
  if (interval === "month") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  if (interval === "week") return ms - ((d.getUTCDay() + 6) % 7) * DAY_MS; // ISO weeks start on Monday
  return ms;
}

/** Whether `from` buckets add up exactly to `to` buckets (days to anything, months to years). */
export function canRollUp(from, to) {
  return from === to || from === "day" || (from === "month" && to === "year");
}

/** API buckets ({start: "YYYY-MM-DD", count}) as {start, end, count} in ms, rolled up to `to`. */
export function toBuckets(apiBuckets, from, to) {
  const out = [];
  for (const { start, count } of apiBuckets ?? []) {
    const ms = bucketStart(parseDay(start), to);
    const last = out.at(-1);
    if (last && last.start === ms) last.count += count;
    else out.push({ start: ms, end: nextBucket(ms, to), count });
  }
  return out;
}

/** The bucket size that draws `days` days as a readable number of bars (about 10 to 100). */
function intervalForSpan(days) {
  if (days > 366 * 8) return "year";
  if (days > 366) return "month";
  if (days > 70) return "week";
  return "day";
}

/**
 * Which interval to ask the API for and which to draw, given the URL's choice, the date filter and the
 * extent of the data ({start, end} in ms, or null when not known yet: then months, a guess).
 * The histogram is counted without the date filter, so a narrow filter on a long extent would ask for
 * too many day buckets: then weeks are asked for instead.
 */
export function chooseInterval(chosen, after, before, extent) {
  if (chosen) return { request: chosen, draw: chosen };
  const lo = Number.isNaN(parseDay(after)) ? extent?.start : parseDay(after);
  const hi = Number.isNaN(parseDay(before)) ? extent?.end : parseDay(before);
  if (lo === undefined || hi === undefined) return { request: "month", draw: "month" };
  let draw = intervalForSpan(Math.max(hi - lo, DAY_MS) / DAY_MS);
  const extentDays = extent ? (extent.end - extent.start) / DAY_MS : 0;
  if (draw === "day" && extentDays > MAX_BUCKETS) draw = "week";
  return { request: draw, draw };
}

/** The extent {start, end} (ms) of API buckets of size `interval`, or null when there are none. */
export function extentOf(apiBuckets, interval) {
  if (!apiBuckets?.length) return null;
  const start = parseDay(apiBuckets[0].start);
  return { start, end: nextBucket(parseDay(apiBuckets.at(-1).start), interval) };
}

export class Histogram {
  /**
   * @param {HTMLElement} root the bar container
   * @param {HTMLElement} axis the labels under it
   * @param {(start: number, end: number) => void} onSelect called with a [start, end) range in ms
   */
  constructor(root, axis, onSelect) {
    this.root = root;
    this.axis = axis;
    this.onSelect = onSelect;
    this.buckets = [];
    this.anchor = null;
    this.focusIndex = -1;
    root.addEventListener("pointerdown", (e) => this.pointerDown(e));
    root.addEventListener("pointermove", (e) => this.pointerMove(e));
    root.addEventListener("pointerup", (e) => this.pointerUp(e));
    root.addEventListener("pointercancel", () => this.cancelDrag());
    root.addEventListener("lostpointercapture", () => this.cancelDrag());
    root.addEventListener("click", (e) => this.keyboardClick(e));
    root.addEventListener("keydown", (e) => this.keyDown(e));
  }

  /** Draw buckets ({start, end, count}) of size `interval`; `message` replaces the bars when given. */
  render(buckets, interval, message = "") {
    this.buckets = buckets;
    this.interval = interval;
    this.bars = [];
    if (message || !buckets.length) {
      this.root.classList.add("is-empty");
      replaceChildren(this.root, h("p", { class: "histogram-message", text: message || "No dates to show" }));
      replaceChildren(this.axis);
      return;
    }
    this.root.classList.remove("is-empty");
    this.root.classList.toggle("is-dense", buckets.length > 80);
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const unit = interval === "week" ? "day" : interval;
    this.focusIndex = Math.min(Math.max(this.focusIndex, 0), buckets.length - 1);
    this.bars = buckets.map((bucket, i) => {
      const label = `${this.label(bucket)}: ${formatCount(bucket.count)} ${bucket.count === 1 ? "article" : "articles"}`;
      const fill = h("span", { class: "bar-fill" });
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
      fill.style.height = bucket.count ? `max(3px, ${((bucket.count / max) * 100).toFixed(2)}%)` : "";
      return h(
        "button",
        {
          type: "button",
          class: bucket.count ? "bar" : "bar is-zero",
          tabindex: i === this.focusIndex ? "0" : "-1",
          "aria-label": label,
          title: label,
          "data-index": i,
        },
        fill,
      );
    });
    const hadFocus = this.root.contains(document.activeElement);
    replaceChildren(this.root, this.bars);
    if (hadFocus) this.bars[this.focusIndex].focus();
    // The axis has one cell per bar, laid out like the bars, so labels sit under their bars.
    const n = buckets.length;
    const labelled = new Map(n === 1 ? [[0, "middle"]] : [[0, "first"], [n - 1, "last"]]);
    if (n > 4) labelled.set(Math.floor(n / 2), "middle");
    this.axis.classList.toggle("is-dense", n > 80);
    replaceChildren(
      this.axis,
      buckets.map((bucket, i) =>
        h("span", { class: "tick" }, labelled.has(i) ? h("span", { class: labelled.get(i), text: formatDate(bucket.start, unit) }) : null),
      ),
    );
  }

  label(bucket) {
    if (this.interval === "week") return `Week of ${formatDate(bucket.start, "day")}`;
    return formatDate(bucket.start, this.interval);
  }

  indexAt(clientX) {
    const rect = this.root.getBoundingClientRect();
    const i = Math.floor(((clientX - rect.left) / rect.width) * this.buckets.length);
    return Math.min(Math.max(i, 0), this.buckets.length - 1);
  }

  pointerDown(e) {
    if (!this.buckets.length || e.button !== 0) return;
    this.anchor = this.indexAt(e.clientX);
    this.root.setPointerCapture(e.pointerId);
    this.preview(this.anchor, this.anchor);
  }

  pointerMove(e) {
    if (this.anchor !== null) this.preview(this.anchor, this.indexAt(e.clientX));
  }

  pointerUp(e) {
    if (this.anchor === null) return;
    const [lo, hi] = [this.anchor, this.indexAt(e.clientX)].sort((a, b) => a - b);
    this.anchor = null;
    this.preview(-1, -1);
    this.focusIndex = lo;
    this.onSelect(this.buckets[lo].start, this.buckets[hi].end);
  }

  cancelDrag() {
    if (this.anchor === null) return;
    this.anchor = null;
    this.preview(-1, -1);
  }

  preview(a, b) {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    this.bars.forEach((bar, i) => bar.classList.toggle("is-selecting", i >= lo && i <= hi && lo >= 0));
  }

  /** Enter or Space on a bar (a click with detail 0): pointer clicks are handled as drags above. */
  keyboardClick(e) {
    const bar = e.target.closest(".bar");
    if (!bar || e.detail !== 0) return;
    const bucket = this.buckets[Number(bar.dataset.index)];
    this.focusIndex = Number(bar.dataset.index);
    this.onSelect(bucket.start, bucket.end);
  }

  keyDown(e) {
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowDown: -1, ArrowUp: 1 };
    let next = this.focusIndex;
    if (e.key in moves) next += moves[e.key];
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = this.bars.length - 1;
    else return;
    e.preventDefault();
    next = Math.min(Math.max(next, 0), this.bars.length - 1);
    this.bars[this.focusIndex]?.setAttribute("tabindex", "-1");
    this.focusIndex = next;
    this.bars[next].setAttribute("tabindex", "0");
    this.bars[next].focus();
  }
}

export { DAY_MS };
