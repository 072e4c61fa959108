// Unrecognized messages (admins and designers): what customers said that the bot did not
// understand (GET /nlu/review), labeled with an intent (POST /nlu/examples), and the labeled
// examples (GET, DELETE /nlu/examples), which "Reload and retrain" on the Bot page trains on.

import { api, get, post, query } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { t, when } from "./i18n.js";

const LIMIT = 100;

export function mount(root) {
  let intents = [];
  let alive = true;
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const pending = h("div", { "aria-busy": "true" });
  const labeled = h("div", { "aria-busy": "true" });
  clear(root, h("div", { class: "page review" },
    h("h1", {}, t("review_title")),
    h("p", { class: "muted", "data-testid": "review-hint" }, t("review_hint"), " ",
      h("a", { href: "#/bot" }, t("review_hint_link"))),
    problem,
    h("section", { "aria-labelledby": "review-h" }, h("h2", { id: "review-h" }, t("to_label")), pending),
    h("section", { "aria-labelledby": "examples-h" }, h("h2", { id: "examples-h" }, t("labeled")), labeled)));

  const fail = (e) => {
    problem.textContent = e.status === 404 ? t("review_missing") : e.status === 403 ? t("forbidden") : e.message;
    problem.hidden = false;
  };

  async function loadPending() {
    let page;
    try { page = await get(`/nlu/review${query({ limit: LIMIT })}`); } catch (e) { if (alive) fail(e); return; }
    if (!alive) return;
    pending.removeAttribute("aria-busy");
    if (!page.items.length) { clear(pending, h("p", { class: "muted", "data-testid": "review-empty" }, t("review_empty"))); return; }
    clear(pending, h("table", { "data-testid": "review-table" },
      h("caption", { class: "visually-hidden" }, t("to_label")),
      h("thead", {}, h("tr", {}, [t("text"), t("times"), t("last_seen"), t("language_of"), t("suggested"), t("intent")]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, page.items.map(reviewRow))));
  }

  function reviewRow(item) {
    const suggested = (item.suggested || []).filter((s) => intents.includes(s.intent));
    const choice = h("select", { "aria-label": t("intent_for", { text: item.text }), "data-testid": "review-intent" },
      h("option", { value: "" }, t("choose_intent")),
      suggested.length ? h("optgroup", { label: t("suggested") }, suggested.map((s) =>
        h("option", { value: s.intent }, `${s.intent} · ${Math.round(s.confidence * 100)}%`))) : null,
      h("optgroup", { label: t("intents") }, intents.map((name) => h("option", { value: name }, name))));
    const save = h("button", {
      type: "button", class: "primary small", "data-testid": "review-label", "aria-label": `${t("label_it")}: ${item.text}`,
      onclick: async () => {
        if (!choice.value) { toast(t("choose_intent"), "error"); choice.focus(); return; }
        save.disabled = true;
        try {
          await post("/nlu/examples", { text: item.text, intent: choice.value });
          toast(t("labeled_as", { intent: choice.value }));
          await Promise.all([loadPending(), loadLabeled()]);
        } catch (e) {
          toast(e.status === 403 ? t("forbidden") : e.message, "error");
          save.disabled = false;
        }
      },
    }, t("label_it"));
    return h("tr", { "data-testid": "review-row", "data-text": item.text },
      h("th", { scope: "row", class: "wrap" }, item.text),
      h("td", { class: "num" }, String(item.count)),
      h("td", {}, when(item.last_at)),
      h("td", {}, item.language || ""),
      h("td", {}, suggested.length
        ? suggested.map((s) => h("button", {
          type: "button", class: "chip", "aria-label": t("use_suggestion", { intent: s.intent, text: item.text }),
          onclick: () => { choice.value = s.intent; },
        }, `${s.intent} ${Math.round(s.confidence * 100)}%`))
        : h("span", { class: "muted" }, t("nobody"))),
      h("td", { class: "label-cell" }, choice, " ", save));
  }

  async function loadLabeled() {
    let page;
    try { page = await get("/nlu/examples"); } catch (e) { if (alive) fail(e); return; }
    if (!alive) return;
    labeled.removeAttribute("aria-busy");
    if (!page.items.length) { clear(labeled, h("p", { class: "muted" }, t("labeled_empty"))); return; }
    clear(labeled, h("table", { "data-testid": "examples-table" },
      h("caption", { class: "visually-hidden" }, t("labeled")),
      h("thead", {}, h("tr", {}, [t("text"), t("intent"), t("language_of"), t("labeled_by"), t("labeled_at"), ""]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, page.items.map((x) => h("tr", { "data-testid": "example-row", "data-text": x.text, "data-intent": x.intent },
        h("th", { scope: "row", class: "wrap" }, x.text), h("td", {}, x.intent), h("td", {}, x.language || ""),
        h("td", {}, labeler(x.labeled_by)), h("td", {}, when(x.created_at)),
        h("td", {}, h("button", {
          type: "button", class: "small", "aria-label": `${t("delete")}: ${x.text}`,
          onclick: async () => {
            try {
              await api("DELETE", `/nlu/examples/${x.id}`);
              await Promise.all([loadPending(), loadLabeled()]);
            } catch (e) { toast(e.status === 403 ? t("forbidden") : e.message, "error"); }
          },
        }, t("delete"))))))));
  }

  (async () => {
    try {
      const bot = await get("/bot");
      intents = bot.intents.map((i) => i.name);
    } catch (e) { toast(e.message, "error"); }
    if (alive) await Promise.all([loadPending(), loadLabeled()]);
  })();

  return { route() {}, unmount() { alive = false; clear(root); } };
}

// labeled_by: an agent object, a name or an id, whichever the API gives
function labeler(by) {
  if (by === null || by === undefined) return "";
  if (typeof by === "object") return by.name || by.email || String(by.id ?? "");
  return String(by);
}
