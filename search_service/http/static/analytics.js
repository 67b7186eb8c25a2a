// The analytics page: asks for the admin key (kept in sessionStorage: this tab only, gone when it
// closes), then draws /admin/analytics/summary, top-queries and no-results. Every string from the
// API becomes a text node or an attribute; the chart is SVG built element by element.

import { formatCount, formatDate, h, replaceChildren } from "./dom.js";

const KEY = "search-admin-key";
const SVG = "http://www.w3.org/2000/svg";
const DAY_MS = 86_400_000;
const ROWS = 20;

const $ = (id) => document.getElementById(id);
const ui = {
  keyForm: $("key-form"),
  key: $("key"),
  keyError: $("key-error"),
  report: $("report"),
  range: $("range"),
  forget: $("forget"),
  status: $("status"),
  totals: $("totals"),
  chart: $("chart"),
  top: $("top").tBodies[0],
  none: $("no-results").tBodies[0],
  positions: $("positions").tBodies[0],
};

class Unauthorized extends Error {}

async function api(path, params) {
  const response = await fetch(`${path}?${new URLSearchParams(params)}`, {
    headers: { Accept: "application/json", Authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ""}` },
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // reported below
  }
  if (response.status === 401) throw new Unauthorized(body?.error?.message ?? "wrong key");
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body;
}

function askForKey(message = "") {
  ui.report.hidden = true;
  ui.keyForm.hidden = false;
  ui.keyError.hidden = !message;
  ui.keyError.textContent = message;
  ui.key.focus();
}

async function load() {
  if (!sessionStorage.getItem(KEY)) {
    askForKey();
    return;
  }
  ui.keyForm.hidden = true;
  ui.report.hidden = false;
  ui.report.setAttribute("aria-busy", "true");
  ui.status.textContent = "Loading…";
  const since = ui.range.value;
  try {
    const [summary, top, none] = await Promise.all([
      api("/admin/analytics/summary", { since }),
      api("/admin/analytics/top-queries", { since, limit: ROWS }),
      api("/admin/analytics/no-results", { since, limit: ROWS }),
    ]);
    renderTotals(summary);
    renderChart(summary);
    renderTop(top.rows);
    renderNone(none.rows);
    renderPositions(summary.positions);
    ui.status.textContent = `${formatDate(summary.since)} – today (UTC)`;
  } catch (error) {
    if (error instanceof Unauthorized) {
      sessionStorage.removeItem(KEY);
      askForKey(`The server refused the key: ${error.message}`);
    } else {
      ui.status.textContent = `Could not load the analytics: ${error.message}`;
    }
  } finally {
    ui.report.removeAttribute("aria-busy");
  }
}

const percent = (x) => `${(100 * x).toFixed(1)}%`;

function renderTotals(s) {
  const figures = [
    ["Searches", formatCount(s.searches)],
    ["Found nothing", percent(s.zero_result_rate)],
    ["Click-through rate", percent(s.ctr)],
    ["Mean click position", s.mean_click_position === null ? "–" : s.mean_click_position.toFixed(1)],
  ];
  replaceChildren(
    ui.totals,
    figures.map(([label, value]) => h("div", {}, h("dt", { text: label }), h("dd", { text: value }))),
  );
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  el.append(...children);
  return el;
}

/** One bar per UTC day from `since` to today, days without searches included. */
function renderChart(summary) {
  const counts = new Map(summary.days.map((d) => [d.day, d.searches]));
  const first = Date.parse(summary.since);
  const today = Date.now() - (Date.now() % DAY_MS);
  const days = [];
  for (let t = first - (first % DAY_MS); t <= today; t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    days.push({ day, searches: counts.get(day) ?? 0 });
  }
  const width = 800;
  const height = 180;
  const top = 12;
  const bottom = 22;
  const max = Math.max(1, ...days.map((d) => d.searches));
  const step = width / days.length;
  const bars = days.map((d, i) => {
    const barHeight = d.searches ? Math.max(2, ((height - top - bottom) * d.searches) / max) : 2;
    const label = `${formatDate(d.day)}: ${formatCount(d.searches)} ${d.searches === 1 ? "search" : "searches"}`;
    return svg(
      "rect",
      {
        class: d.searches ? "bar" : "bar is-zero",
        x: (i * step + step * 0.1).toFixed(2),
        y: (height - bottom - barHeight).toFixed(2),
        width: (step * 0.8).toFixed(2),
        height: barHeight.toFixed(2),
        "data-day": d.day,
        "data-searches": d.searches,
        "aria-label": label,
        role: "img",
      },
      svg("title", {}, label),
    );
  });
  const labels = [0, days.length - 1].filter((i, n, all) => all.indexOf(i) === n);
  const axis = labels.map((i) =>
    svg(
      "text",
      { class: "axis-label", x: i === 0 ? 0 : width, y: height - 6, "text-anchor": i === 0 ? "start" : "end" },
      formatDate(days[i].day),
    ),
  );
  const peak = svg("text", { class: "axis-label", x: 0, y: 10 }, `${formatCount(max)} max`);
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "group", "aria-label": "Searches per day" },
    ...bars,
    ...axis,
    peak,
  );
  replaceChildren(ui.chart, chart);
}

function emptyRow(columns, text) {
  return h("tr", {}, h("td", { colspan: columns, class: "muted", text }));
}

function renderTop(rows) {
  if (!rows.length) {
    replaceChildren(ui.top, emptyRow(5, "No searches in this period."));
    return;
  }
  replaceChildren(
    ui.top,
    rows.map((row) =>
      h(
        "tr",
        {},
        h("td", { dir: "auto" }, searchLink(row.q)),
        h("td", { text: formatCount(row.count) }),
        h("td", { text: formatCount(row.clicks) }),
        h("td", { text: percent(row.ctr) }),
        h("td", { text: row.avg_total.toFixed(1) }),
      ),
    ),
  );
}

function renderNone(rows) {
  if (!rows.length) {
    replaceChildren(ui.none, emptyRow(2, "Every search found something."));
    return;
  }
  replaceChildren(
    ui.none,
    rows.map((row) =>
      h(
        "tr",
        {},
        h("td", { dir: "auto" }, searchLink(row.q), fixedNote(row.finds_now)),
        h("td", { text: formatCount(row.count) }),
      ),
    ),
  );
}

/** A query that found nothing then and finds articles now (new articles, synonyms, rules): say so. */
function fixedNote(found) {
  return found ? h("span", { class: "fixed", text: ` finds ${formatCount(found)} now` }) : null;
}

/** The query in the search page, to see what readers saw (or did not). */
function searchLink(q) {
  return h("a", { href: `/?${new URLSearchParams({ q })}`, class: "query-link", text: q });
}

function renderPositions(positions) {
  if (!positions.length) {
    replaceChildren(ui.positions, emptyRow(3, "No result was opened in this period."));
    return;
  }
  const total = positions.reduce((sum, p) => sum + p.clicks, 0);
  const most = Math.max(...positions.map((p) => p.clicks));
  replaceChildren(
    ui.positions,
    positions.map((p) => {
      const bar = h("span", { class: "share", "aria-hidden": "true" });
      bar.style.width = `${(6 * p.clicks) / most}rem`;
      return h(
        "tr",
        {},
        h("td", { text: String(p.position) }),
        h("td", {}, bar, formatCount(p.clicks)),
        h("td", { text: percent(p.clicks / total) }),
      );
    }),
  );
}

ui.keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, ui.key.value);
  ui.key.value = "";
  load();
});
ui.forget.addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  askForKey();
});
ui.range.addEventListener("change", load);
load();
