// The search page. It uses only the public API (/search, /suggest, /facets/...) and keeps its whole
// state in the URL: /?q=oil&topic=crude&page=2 is shareable, and the back button walks through it.

import { debounce, formatCount, formatDate, h, highlighted, replaceChildren, safeHttpUrl } from "./dom.js";
import {
  DAY_MS,
  Histogram,
  INTERVALS,
  canRollUp,
  chooseInterval,
  extentOf,
  isoDay,
  parseDay,
  toBuckets,
} from "./histogram.js";
import { Suggestions } from "./suggest.js";

const FILTERS = { topic: "topics", entity: "entities", lang: null }; // URL parameter -> facet (null: none)
const FILTER_LABELS = { topic: "Topic", entity: "Entity", lang: "Language" };
const DATE_FACET = "published_at";
const SORTS = ["relevance", "newest", "oldest"];
const DEFAULT_PER_PAGE = 10;
const FACET_SIZE = 10;
const MORE_SIZE = 100;
const MAX_DEPTH = 10_000; // the API's page * per_page limit
const MAX_ENTITY_CHIPS = 6;

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("search-form"),
  q: $("q"),
  suggestions: $("suggestions"),
  filtersToggle: $("filters-toggle"),
  filtersCount: $("filters-count"),
  sidebar: $("sidebar"),
  topics: $("topics"),
  topicsMore: $("topics-more"),
  entities: $("entities"),
  entitiesMore: $("entities-more"),
  entityFilter: $("entity-filter"),
  main: $("main"),
  histogram: $("histogram"),
  axis: $("axis"),
  timelineRange: $("timeline-range"),
  timelineReset: $("timeline-reset"),
  interval: $("interval"),
  dateDetails: $("date-details"),
  dateForm: $("date-form"),
  dateFrom: $("date-from"),
  dateTo: $("date-to"),
  active: $("active-filters"),
  status: $("status"),
  sort: $("sort"),
  perPage: $("per-page"),
  notice: $("notice"),
  spelling: $("spelling"),
  results: $("results"),
  pager: $("pager"),
};

// -- state and URL ------------------------------------------------------------------------------

function readState(search) {
  const p = new URLSearchParams(search);
  const positive = (value, fallback, max = Infinity) => {
    const n = Number(value);
    return Number.isInteger(n) && n >= 1 ? Math.min(n, max) : fallback;
  };
  const state = {
    q: p.get("q") ?? "",
    after: p.get("published_after") ?? "",
    before: p.get("published_before") ?? "",
    sort: SORTS.includes(p.get("sort")) ? p.get("sort") : "",
    page: positive(p.get("page"), 1),
    perPage: positive(p.get("per_page"), DEFAULT_PER_PAGE, 100),
    interval: INTERVALS.includes(p.get("date_interval")) ? p.get("date_interval") : "",
    // "Search instead for": the words exactly as typed, no typo corrections.
    exact: p.get("typos") === "false",
  };
  for (const name of Object.keys(FILTERS)) state[name] = [...new Set(p.getAll(name).filter(Boolean))];
  return state;
}

/** The state as query parameters, shared by the page URL and the API (defaults left out). */
function stateParams(s) {
  const p = new URLSearchParams();
  if (s.q.trim()) p.set("q", s.q);
  for (const name of Object.keys(FILTERS)) for (const value of s[name]) p.append(name, value);
  if (s.after) p.set("published_after", s.after);
  if (s.before) p.set("published_before", s.before);
  if (s.sort) p.set("sort", s.sort);
  if (s.page > 1) p.set("page", String(s.page));
  if (s.perPage !== DEFAULT_PER_PAGE) p.set("per_page", String(s.perPage));
  if (s.exact) p.set("typos", "false");
  return p;
}

function urlFor(s) {
  const p = stateParams(s);
  if (s.interval) p.set("date_interval", s.interval);
  const query = p.toString();
  return query ? `/?${query}` : "/";
}

/** Parameters for the filters only (what /facets/... takes). */
function filterParams(s) {
  return stateParams({ ...s, sort: "", page: 1, perPage: DEFAULT_PER_PAGE });
}

