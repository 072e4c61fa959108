// The admin pages: agents and teams (with canned responses), channels, the bot, and the
// try-it chat. Each is mount(root, session) -> {route(), unmount()}.

import { api, get, post } from "./api.js";
import { h, clear, field, select, toast } from "./dom.js";
import { t, when } from "./i18n.js";

const ROLES = ["agent", "designer", "admin"];

function page(build) {
  return {
    mount(root, session) {
      const self = { route() { build(root, session); }, unmount() { clear(root); } };
      return self;
    },
  };
}

function table(caption, headers, rows, testid) {
  return h("table", { "data-testid": testid || null },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

async function guarded(action, done) {
  try {
    const result = await action();
    if (done) toast(done);
    return result;
  } catch (e) {
    toast(e.status === 403 ? t("forbidden") : e.message, "error");
    return undefined;
  }
}

const splitTeams = (text) => text.split(/[,，]/).map((s) => s.trim()).filter(Boolean);

// ---- agents, teams, canned responses ----------------------------------------------------
export const agents = page(async (root) => {
  const [list, teams, canned] = await Promise.all([get("/agents"), get("/teams"), get("/canned")]).catch((e) => {
    clear(root, h("p", { class: "error", role: "alert" }, e.message));
    return [];
  });
  if (!list) return;
  const reload = () => agents.mount(root).route();

  const agentRow = (a) => {
    const name = h("input", { type: "text", value: a.name, "aria-label": `${t("name")} (${a.email})` });
    const role = select(ROLES.map((r) => [r, t(`role_${r}`)]), a.role, { "aria-label": `${t("role")} (${a.email})` });
    const teamsInput = h("input", { type: "text", value: (a.teams || []).join(", "), "aria-label": `${t("teams")} (${a.email})` });
    const capacity = h("input", { type: "number", min: "1", max: "100", value: a.capacity, "aria-label": `${t("capacity")} (${a.email})` });
    const active = h("input", { type: "checkbox", checked: a.active, "aria-label": `${t("active")} (${a.email})` });
    return h("tr", { "data-agent": a.email },
      h("td", {}, name), h("td", {}, a.email), h("td", {}, role), h("td", {}, teamsInput),
      h("td", {}, capacity), h("td", {}, active), h("td", {}, t(a.presence || "offline")),
      h("td", {}, String(a.open_count ?? "")),
      h("td", {}, h("button", {
        type: "button", onclick: () => guarded(() => api("PATCH", `/agents/${a.id}`, {
          name: name.value.trim(), role: role.value, teams: splitTeams(teamsInput.value),
          capacity: Number(capacity.value), active: active.checked,
        }), t("saved")),
      }, t("save"))));
  };

  const email = h("input", { type: "email", required: true });
  const name = h("input", { type: "text", required: true });
  const password = h("input", { type: "password", required: true, minlength: "8", autocomplete: "new-password" });
  const role = select(ROLES.map((r) => [r, t(`role_${r}`)]), "agent");
  const teamsInput = h("input", { type: "text" });
  const capacity = h("input", { type: "number", min: "1", max: "100", value: "10" });
  const createAgent = h("form", {
    class: "inline-form", "aria-labelledby": "new-agent-h",
    onsubmit: async (e) => {
      e.preventDefault();
      const ok = await guarded(() => post("/agents", {
        email: email.value.trim(), name: name.value.trim(), password: password.value, role: role.value,
        teams: splitTeams(teamsInput.value), capacity: Number(capacity.value),
      }), t("saved"));
      if (ok) reload();
    },
  }, h("h3", { id: "new-agent-h" }, t("new_agent")),
  field(t("email"), email), field(t("name"), name), field(t("password"), password), field(t("role"), role),
  field(t("teams"), teamsInput, t("teams_hint")), field(t("capacity"), capacity),
  h("button", { type: "submit", class: "primary" }, t("create")));

  const teamName = h("input", { type: "text", required: true, maxlength: "64" });
  const createTeam = h("form", {
    class: "inline-form",
    onsubmit: async (e) => {
      e.preventDefault();
      if (await guarded(() => post("/teams", { name: teamName.value.trim() }), t("saved"))) reload();
    },
  }, field(t("team_name"), teamName), h("button", { type: "submit", class: "primary" }, t("create")));

  const code = h("input", { type: "text", required: true, maxlength: "64", pattern: "\\S+" });
  const text = h("textarea", { required: true, rows: "2", maxlength: "5000" });
  const createCanned = h("form", {
    class: "inline-form",
    onsubmit: async (e) => {
      e.preventDefault();
      if (await guarded(() => post("/canned", { short_code: code.value.trim().replace(/^\//, ""), text: text.value }), t("saved"))) reload();
    },
  }, field(t("shortcut"), code), field(t("text"), text), h("button", { type: "submit", class: "primary" }, t("create")));

  clear(root, h("div", { class: "page" },
    h("h1", {}, t("agents")),
    table(t("agents_title"), [t("name"), t("email"), t("role"), t("teams"), t("capacity"), t("active"), t("presence"), t("open_now"), ""],
      list.items.map(agentRow), "agents-table"),
    createAgent,
    table(t("teams_title"), [t("team"), t("agents_count"), t("pending_count"), t("open_count"), ""],
      teams.items.map((team) => h("tr", {},
        h("td", {}, team.name), h("td", {}, String(team.agents)), h("td", {}, String(team.pending)), h("td", {}, String(team.open)),
        h("td", {}, h("button", {
          type: "button", "aria-label": `${t("delete")} ${team.name}`,
          onclick: async () => { if ((await guarded(() => api("DELETE", `/teams/${encodeURIComponent(team.name)}`))) !== undefined) reload(); },
        }, t("delete"))))), "teams-table"),
    createTeam,
    table(t("canned_title"), [t("shortcut"), t("text"), ""], canned.items.map((c) => h("tr", {},
      h("td", {}, `/${c.short_code}`), h("td", { class: "wrap" }, c.text),
      h("td", {}, h("button", {
        type: "button", "aria-label": `${t("delete")} /${c.short_code}`,
        onclick: async () => { if ((await guarded(() => api("DELETE", `/canned/${c.id}`))) !== undefined) reload(); },
      }, t("delete"))))), "canned-table"),
    createCanned));
});

// ---- channels ---------------------------------------------------------------------------
export const channels = page(async (root) => {
  let list;
  try { list = await get("/channels"); } catch (e) { clear(root, h("p", { class: "error", role: "alert" }, e.message)); return; }
  clear(root, h("div", { class: "page" },
    h("h1", {}, t("channels")),
    table(t("channels_title"), [t("name"), t("type"), t("state"), t("error"), t("last_error")],
      list.items.map((c) => h("tr", { "data-channel": c.name },
        h("td", {}, c.name), h("td", {}, c.type),
        h("td", {}, h("span", { class: `state ${c.status}` }, t(c.status === "error" ? "error" : c.status === "disabled" ? "disabled" : "ok"))),
        h("td", { class: "wrap" }, c.error || ""),
        h("td", { class: "wrap" }, c.last_error
          ? [h("time", { datetime: c.last_error.at }, when(c.last_error.at)), " ",
            h("a", { href: `#/inbox/${c.last_error.conversation_id}` }, `#${c.last_error.conversation_id}`), ": ", c.last_error.error]
          : t("none")))), "channels-table")));
});

// ---- the bot ------------------------------------------------------------------------------
export const bot = page(async (root, session) => {
  let info;
  try { info = await get("/bot"); } catch (e) { clear(root, h("p", { class: "error", role: "alert" }, e.message)); return; }
  const canTrain = ["admin", "designer"].includes(session.me.role);
  const status = h("p", { role: "status", class: "muted" });
  const retrain = h("button", {
    type: "button", class: "primary", "data-testid": "bot-retrain", hidden: !canTrain,
    onclick: async () => {
      retrain.disabled = true;
      status.textContent = t("retraining");
      const result = await guarded(() => post("/bot/reload", { force_train: true }));
      retrain.disabled = false;
      status.textContent = "";
      if (result && result.ok) toast(t("retrained"));
      if (result) bot.mount(root, session).route();
    },
  }, t("retrain"));
  const errors = info.errors && info.errors.length ? info.errors : info.served_errors || [];
  clear(root, h("div", { class: "page" },
    h("h1", {}, t("bot")),
    h("dl", { class: "facts" },
      h("dt", {}, t("bot_path")), h("dd", {}, info.path),
      h("dt", {}, t("loaded_at")), h("dd", {}, when(info.loaded_at)),
      h("dt", {}, t("reloads")), h("dd", {}, String(info.reloads))),
    retrain, status,
    h("section", { "aria-labelledby": "errors-h", "data-testid": "bot-errors" },
      h("h2", { id: "errors-h" }, t("errors_title")),
      errors.length
        ? [h("p", {}, t("serving_old")), h("ul", { class: "errors" }, errors.map((e) => h("li", {}, h("code", {}, e))))]
        : h("p", { class: "ok" }, t("no_errors"))),
    table(t("flows"), [t("name"), t("triggers"), t("steps"), t("file")],
      info.flows.map((f) => h("tr", {}, h("td", {}, f.name), h("td", {}, (f.intents || []).join(", ")),
        h("td", {}, String(f.steps ?? "")), h("td", {}, f.line ? `${f.file}:${f.line}` : f.file || ""))), "flows-table"),
    table(t("intents"), [t("intent"), t("examples")],
      info.intents.map((i) => h("tr", {}, h("td", {}, i.name), h("td", {}, String(i.examples)))), "intents-table"),
    table(t("knowledge"), [t("id"), t("title"), t("language_of"), t("file")],
      info.knowledge.map((k) => h("tr", {}, h("td", {}, k.id), h("td", { class: "wrap" }, k.title),
        h("td", {}, (k.languages || []).join(", ")), h("td", {}, k.line ? `${k.file}:${k.line}` : k.file || ""))), "knowledge-table")));
});

// ---- try it ---------------------------------------------------------------------------
export const tryit = {
  mount(root) {
    let session = newSession();
    const log = h("ol", { class: "history try", "aria-live": "polite", "aria-label": t("history") });
    const input = h("input", { type: "text", placeholder: t("try_ph"), "aria-label": t("try_ph"), maxlength: "2000", "data-testid": "try-input" });
    const say = async (text, shown) => {
      log.append(h("li", { class: "msg in contact", "data-testid": "message", "data-sender": "contact" },
        h("div", { class: "text" }, shown || text)));
      const result = await guarded(() => post("/bot/try", { text, session }));
      if (!result) return;
      const nlu = result.nlu;
      if (nlu) {
        log.lastChild.append(h("div", { class: "nlu" }, nlu.intent
          ? `${t("intent")}: ${nlu.intent} · ${t("confidence")} ${Math.round(nlu.confidence * 100)}%`
          : `${t("out_of_scope")} · ${t("confidence")} ${Math.round((nlu.confidence || 0) * 100)}%`));
      }
      for (const m of result.replies) {
        log.append(h("li", { class: `msg out ${m.sender}`, "data-testid": "message", "data-sender": m.sender },
          m.text ? h("div", { class: "text" }, m.text) : null,
          m.buttons && m.buttons.length ? h("div", { class: "buttons" }, m.buttons.map((b) =>
            h("button", { type: "button", class: "small", onclick: () => say(b.payload, b.title) }, b.title))) : null,
          m.bot ? h("div", { class: "nlu" }, [m.bot.flow, m.bot.step != null ? `${t("step")} ${m.bot.step}` : null].filter(Boolean).join(" · ")) : null));
      }
      if (result.status !== "bot") {
        log.append(h("li", { class: "msg system" }, h("div", { class: "text" }, `${t("status_" + result.status)} — #${result.conversation_id}`)));
      }
      log.scrollTop = log.scrollHeight;
    };
    const form = h("form", {
      class: "try-form",
      onsubmit: (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        input.value = "";
        say(text);
      },
    }, input, h("button", { type: "submit", class: "primary", "data-testid": "try-send" }, t("send")),
    h("button", { type: "button", onclick: () => { session = newSession(); clear(log); input.focus(); } }, t("restart")));
    clear(root, h("div", { class: "page try-page" }, h("h1", {}, t("try_title")), h("p", { class: "muted" }, t("try_hint")), log, form));
    input.focus();
    return { route() {}, unmount() { clear(root); } };
  },
};

function newSession() {
  return `s${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}
