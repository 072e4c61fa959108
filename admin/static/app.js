// The agents' web UI: login, the navigation, and the page router (#/inbox, #/inbox/<id>,
// #/dashboard, #/review, #/agents, #/channels, #/bot, #/try). Each page is a module with
// mount(root, session).

import { api, auth, get, ApiError } from "./api.js";
import { h, clear, field, select, toast } from "./dom.js";
import { t, setLanguage, browserLanguage, language } from "./i18n.js";
import * as inbox from "./inbox.js";
import * as dashboard from "./dashboard.js";
import * as review from "./review.js";
import * as pages from "./pages.js";

const LANG = "kefu.admin.language";
const root = document.getElementById("app");
const session = { me: null };
let page = null; // the mounted page: {unmount(), route(path)}

function storedLanguage() {
  try { return localStorage.getItem(LANG); } catch { return null; }
}

function rememberLanguage(value) {
  try { localStorage.setItem(LANG, value); } catch { /* not kept */ }
}

const PAGES = [
  { path: "inbox", key: "inbox", module: inbox, roles: null },
  { path: "dashboard", key: "dashboard", module: dashboard, roles: ["admin"] },
  { path: "review", key: "review", module: review, roles: ["admin", "designer"] },
  { path: "agents", key: "agents", module: pages.agents, roles: ["admin"] },
  { path: "channels", key: "channels", module: pages.channels, roles: null },
  { path: "bot", key: "bot", module: pages.bot, roles: null },
  { path: "try", key: "tryit", module: pages.tryit, roles: null },
];

function allowed(entry) {
  return !entry.roles || entry.roles.includes(session.me.role);
}

function showLogin(message) {
  if (page) page.unmount();
  page = null;
  session.me = null;
  setLanguage(storedLanguage() || browserLanguage());
  document.title = `${t("login")} · ${t("app")}`;
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, "data-testid": "login-email" });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true, "data-testid": "login-password" });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message || "");
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "login-submit" }, t("login"));
  const form = h("form", {
    class: "login", "aria-labelledby": "login-title",
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        const token = await api("POST", "/auth/login", { email: email.value.trim(), password: password.value });
        auth.token = token.access_token;
        await start();
      } catch (err) {
        error.textContent = err.status === 401 ? t("login_failed") : err.status === 0 ? t("network") : err.message;
        error.hidden = false;
        submit.disabled = false;
        password.select();
      }
    },
  },
  h("h1", { id: "login-title" }, t("login_title")),
  field(t("email"), email), field(t("password"), password), error, submit,
  languagePicker(() => showLogin()));
  clear(root, h("main", { id: "main", class: "login-page" }, form));
  email.focus();
}

function languagePicker(onChange) {
  const picker = select([["zh", "中文"], ["en", "English"]], language(), {
    "aria-label": t("language"), class: "language",
    onchange: async () => {
      rememberLanguage(picker.value);
      setLanguage(picker.value);
      if (session.me) {
        try { session.me = await api("PATCH", "/me", { language: picker.value }); } catch (e) { toast(e.message, "error"); }
      }
      onChange();
    },
  });
  return picker;
}

async function start() {
  try {
    session.me = await get("/me");
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401) toast(e.message, "error");
    showLogin();
    return;
  }
  setLanguage(session.me.language || storedLanguage() || browserLanguage());
  if (session.me.presence === "offline") {
    try { session.me = await api("PATCH", "/me", { presence: "online" }); } catch { /* stays offline */ }
  }
  shell();
}

function shell() {
  const main = h("main", { id: "main", tabindex: "-1" });
  const links = PAGES.filter(allowed).map((entry) =>
    h("a", { href: `#/${entry.path}`, "data-page": entry.path }, t(entry.key)));
  const presence = select(["online", "away", "offline"].map((p) => [p, t(p)]), session.me.presence, {
    "aria-label": t("presence"), class: "presence",
    onchange: async () => {
      try { session.me = await api("PATCH", "/me", { presence: presence.value }); } catch (e) { toast(e.message, "error"); }
    },
  });
  const live = h("span", { class: "live", id: "live", role: "status" });
  const header = h("header", { class: "top" },
    h("a", { class: "skip", href: "#main", onclick: (e) => { e.preventDefault(); main.focus(); } }, t("skip")),
    h("span", { class: "brand" }, t("app")),
    h("nav", { "aria-label": t("nav") }, links),
    h("span", { class: "spacer" }),
    live,
    h("span", { class: "me" }, session.me.name),
    presence,
    languagePicker(() => shell()),
    h("button", { type: "button", class: "link", onclick: logout }, t("logout")));
  clear(root, header, main);
  if (page) page.unmount();
  page = null;
  route();
}

async function logout() {
  try { await api("PATCH", "/me", { presence: "offline" }); } catch { /* logged out anyway */ }
  // the token stops working on the hub too (a copy left in the browser is useless)
  try { if (auth.token) await api("POST", "/auth/logout"); } catch { /* logged out anyway */ }
  auth.token = null;
  location.hash = "";
  showLogin();
}

function route() {
  if (!session.me) return;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const entry = PAGES.find((p) => p.path === name && allowed(p)) || PAGES[0];
  for (const link of root.querySelectorAll("nav a")) {
    if (link.dataset.page === entry.path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${t(entry.key)} · ${t("app")}`;
  const main = document.getElementById("main");
  if (!page || page.entry !== entry) {
    if (page) page.unmount();
    page = entry.module.mount(main, session);
    page.entry = entry;
  }
  page.route(rest);
}

auth.onExpired = () => showLogin();
window.addEventListener("hashchange", route);
if (auth.token) start();
else showLogin();