let state = readState(location.search);
let typing = false; // inside a run of keystrokes: the first one pushed a history entry, the rest replace it
const expanded = { topic: false, entity: false };
const extents = new Map(); // q + filters (not dates) -> extent of the histogram, to pick its interval
let lastExtent = null;
let lastData = null;

function go(patch, { replace = false, keepPage = false } = {}) {
  typeSearch.cancel();
  state = { ...state, ...patch };
  if (!keepPage && !("page" in patch)) state.page = 1;
  const url = urlFor(state);
  if (url !== `${location.pathname}${location.search}`) {
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
  }
  typing = false;
  syncControls();
  renderActiveFilters(state);
  search();
}

window.addEventListener("popstate", () => {
  typeSearch.cancel();
  suggestions.close();
  state = readState(location.search);
  typing = false;
  syncControls();
  renderActiveFilters(state);
  search();
});

// -- talking to the API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function getJSON(path, params, signal, headers = {}) {
  const response = await fetch(`${path}?${params}`, { signal, headers: { Accept: "application/json", ...headers } });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // fall through: reported below
  }
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ApiError(response.status, error.code ?? "http_error", error.message ?? `HTTP ${response.status}`);
  }
  return body;
}

let controller = null;
let generation = 0;
let busyTimer = 0;

/** Run the search for the current state and draw everything. `prefix`: search-as-you-type. */
async function search({ prefix = false } = {}) {
  const s = state;
  const mine = ++generation;
  settle.cancel();
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  clearTimeout(busyTimer);
  busyTimer = setTimeout(() => ui.main.classList.add("is-loading"), 150);
  ui.main.setAttribute("aria-busy", "true");

  const key = extentKey(s);
  // The interval is sure when chosen in the URL or picked from this query's known extent; otherwise
  // it is a guess (from the last extent seen) that the answer may correct.
  let plan = chooseInterval(s.interval, s.after, s.before, extents.get(key) ?? lastExtent);
  const sure = Boolean(s.interval || extents.has(key));
  const params = (interval, withHistogram = true) => {
    const p = stateParams(s);
    const facets = [...Object.values(FILTERS).filter(Boolean), ...(withHistogram ? [DATE_FACET] : [])];
    p.set("facets", facets.join(","));
    p.set("facet_size", String(FACET_SIZE));
    p.set("date_interval", interval);
    if (prefix && /\S$/.test(s.q)) p.set("prefix", "true");
    return p;
  };

  // Keystrokes are searches only where the reader stops typing (see `settle`).
  const marks = prefix ? TYPING : {};
  try {
    let data;
    let histogramError = "";
    try {
      data = await getJSON("/search", params(plan.request), signal, marks);
    } catch (error) {
      if (!(error instanceof ApiError) || !error.message.startsWith("date_interval")) throw error;
      // Too many buckets for this interval: coarser bars when automatic, else say so and carry on.
      if (!s.interval && plan.request !== "year") {
        const coarser = plan.request === "day" ? "week" : "year";
        plan = { request: coarser, draw: coarser };
        data = await getJSON("/search", params(plan.request), signal, marks);
      } else {
        histogramError = error.message.replace(/^date_interval: /, "");
        data = await getJSON("/search", params(plan.request, false), signal, marks);
      }
    }
    if (mine !== generation) return;
    lastData = data;
    let histogram = data.facets?.[DATE_FACET] ?? [];
    const extent = extentOf(histogram, plan.request);
    if (extent) {
      if (extents.size > 200) extents.clear();
      extents.set(key, extent);
      lastExtent = extent;
    }
    const better = chooseInterval(s.interval, s.after, s.before, extent);
    if (!sure && extent && better.draw !== plan.draw) {
      const shown = inView(s, toBuckets(histogram, plan.request, plan.draw)).length;
      if (canRollUp(plan.request, better.draw)) {
        plan = { request: plan.request, draw: better.draw };
      } else if (shown < 12 || shown > 160) {
        // The guess drew too few or too many bars for this extent: ask once more.
        const p = params(better.request);
        p.set("facets", DATE_FACET);
        p.set("per_page", "1");
        p.delete("page");
        // The same search again for its histogram: not another search in the analytics.
        const again = await getJSON("/search", p, signal, NOT_A_SEARCH).catch(() => null);
        if (mine !== generation) return;
        if (again?.facets?.[DATE_FACET]) {
          histogram = again.facets[DATE_FACET];
          plan = better;
        }
      }
    }
    render(s, data, inView(s, toBuckets(histogram, plan.request, plan.draw)), plan.draw, histogramError);
    if (prefix) settle.later(data.query_id);
    if (expanded.topic) loadMore("topic", s, signal);
    if (expanded.entity) loadMore("entity", s, signal);
    if (ui.entityFilter.value.trim()) filterEntities();
  } catch (error) {
    if (error.name === "AbortError" || mine !== generation) return;
    renderError(error);
  } finally {
    if (mine === generation) {
      clearTimeout(busyTimer);
      ui.main.classList.remove("is-loading");
      ui.main.removeAttribute("aria-busy");
    }
  }
}

