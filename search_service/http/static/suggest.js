// Search-box suggestions: an ARIA 1.2 combobox over GET /suggest. Up/Down move through the list,
// Enter chooses, Escape closes; the input keeps focus throughout (aria-activedescendant).

import { debounce, formatCount, h, replaceChildren } from "./dom.js";

const KIND_LABELS = { topic: "Topic", entity: "Entity", lang: "Language", query: "Often searched" };

export class Suggestions {
  /**
   * @param {HTMLInputElement} input
   * @param {HTMLElement} list the role=listbox element
   * @param {(suggestion: {text: string, kind: string, count: number}) => void} onChoose
   */
  constructor(input, list, onChoose) {
    this.input = input;
    this.list = list;
    this.onChoose = onChoose;
    this.items = [];
    this.active = -1;
    this.cache = new Map();
    this.controller = null;
    this.load = debounce((text) => this.request(text), 90);
    input.addEventListener("input", () => this.update());
    input.addEventListener("keydown", (e) => this.keyDown(e));
    input.addEventListener("blur", () => this.close());
    // Choosing with the pointer must not blur the input first.
    list.addEventListener("pointerdown", (e) => e.preventDefault());
    list.addEventListener("click", (e) => {
      const option = e.target.closest("[role=option]");
      if (option) this.choose(Number(option.dataset.index));
    });
  }

  update() {
    const text = this.input.value;
    if (!text.trim()) {
      this.close();
      return;
    }
    if (this.cache.has(text)) this.show(text, this.cache.get(text));
    else this.load(text);
  }

  async request(text) {
    this.controller?.abort();
    this.controller = new AbortController();
    try {
      const response = await fetch(`/suggest?${new URLSearchParams({ q: text, limit: "8" })}`, {
        signal: this.controller.signal,
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      const { suggestions } = await response.json();
      if (this.cache.size > 200) this.cache.clear();
      this.cache.set(text, suggestions);
      if (this.input.value === text) this.show(text, suggestions);
    } catch (error) {
      if (error.name !== "AbortError") this.close();
    }
  }

  show(text, suggestions) {
    if (document.activeElement !== this.input || !suggestions.length) {
      this.hide();
      return;
    }
    this.items = suggestions;
    this.active = -1;
    const typed = text.trim().toLowerCase();
    replaceChildren(
      this.list,
      suggestions.map((s, i) =>
        h(
          "li",
          { id: `suggestion-${i}`, role: "option", class: "suggestion", "aria-selected": "false", "data-index": i },
          h("span", { class: "suggestion-text", dir: "auto" }, emphasize(s.text, typed)),
          KIND_LABELS[s.kind] ? h("span", { class: "suggestion-kind", text: KIND_LABELS[s.kind] }) : null,
          h("span", { class: "suggestion-count", text: formatCount(s.count) }),
        ),
      ),
    );
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.removeAttribute("aria-activedescendant");
  }

  close() {
    this.load.cancel(); // a completion still on its way must not reopen the list
    this.controller?.abort();
    this.hide();
  }

  hide() {
    this.list.hidden = true;
    this.items = [];
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  get isOpen() {
    return !this.list.hidden;
  }

  move(step) {
    const count = this.items.length;
    if (!count) return;
    // Positions cycle through the options and, one step past either end, the typed text (-1).
    this.active = ((this.active + 1 + step + count + 1) % (count + 1)) - 1;
    [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === this.active)));
    if (this.active >= 0) {
      const option = this.list.children[this.active];
      this.input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  keyDown(e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!this.isOpen) {
        this.update();
        return;
      }
      e.preventDefault();
      this.move(e.key === "ArrowDown" ? 1 : -1);
    } else if (e.key === "Enter" && this.isOpen && this.active >= 0) {
      e.preventDefault();
      this.choose(this.active);
    } else if (e.key === "Escape" && this.isOpen) {
      e.preventDefault(); // keep the typed text (a search input clears itself on Escape)
      this.close();
    } else if (e.key === "Tab") {
      this.close();
    }
  }

  choose(index) {
    const suggestion = this.items[index];
    this.close();
    if (suggestion) this.onChoose(suggestion);
  }
}

/** The text with the typed part in <strong>, as nodes. */
function emphasize(text, typed) {
  const at = typed ? text.toLowerCase().indexOf(typed) : -1;
  if (at < 0) return text;
  return [text.slice(0, at), h("strong", { text: text.slice(at, at + typed.length) }), text.slice(at + typed.length)];
}