function extentKey(s) {
  return JSON.stringify([s.q.trim(), ...Object.keys(FILTERS).map((name) => s[name])]);
}

// -- drawing ------------------------------------------------------------------------------------

function render(s, data, buckets, interval, histogramError) {
  renderStatus(s, data);
  renderResults(data.hits, data.query_id, (data.page - 1) * data.per_page);
  renderPager(s, data.total);
  for (const [name, facet] of Object.entries(FILTERS)) {
    // While the entity typeahead holds a prefix, its own answer fills that list (see filterEntities).
    if (name === "entity" && ui.entityFilter.value.trim()) continue;
    if (facet && data.facets?.[facet]) renderFacet(name, data.facets[facet]);
  }
  renderTimeline(s, buckets, interval, histogramError);
}

function renderStatus(s, data) {
  const total = data.total;
  // An estimated total reads as one ("about 12,300"); estimated facet counts are marked "~" and said so.
  const estimated = data.exhaustive?.total === false;
  const count = estimated ? `about ${formatCount(roughly(total))}` : formatCount(total);
  const words = `${count} ${total === 1 && !estimated ? "article" : "articles"}`;
  const pages = Math.ceil(total / s.perPage);
  const parts = [h("strong", { text: words })];
  if (s.q.trim()) parts.push(" for ", h("span", { class: "query", text: `“${s.q.trim()}”` }));
  if (pages > 1) parts.push(h("span", { class: "muted", text: ` · page ${formatCount(s.page)} of ${formatCount(pages)}` }));
  if (data.exhaustive?.facets === false) {
    parts.push(
      h("span", {
        class: "muted approximate",
        title: "Counts marked ~ are estimated from a sample of the matches",
        text: " · approximate counts",
      }),
    );
  }
  replaceChildren(ui.status, parts);
  renderSpelling(s, data);
  ui.notice.hidden = data.matched !== "any" || total === 0;
  if (!ui.notice.hidden) {
    const all = data.all_words ?? 0;
    ui.notice.textContent = all
      ? `${formatCount(all)} ${all === 1 ? "article contains" : "articles contain"} every word and ${
          all === 1 ? "comes" : "come"
        } first; the others match some of the words.`
      : "No article contains every word, so these match some of them, best first.";
  }
}

/** "Showing results for …, search instead for …" and "Did you mean …?": links, their text as text nodes. */
function renderSpelling(s, data) {
  const link = (text, patch) =>
    h(
      "a",
      {
        href: urlFor({ ...s, ...patch, page: 1 }),
        onclick: (e) => {
          e.preventDefault();
          ui.q.value = patch.q ?? s.q;
          go(patch);
        },
      },
      text,
    );
  const lines = [];
  if (data.searched_for && data.corrections?.length) {
    lines.push(
      h(
        "span",
        { class: "searched-for" },
        "Showing results for ",
        h("strong", { text: data.searched_for }),
        ". Search instead for ",
        link(s.q.trim(), { exact: true }),
        ".",
      ),
    );
  }
  if (data.did_you_mean) {
    const respelled = link(data.did_you_mean, { q: data.did_you_mean, exact: false });
    lines.push(h("span", { class: "did-you-mean" }, "Did you mean ", respelled, "?"));
  }
  replaceChildren(ui.spelling, lines);
  ui.spelling.hidden = lines.length === 0;
}

/** A count to three significant figures (12,345 -> 12,300): an estimate's precision. */
function roughly(n) {
  const step = 10 ** Math.max(0, Math.floor(Math.log10(Math.max(1, n))) - 2);
  return Math.round(n / step) * step;
}

function renderError(error) {
  const message = error instanceof ApiError ? error.message : "The search service did not answer. Try again.";
  replaceChildren(ui.status, h("span", { class: "error", text: `Search failed: ${message}` }));
  ui.notice.hidden = true;
  ui.spelling.hidden = true;
  replaceChildren(ui.results);
  replaceChildren(ui.pager);
  renderTimeline(state, [], "month", "No dates to show");
}

function renderResults(hits, queryId, offset) {
  if (!hits.length) {
    replaceChildren(
      ui.results,
      h(
        "li",
        { class: "empty" },
        h("p", { class: "empty-title", text: "No articles match." }),
        h("p", { class: "muted", text: "Check the spelling, use fewer words, or remove a filter." }),
      ),
    );
    return;
  }
  const opened = (hit, i) => () => sendEvent({ query_id: queryId, slug: hit.slug, position: offset + i + 1 });
  replaceChildren(ui.results, hits.map((hit, i) => renderHit(hit, opened(hit, i))));
}

/** `opened`: called when the reader opens the result (any button: a new tab counts too). */
function renderHit(hit, opened) {
  const url = safeHttpUrl(hit.url);
  const title = highlighted(hit.highlights?.title ?? "");
  const lang = typeof hit.lang === "string" && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(hit.lang) ? hit.lang : null;
  const topics = hit.topics ?? [];
  const entities = hit.entities ?? [];
  return h(
    "li",
    { class: "hit" },
    h(
      "h3",
      { class: "hit-title", dir: "auto", lang },
      url
        ? h(
            "a",
            { href: url, rel: "noopener noreferrer", onclick: opened, onauxclick: (e) => e.button === 1 && opened() },
            title,
          )
        : title,
    ),
    h(
      "p",
      { class: "hit-meta" },
      h("time", { datetime: hit.published_at, text: formatDate(hit.published_at) }),
      url ? h("span", { class: "hit-host", text: new URL(url).host }) : null,
      lang && !lang.toLowerCase().startsWith("en") ? h("span", { class: "hit-lang", text: lang }) : null,
      // Placed by the newsroom (a curation rule), not ranked: say so, as any other hit otherwise.
      hit.curated === "pinned" ? h("span", { class: "hit-pinned", text: "Pinned" }) : null,
    ),
    hit.highlights?.snippet
      ? h("p", { class: "hit-snippet", dir: "auto", lang }, highlighted(hit.highlights.snippet))
      : null,
    topics.length || entities.length
      ? h(
          "ul",
          { class: "chips", "aria-label": "Topics and entities" },
          topics.map((value) => chipLink("topic", value)),
          entities.slice(0, MAX_ENTITY_CHIPS).map((value) => chipLink("entity", value)),
          entities.length > MAX_ENTITY_CHIPS
            ? h("li", { class: "chip-more", text: `+${entities.length - MAX_ENTITY_CHIPS}` })
            : null,
        )
      : null,
  );
}

/** A link to the topic or entity page: the same page with that one filter. */
function chipLink(name, value) {
  const target = { ...readState(""), [name]: [value] };
  return h(
    "li",
    {},
    h(
      "a",
      {
        class: `chip chip-${name}`,
        href: urlFor(target),
        title: `All articles with ${FILTER_LABELS[name].toLowerCase()} ${value}`,
        onclick: (e) => {
          if (isPlainClick(e)) {
            e.preventDefault();
            ui.entityFilter.value = "";
            go(target);
            showResults();
          }
        },
      },
      h("span", { class: "visually-hidden", text: `${FILTER_LABELS[name]}: ` }),
      value,
    ),
  );
}

/** After following a link inside the page: the keyboard and the view go to the new results. */
function showResults() {
  ui.results.focus({ preventScroll: true });
  window.scrollTo({ top: 0 });
}

function isPlainClick(e) {
  return e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey;
}

function renderFacet(name, values) {
  const list = name === "topic" ? ui.topics : ui.entities;
  const more = name === "topic" ? ui.topicsMore : ui.entitiesMore;
  drawFacetList(name, list, values);
  more.hidden = expanded[name] || values.length < FACET_SIZE;
}

function drawFacetList(name, list, values, empty = "None") {
  if (!values.length) {
    replaceChildren(list, h("li", { class: "facet-empty muted", text: empty }));
    return;
  }
  const selected = new Set(state[name]);
  // Redrawing replaces the checkboxes: keep the keyboard focus on the value that had it.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.value : undefined;
  replaceChildren(
    list,
    values.map(({ value, count, interval }) =>
      h(
        "li",
        {},
        h(
          "label",
          { class: selected.has(value) ? "facet-item is-selected" : "facet-item" },
          h("input", {
            type: "checkbox",
            checked: selected.has(value),
            "data-value": value,
            onchange: (e) => toggleFilter(name, value, e.target.checked),
          }),
          h("span", { class: "facet-value", dir: "auto", text: value }),
          interval
            ? h("span", {
                class: "facet-count is-estimate",
                title: `estimated: between ${formatCount(interval[0])} and ${formatCount(interval[1])}`,
                text: `~${formatCount(count)}`,
              })
            : h("span", { class: "facet-count", text: formatCount(count) }),
        ),
      ),
    ),
  );
  if (focused !== undefined) [...list.querySelectorAll("input")].find((box) => box.dataset.value === focused)?.focus();
}

function toggleFilter(name, value, on) {
  const values = state[name].filter((v) => v !== value);
  if (on) values.push(value);
  go({ [name]: values });
}

async function loadMore(name, s, signal) {
  try {
    const p = filterParams(s);
    p.set("size", String(MORE_SIZE));
    const data = await getJSON(`/facets/${FILTERS[name]}`, p, signal);
    if (s === state) drawFacetList(name, name === "topic" ? ui.topics : ui.entities, data.values);
  } catch {
    // keep the top values already shown
  }
}

ui.topicsMore.addEventListener("click", () => {
  expanded.topic = true;
  ui.topicsMore.hidden = true;
  loadMore("topic", state);
});
ui.entitiesMore.addEventListener("click", () => {
  expanded.entity = true;
  ui.entitiesMore.hidden = true;
  loadMore("entity", state);
});

// Entity typeahead over /facets/entities?prefix=, under the current query and filters.
let entityController = null;
const filterEntities = debounce(async () => {
  const prefix = ui.entityFilter.value.trim();
  entityController?.abort();
  if (!prefix) {
    const values = lastData?.facets?.[FILTERS.entity];
    if (values) renderFacet("entity", values);
    if (expanded.entity) loadMore("entity", state);
    return;
  }
  entityController = new AbortController();
  const p = filterParams(state);
  p.set("prefix", prefix);
  p.set("size", "20");
  try {
    const data = await getJSON("/facets/entities", p, entityController.signal);
    drawFacetList("entity", ui.entities, data.values, "No entity starts with that");
    ui.entitiesMore.hidden = true;
  } catch (error) {
    if (error.name !== "AbortError") replaceChildren(ui.entities);
  }
}, 120);
ui.entityFilter.addEventListener("input", filterEntities);
ui.entityFilter.addEventListener("keydown", (e) => {
  if (e.key === "Enter") {
    e.preventDefault();
    ui.entities.querySelector("input[type=checkbox]:not(:checked)")?.click();
  } else if (e.key === "Escape" && ui.entityFilter.value) {
    e.preventDefault();
    ui.entityFilter.value = "";
    filterEntities();
  }
});

function renderActiveFilters(s) {
  const chips = [];
  for (const name of Object.keys(FILTERS)) {
    for (const value of s[name]) {
      chips.push(
        removable(`${FILTER_LABELS[name]}: `, value, () => go({ [name]: s[name].filter((v) => v !== value) })),
      );
    }
  }
  if (s.after || s.before) chips.push(removable("Published: ", describeRange(s), () => go({ after: "", before: "" })));
  const count = chips.length;
  if (count > 1) {
    chips.push(
      h("button", {
        type: "button",
        class: "link-button",
        text: "Clear all",
        onclick: () => {
          go({ ...Object.fromEntries(Object.keys(FILTERS).map((n) => [n, []])), after: "", before: "" });
          ui.q.focus();
        },
      }),
    );
  }
  replaceChildren(ui.active, chips);
  ui.active.hidden = count === 0;
  ui.filtersCount.hidden = count === 0;
  ui.filtersCount.textContent = String(count);
}

function removable(label, value, onRemove) {
  return h(
    "button",
    {
      type: "button",
      class: "chip chip-active",
      "aria-label": `Remove filter ${label}${value}`,
      onclick: () => {
        onRemove();
        // The chip is gone: keep the keyboard in the same place.
        (ui.active.querySelector(".chip-active") ?? ui.q).focus();
      },
    },
    h("span", { class: "chip-label", text: label }),
    h("span", { dir: "auto", text: value }),
    h("span", { class: "chip-x", "aria-hidden": "true", text: "×" }),
  );
}

/** "1 Mar 2026 – 31 Mar 2026" for published_after=2026-03-01&published_before=2026-04-01. */
function describeRange(s) {
  const from = parseDay(s.after);
  const until = lastIncludedDay(s.before);
  if (!Number.isNaN(from) && !Number.isNaN(until)) {
    return from === until ? formatDate(from) : `${formatDate(from)} – ${formatDate(until)}`;
  }
  if (!Number.isNaN(from)) return `since ${formatDate(from)}`;
  if (!Number.isNaN(until)) return `until ${formatDate(until)}`;
  return [s.after, s.before].filter(Boolean).join(" – ");
}

/** The last day a `published_before` bound (exclusive) lets in. */
function lastIncludedDay(before) {
  const ms = parseDay(before);
  if (Number.isNaN(ms)) return Number.NaN;
  return ms % DAY_MS === 0 ? ms - DAY_MS : ms - (ms % DAY_MS);
}

function renderPager(s, total) {
  const last = Math.max(1, Math.min(Math.ceil(total / s.perPage), Math.floor(MAX_DEPTH / s.perPage)));
  if (last <= 1 && s.page <= 1) {
    replaceChildren(ui.pager);
    return;
  }
  const pages = new Set([1, last, s.page - 1, s.page, s.page + 1].filter((n) => n >= 1 && n <= last));
  const items = [];
  const link = (page, text, label, rel) =>
    h(
      "a",
      {
        href: urlFor({ ...s, page }),
        class: page === s.page ? "page is-current" : "page",
        "aria-current": page === s.page ? "page" : null,
        "aria-label": label,
        rel,
        onclick: (e) => {
          if (!isPlainClick(e)) return;
          e.preventDefault();
          go({ page }, { keepPage: true });
          showResults();
        },
      },
      text,
    );
  if (s.page > 1) items.push(link(Math.min(s.page - 1, last), "‹ Previous", "Previous page", "prev"));
  let previous = 0;
  for (const page of [...pages].sort((a, b) => a - b)) {
    if (page - previous > 1) items.push(h("span", { class: "gap", "aria-hidden": "true", text: "…" }));
    items.push(link(page, formatCount(page), `Page ${page}`));
    previous = page;
  }
  if (s.page < last) items.push(link(s.page + 1, "Next ›", "Next page", "next"));
  replaceChildren(ui.pager, items);
}

// -- search analytics ---------------------------------------------------------------------------
// The server records each search under a random query_id and nothing about the reader; the page tells
// it which result was opened, and at which search-as-you-type search the reader stopped typing (the
// keystrokes before it are not searches anyone meant).

const NOT_A_SEARCH = { "X-Search-Analytics": "skip" };
const TYPING = { "X-Search-Analytics": "typing" };
const SETTLE_MS = 1500;

function sendEvent(event) {
  if (event.query_id && navigator.sendBeacon) navigator.sendBeacon("/events", JSON.stringify(event));
}

const settle = {
  timer: 0,
  queryId: null,
  later(queryId) {
    this.cancel();
    if (!queryId) return;
    this.queryId = queryId;
    this.timer = setTimeout(() => this.now(), SETTLE_MS);
  },
  now() {
    if (this.queryId) sendEvent({ query_id: this.queryId, type: "settle" });
    this.cancel();
  },
  cancel() {
    clearTimeout(this.timer);
    this.queryId = null;
  },
};
// Leaving (or hiding) the page while its results show: the reader stopped there.
window.addEventListener("pagehide", () => settle.now());

// -- the date histogram -------------------------------------------------------------------------

const histogram = new Histogram(ui.histogram, ui.axis, (start, end) => {
  go({ after: isoDay(start), before: isoDay(end) });
});

/** The buckets to draw. The API counts the histogram without the date filter; with one, zoom in on it. */
function inView(s, buckets) {
  const lo = parseDay(s.after);
  const hi = parseDay(s.before);
  return buckets.filter((b) => (Number.isNaN(lo) || b.end > lo) && (Number.isNaN(hi) || b.start < hi));
}

function renderTimeline(s, shown, interval, message) {
  histogram.render(shown, interval, message);
  const ranged = Boolean(s.after || s.before);
  ui.timelineReset.hidden = !ranged;
  if (ranged) ui.timelineRange.textContent = describeRange(s);
  else if (shown.length) {
    const unit = interval === "year" ? "year" : "month";
    const first = formatDate(shown[0].start, unit);
    const last = formatDate(shown.at(-1).end - DAY_MS, unit);
    ui.timelineRange.textContent = first === last ? first : `${first} – ${last}`;
  } else ui.timelineRange.textContent = "";
}

ui.timelineReset.addEventListener("click", () => go({ after: "", before: "" }));
ui.interval.addEventListener("change", () => go({ interval: ui.interval.value }, { keepPage: true }));
ui.dateForm.addEventListener("submit", (e) => {
  e.preventDefault();
  let from = ui.dateFrom.value;
  let to = ui.dateTo.value;
  if (from && to && from > to) [from, to] = [to, from];
  go({ after: from, before: to ? isoDay(parseDay(to) + DAY_MS) : "" });
});

// -- the search box -----------------------------------------------------------------------------

const typeSearch = debounce(() => {
  const url = urlFor(state);
  if (typing) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  typing = true;
  search({ prefix: true });
}, 160);

ui.q.addEventListener("input", () => {
  state = { ...state, q: ui.q.value, page: 1, exact: false };
  syncSort();
  typeSearch();
});

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  typeSearch.cancel();
  suggestions.close();
  go({ q: ui.q.value, exact: false }, { replace: typing });
});

const suggestions = new Suggestions(ui.q, ui.suggestions, (suggestion) => {
  typeSearch.cancel();
  const replace = typing;
  if (suggestion.kind in FILTERS) {
    ui.q.value = "";
    const values = state[suggestion.kind].filter((v) => v !== suggestion.text);
    go({ q: "", [suggestion.kind]: [...values, suggestion.text] }, { replace });
  } else {
    ui.q.value = suggestion.text;
    go({ q: suggestion.text, exact: false }, { replace });
  }
});

// -- other controls -----------------------------------------------------------------------------

ui.sort.addEventListener("change", () => go({ sort: ui.sort.value }));
ui.perPage.addEventListener("change", () => go({ perPage: Number(ui.perPage.value) }));
ui.filtersToggle.addEventListener("click", () => {
  const open = ui.filtersToggle.getAttribute("aria-expanded") !== "true";
  ui.filtersToggle.setAttribute("aria-expanded", String(open));
  ui.sidebar.classList.toggle("is-open", open);
});

/** Put the state into the form controls (after a navigation or the back button). */
function syncControls() {
  if (ui.q.value !== state.q) ui.q.value = state.q;
  syncSort();
  if (![...ui.perPage.options].some((o) => o.value === String(state.perPage))) {
    ui.perPage.append(h("option", { value: state.perPage, text: String(state.perPage) }));
  }
  ui.perPage.value = String(state.perPage);
  ui.interval.value = state.interval;
  ui.dateFrom.value = /^\d{4}-\d{2}-\d{2}/.test(state.after) ? isoDay(parseDay(state.after)) : "";
  const until = lastIncludedDay(state.before);
  ui.dateTo.value = Number.isNaN(until) ? "" : isoDay(until);
}

/** Without a query the API sorts by date: "Best match" is offered only with words to match. */
function syncSort() {
  const hasQuery = Boolean(state.q.trim());
  ui.sort.options[0].disabled = !hasQuery;
  ui.sort.value = state.sort || (hasQuery ? "relevance" : "newest");
}

// The exact-date inputs are always shown where there is room for them, behind a disclosure on phones.
const wide = window.matchMedia("(min-width: 861px)");
ui.dateDetails.open = wide.matches;
wide.addEventListener("change", () => {
  ui.dateDetails.open = wide.matches;
});
syncControls();
renderActiveFilters(state);
search();
