// The inbox: conversation list (status tabs, filters, search, live over the events socket),
// the conversation (history with what the bot understood, handoff note, actions, labels,
// replies with canned responses and private notes) and suggestions from the knowledge base.

import { api, get, post, query, connectEvents } from "./api.js";
import { h, clear, select, toast } from "./dom.js";
import { t, when } from "./i18n.js";

const TABS = [
  ["pending", { status: "pending" }],
  ["mine", { assignee: "me", status: "open,snoozed" }],
  ["open", { status: "open,snoozed" }],
  ["bot", { status: "bot" }],
  ["resolved", { status: "resolved" }],
];
const UNREAD = "kefu.admin.unread";
const PAGE = 50;

export function mount(root, session) {
  const me = session.me;
  const canAct = me.role !== "designer"; // designers read conversations; agents answer them
  const state = {
    tab: "pending", filters: { channel: "", team: "", label: "", q: "" },
    items: [], cursor: null, counts: {}, current: null, messages: [],
    agents: [], canned: [], labels: [], teams: [], channels: [],
    unread: loadUnread(me.id),
  };
  let events = null, reloadTimer = null, listSeq = 0, openSeq = 0;

  // ---- the layout --------------------------------------------------------------------
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("tabs") });
  const channelFilter = h("select", { "aria-label": t("channel") });
  const teamFilter = h("select", { "aria-label": t("team") });
  const labelFilter = h("select", { "aria-label": t("label") });
  const search = h("input", { type: "search", placeholder: t("search_ph"), "aria-label": t("search") });
  const list = h("ul", { class: "conversations", "aria-label": t("list") });
  const more = h("button", { type: "button", class: "more", hidden: true, onclick: () => loadList(true) }, t("more"));
  const notifyButton = h("button", { type: "button", class: "link notify", onclick: askNotifications }, t("notify"));
  const listPane = h("section", { class: "list-pane", "aria-label": t("list") },
    tabs,
    h("div", { class: "filters", role: "group", "aria-label": t("filters") }, channelFilter, teamFilter, labelFilter, search),
    list, more, notifyButton);
  const view = h("section", { class: "conversation", "aria-label": t("history") },
    h("p", { class: "placeholder" }, t("no_selection")));
  const side = h("aside", { class: "side", "aria-label": t("suggestions") });
  clear(root, h("div", { class: "inbox" }, listPane, view, side));
  if (!("Notification" in window) || Notification.permission !== "default") notifyButton.hidden = true;

  for (const [el, key] of [[channelFilter, "channel"], [teamFilter, "team"], [labelFilter, "label"]]) {
    el.addEventListener("change", () => { state.filters[key] = el.value; loadList(); });
  }
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.filters.q = search.value.trim(); loadList(); }, 250);
  });

  function renderTabs() {
    clear(tabs, TABS.map(([name]) => {
      const count = state.counts[name];
      return h("button", {
        type: "button", role: "tab", id: `tab-${name}`, "aria-selected": String(state.tab === name),
        tabindex: state.tab === name ? "0" : "-1", "data-tab": name,
        class: name === "pending" && count ? "has-pending" : null,
        onclick: () => { state.tab = name; renderTabs(); loadList(); },
        onkeydown: tabKeys,
      }, t(`tab_${name}`), count !== undefined ? h("span", { class: "count" }, String(count)) : null);
    }));
  }

  function tabKeys(e) { // arrow keys move between tabs, as the WAI-ARIA tabs pattern says
    const names = TABS.map(([n]) => n);
    const i = names.indexOf(state.tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: names.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    state.tab = names[(next + names.length) % names.length];
    renderTabs();
    tabs.querySelector(`[data-tab=${state.tab}]`).focus();
    loadList();
  }

  function knowLabels(labels) { // labels new to the filter, from this agent or another
    const fresh = labels.filter((l) => !state.labels.includes(l));
    if (!fresh.length) return;
    state.labels = [...state.labels, ...fresh].sort();
    renderFilters();
  }

  function renderFilters() {
    const fill = (el, all, values, chosen) => clear(el,
      [["", all], ...values.map((v) => [v, v])].map(([v, text]) => h("option", { value: v, selected: v === chosen }, text)));
    fill(channelFilter, t("all_channels"), state.channels, state.filters.channel);
    fill(teamFilter, t("all_teams"), state.teams, state.filters.team);
    fill(labelFilter, t("all_labels"), state.labels, state.filters.label);
  }

  // ---- the list ----------------------------------------------------------------------
  async function loadList(append = false) {
    const seq = ++listSeq;
    const [, params] = TABS.find(([n]) => n === state.tab);
    const cursor = append ? state.cursor : null;
    try {
      const [page, counts] = await Promise.all([
        get(`/conversations${query({ ...params, ...state.filters, cursor, limit: PAGE })}`),
        append ? Promise.resolve(state.counts) : get(`/conversations/counts${query({ channel: state.filters.channel, team: state.filters.team, label: state.filters.label })}`),
      ]);
      if (seq !== listSeq) return; // a newer load started meanwhile
      state.items = append ? [...state.items, ...page.items] : page.items;
      state.cursor = page.next_cursor;
      state.counts = counts;
      renderTabs();
      renderList();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  function renderList() {
    more.hidden = !state.cursor;
    if (!state.items.length) {
      clear(list, h("li", { class: "empty" }, t("empty_list")));
      return;
    }
    clear(list, state.items.map((c) => {
      const unread = state.unread[c.id] || 0;
      const last = c.last_message;
      return h("li", {},
        h("a", {
          href: `#/inbox/${c.id}`, "data-testid": "conversation-item", "data-status": c.status,
          "data-conversation-id": c.id, class: `item status-${c.status}${unread ? " unread" : ""}`,
          "aria-current": state.current && state.current.id === c.id ? "true" : null,
        },
        h("span", { class: "who" }, who(c)),
        h("span", { class: "chan" }, c.channel),
        h("time", { datetime: c.last_message_at }, when(c.last_message_at)),
        h("span", { class: "snippet" }, last ? (last.private ? `🔒 ${last.text}` : last.text || kindText(last)) : ""),
        h("span", { class: "tags" },
          h("span", { class: `status-chip ${c.status}` }, t(`status_${c.status}`)),
          c.assignee ? h("span", { class: "assignee" }, c.assignee.name) : null,
          (c.labels || []).map((l) => h("span", { class: "label-chip" }, l)),
          c.handoff ? h("span", { class: "reason" }, t(`reason_${c.handoff.reason}`)) : null),
        unread ? h("span", { class: "badge", "aria-label": t("unread", { n: unread }) }, String(unread)) : null));
    }));
  }

  // ---- one conversation --------------------------------------------------------------
  async function open(id) {
    const seq = ++openSeq;
    try {
      const conversation = await get(`/conversations/${id}`);
      const messages = [];
      let after = 0;
      for (;;) { // the whole history, a page at a time
        const page = await get(`/conversations/${id}/messages${query({ after, limit: 500 })}`);
        messages.push(...page.items);
        if (!page.next_cursor) break;
        after = page.next_cursor;
      }
      // the customer's earlier conversations, on this channel or their others, shown above
      const earlier = await get(`/conversations/${id}/history${query({ limit: 200 })}`)
        .then((page) => page.items.filter((m) => m.conversation_id !== id), () => []);
      if (seq !== openSeq) return;
      state.current = conversation;
      state.messages = messages;
      state.earlier = earlier;
      markRead(id);
      renderConversation();
      renderList();
      loadSuggestions();
    } catch (e) {
      if (seq !== openSeq) return;
      state.current = null;
      clear(view, h("p", { class: "error", role: "alert" }, e.message));
      clear(side);
    }
  }

  let history = null, replyInput = null;

  function renderConversation() {
    const c = state.current;
    replyInput = null;
    history = h("ol", { class: "history", "aria-label": t("history"), "aria-live": "polite", tabindex: "0" },
      (state.earlier || []).map(earlierItem), state.messages.map(messageItem));
    clear(view,
      h("header", { class: "conv-head" },
        h("h2", {}, who(c)),
        h("span", { class: "chan" }, c.channel),
        h("span", { class: `status-chip ${c.status}`, "data-testid": "conversation-status" }, t(`status_${c.status}`)),
        c.snooze_until ? h("span", { class: "muted" }, `→ ${when(c.snooze_until)}`) : null,
        h("span", { class: "muted" }, `${t("assignee")}: ${c.assignee ? c.assignee.name : t("unassigned")}`),
        c.team ? h("span", { class: "muted" }, `${t("team")}: ${c.team}`) : null),
      canAct ? actions(c) : null,
      canAct ? labelsEditor(c) : null,
      c.handoff && c.status !== "bot" ? handoffNote(c.handoff) : null,
      history,
      canAct ? replyBox() : null);
    history.scrollTop = history.scrollHeight;
  }

  function actions(c) {
    const mine = c.assignee && c.assignee.id === me.id;
    const bar = h("div", { class: "actions", role: "toolbar", "aria-label": t("actions") });
    const act = (testid, label, handler, cls) => h("button", {
      type: "button", "data-testid": testid, class: cls || null,
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        try { await handler(); } catch (err) { toast(err.message, "error"); }
        await refreshCurrent();
      },
    }, label);
    if (!(c.status === "open" && mine)) {
      bar.append(act("action-take", c.status === "resolved" ? t("reopen") : t("take"),
        () => post(`/conversations/${c.id}/assign`, { agent_id: me.id }), "primary"));
    }
    if (c.status === "open") {
      const until = select([["1", t("h1")], ["4", t("h4")], ["tomorrow", t("tomorrow")], ["168", t("week")]], "1",
        { "aria-label": t("snooze_for") });
      bar.append(h("span", { class: "snooze" }, until,
        act("action-snooze", t("snooze"), () => post(`/conversations/${c.id}/status`, { status: "snoozed", snooze_until: snoozeUntil(until.value) }))));
    }
    if (c.status !== "resolved") {
      bar.append(act("action-resolve", t("resolve"), () => post(`/conversations/${c.id}/status`, { status: "resolved" })));
    }
    if (c.status !== "bot") {
      bar.append(act("action-handback", t("handback"), () => post(`/conversations/${c.id}/status`, { status: "bot" })));
    }
    const agentChoice = select([["", t("assign_to")], ...state.agents.filter((a) => a.active !== false).map((a) => [a.id, a.name])], "",
      { "aria-label": t("assign_to") });
    const teamChoice = select([["", t("team")], ...state.teams.map((n) => [n, n])], c.team || "", { "aria-label": t("team") });
    bar.append(h("span", { class: "assign" }, agentChoice, teamChoice,
      act("action-assign", t("assign"), () => {
        const body = {};
        if (agentChoice.value) body.agent_id = Number(agentChoice.value);
        if (teamChoice.value && teamChoice.value !== c.team) body.team = teamChoice.value;
        return post(`/conversations/${c.id}/assign`, body);
      })));
    return bar;
  }

  function labelsEditor(c) {
    const input = h("input", { type: "text", list: "known-labels", placeholder: t("add_label"), "aria-label": t("add_label"), maxlength: "32" });
    const save = async (labels) => {
      try {
        state.current = await api("PUT", `/conversations/${c.id}/labels`, { labels });
        knowLabels(state.current.labels);
        renderConversation();
      } catch (e) { toast(e.message, "error"); }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" || !input.value.trim()) return;
      e.preventDefault();
      save([...(c.labels || []), input.value.trim()]);
    });
    return h("div", { class: "labels", role: "group", "aria-label": t("labels") },
      (c.labels || []).map((l) => h("span", { class: "label-chip" }, l,
        h("button", { type: "button", class: "x", "aria-label": t("remove_label", { l }), onclick: () => save(c.labels.filter((x) => x !== l)) }, "×"))),
      input,
      h("datalist", { id: "known-labels" }, state.labels.map((l) => h("option", { value: l }))));
  }

  function handoffNote(handoff) {
    const slots = Object.entries(handoff.slots || {});
    return h("section", { class: "handoff", "aria-label": t("handoff") },
      h("h3", {}, t("handoff")),
      h("dl", {},
        h("dt", {}, t("reason")), h("dd", {}, t(`reason_${handoff.reason}`)),
        handoff.intent ? [h("dt", {}, t("intent")), h("dd", {}, handoff.intent)] : null,
        handoff.priority ? [h("dt", {}, t("priority")), h("dd", {}, handoff.priority)] : null,
        handoff.note ? [h("dt", {}, t("note")), h("dd", {}, handoff.note)] : null,
        slots.length ? [h("dt", {}, t("slots")), h("dd", {}, slots.map(([k, v]) => h("span", { class: "slot" }, `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)))] : null,
        handoff.summary ? [h("dt", {}, t("summary")), h("dd", { class: "summary" }, handoff.summary)] : null));
  }

  function messageItem(m) {
    const sender = m.sender;
    const nlu = m.nlu;
    return h("li", {
      "data-testid": "message", "data-sender": sender, "data-message-id": m.id,
      class: `msg ${m.direction} ${sender}${m.private ? " private" : ""}`,
    },
    h("div", { class: "meta" },
      h("span", {}, m.private ? t("private_note") : t(`sender_${sender}`)),
      h("time", { datetime: m.created_at }, when(m.created_at)),
      m.delivery === "queued" ? h("span", { class: "muted" }, t("queued")) : null,
      m.delivery === "failed" ? h("span", { class: "failed", title: m.delivery_error || "" }, `${t("failed")}: ${m.delivery_error || ""}`) : null),
    m.text ? h("div", { class: "text" }, m.text) : null,
    (m.attachments || []).map(attachment),
    m.buttons && m.buttons.length ? h("div", { class: "buttons" }, m.buttons.map((b) => h("span", { class: "button-chip", title: b.payload }, b.title))) : null,
    sender === "contact" && nlu && m.text ? h("div", { class: "nlu" },
      nlu.intent ? `${t("intent")}: ${nlu.intent} · ${t("confidence")} ${Math.round((nlu.confidence || 0) * 100)}%`
        : `${t("out_of_scope")} · ${t("confidence")} ${Math.round((nlu.confidence || 0) * 100)}%`) : null,
    sender === "contact" && m.turn ? h("div", { class: "decision", "data-testid": "turn-decision", title: m.turn.reason || "" },
      `${t("decision")}: ${m.turn.decision} · ${m.turn.reason || ""}`) : null,
    sender === "bot" && m.bot ? h("div", { class: "nlu" }, [m.bot.flow, m.bot.step !== undefined && m.bot.step !== null ? `${t("step")} ${m.bot.step}` : null].filter(Boolean).join(" · ")) : null);
  }

  function earlierItem(m) { // a message of another conversation of this customer, with its channel
    const item = messageItem(m);
    item.setAttribute("data-testid", "earlier-message");
    item.classList.add("earlier");
    item.style.opacity = "0.8"; // set apart from the conversation at hand
    item.firstChild.prepend(h("span", { class: "chan", title: t("earlier_conversation") }, `${m.channel} #${m.conversation_id}`));
    return item;
  }

  // A customer's file: an image shows (and opens in a tab), anything else is downloaded, never
  // opened as a page (the hub serves /media as images or attachments, sandboxed: hub/media.py).
  function attachment(a) {
    if (!a.url || !/^(\/|https?:)/.test(a.url)) return null;
    if (a.kind === "image") {
      return h("a", { href: a.url, target: "_blank", rel: "noopener noreferrer" },
        h("img", { src: a.url, alt: a.name || t("image"), class: "image", onload: keepAtBottom }));
    }
    return h("a", { href: a.url, target: "_blank", rel: "noopener noreferrer", download: "", class: "file" }, `${t("file")}: ${a.name || a.url}`);
  }

  function keepAtBottom() { // an image that loads late doesn't push the newest message away
    if (history && history.scrollHeight - history.scrollTop - history.clientHeight < 400) {
      history.scrollTop = history.scrollHeight;
    }
  }

  function replyBox() {
    const privateBox = h("input", { type: "checkbox", id: "reply-private" });
    replyInput = h("textarea", { "data-testid": "reply-input", rows: "3", placeholder: t("reply_ph"), "aria-label": t("reply") });
    const menu = h("ul", { class: "canned-menu", role: "listbox", id: "canned-menu", "aria-label": t("canned"), hidden: true });
    const send = h("button", { type: "submit", class: "primary", "data-testid": "reply-send" }, t("send"));
    let choices = [], active = 0;
    const form = h("form", {
      class: "reply",
      onsubmit: async (e) => {
        e.preventDefault();
        const text = replyInput.value.trim();
        if (!text) return;
        send.disabled = true;
        try {
          const message = await post(`/conversations/${state.current.id}/messages`, { text, private: privateBox.checked });
          replyInput.value = "";
          addMessage(message);
          if (!privateBox.checked) refreshCurrent();
        } catch (err) {
          toast(err.message, "error");
        } finally {
          send.disabled = false;
          replyInput.focus();
        }
      },
    }, menu, replyInput,
    h("div", { class: "reply-bar" },
      h("label", { class: "check" }, privateBox, t("private")),
      send));
    privateBox.addEventListener("change", () => {
      form.classList.toggle("private", privateBox.checked);
      replyInput.placeholder = privateBox.checked ? t("note_ph") : t("reply_ph");
      send.textContent = privateBox.checked ? t("add_note") : t("send");
    });
    const showMenu = () => {
      const m = /^\/(\S*)$/.exec(replyInput.value);
      choices = m ? state.canned.filter((c) => c.short_code.toLowerCase().startsWith(m[1].toLowerCase())).slice(0, 8) : [];
      active = Math.min(active, Math.max(choices.length - 1, 0));
      menu.hidden = !choices.length;
      replyInput.setAttribute("aria-expanded", String(!!choices.length));
      replyInput.setAttribute("aria-controls", "canned-menu");
      clear(menu, choices.map((c, i) => h("li", {
        role: "option", id: `canned-${c.id}`, "aria-selected": String(i === active), "data-testid": "canned-option",
        onmousedown: (e) => { e.preventDefault(); pick(c); },
      }, h("b", {}, `/${c.short_code}`), " ", c.text)));
      if (choices.length) replyInput.setAttribute("aria-activedescendant", `canned-${choices[active].id}`);
      else replyInput.removeAttribute("aria-activedescendant");
    };
    const pick = (c) => {
      replyInput.value = c.text;
      choices = [];
      menu.hidden = true;
      replyInput.setAttribute("aria-expanded", "false");
      replyInput.focus();
    };
    replyInput.addEventListener("input", () => { active = 0; showMenu(); });
    replyInput.addEventListener("keydown", (e) => {
      if (choices.length) {
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          active = (active + (e.key === "ArrowDown" ? 1 : -1) + choices.length) % choices.length;
          showMenu();
          return;
        }
        if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); pick(choices[active]); return; }
        if (e.key === "Escape") { choices = []; menu.hidden = true; return; }
      }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { // IME composition: Enter picks characters
        e.preventDefault();
        form.requestSubmit();
      }
    });
    return form;
  }

  function addMessage(m) {
    if (!state.current || m.conversation_id !== state.current.id) return;
    if (state.messages.some((x) => x.id === m.id)) return;
    state.messages.push(m);
    state.messages.sort((a, b) => a.id - b.id);
    if (history) {
      const item = messageItem(m);
      const next = [...history.children].find((li) => Number(li.dataset.messageId) > m.id);
      history.insertBefore(item, next || null);
      history.scrollTop = history.scrollHeight;
    }
    if (m.sender === "contact") loadSuggestions();
  }

  async function refreshCurrent() {
    if (!state.current) return;
    const id = state.current.id;
    try {
      const c = await get(`/conversations/${id}`);
      if (!state.current || state.current.id !== id) return;
      const typed = replyInput ? replyInput.value : "";
      const focused = replyInput !== null && document.activeElement === replyInput;
      state.current = c;
      renderConversation();
      if (replyInput) {
        replyInput.value = typed;
        if (focused) replyInput.focus();
      }
    } catch (e) { toast(e.message, "error"); }
  }

  // ---- suggestions -------------------------------------------------------------------
  async function loadSuggestions() {
    if (!state.current) return;
    const id = state.current.id;
    let s;
    try { s = await get(`/conversations/${id}/suggestions`); } catch { return; }
    if (!state.current || state.current.id !== id) return;
    const c = state.current;
    const insert = (text) => { if (replyInput) { replyInput.value = text; replyInput.focus(); } };
    clear(side,
      h("section", { "aria-labelledby": "contact-h" },
        h("h3", { id: "contact-h" }, t("contact")),
        h("dl", {},
          h("dt", {}, t("name")), h("dd", {}, who(c)),
          h("dt", {}, t("channel")), h("dd", {}, `${c.channel} · ${c.contact.external_id}`),
          c.person && c.person.contacts.length ? [h("dt", {}, t("other_channels")), h("dd", { "data-testid": "person-contacts" },
            c.person.contacts.map((o) => h("div", {}, `${o.channel} · ${o.name || o.external_id}`)))] : null,
          c.language ? [h("dt", {}, t("language_of")), h("dd", {}, c.language)] : null,
          h("dt", {}, t("created")), h("dd", {}, when(c.created_at)),
          c.first_response_at ? [h("dt", {}, t("first_response")), h("dd", {}, when(c.first_response_at))] : null)),
      h("section", { "aria-labelledby": "kb-h", "data-testid": "suggestions" },
        h("h3", { id: "kb-h" }, t("articles")),
        s.articles.length ? h("ul", { class: "suggest" }, s.articles.map((a) => h("li", {},
          h("b", {}, a.title), h("p", {}, a.summary || a.answer),
          h("button", { type: "button", class: "small", onclick: () => insert(a.url ? `${a.summary || a.answer}\n${a.url}` : a.answer || a.summary) }, t("insert"))))) : h("p", { class: "muted" }, t("no_suggestions")),
        h("h3", {}, t("canned")),
        s.canned.length ? h("ul", { class: "suggest" }, s.canned.map((r) => h("li", {},
          h("b", {}, `/${r.short_code}`), h("p", {}, r.text),
          h("button", { type: "button", class: "small", onclick: () => insert(r.text) }, t("insert"))))) : h("p", { class: "muted" }, t("no_suggestions"))));
  }

  // ---- live updates ------------------------------------------------------------------
  function onEvent(event) {
    const id = event.conversation_id;
    const isCurrent = state.current && state.current.id === id;
    if (event.type === "message.created" || event.type === "message.updated") {
      const m = event.data;
      if (isCurrent && event.type === "message.created") addMessage(m);
      else if (event.type === "message.created" && m.sender === "contact" && !m.private) {
        state.unread[id] = (state.unread[id] || 0) + 1;
        saveUnread(me.id, state.unread);
      }
      if (isCurrent && event.type === "message.updated") {
        state.messages = state.messages.map((x) => (x.id === m.id ? m : x));
        renderConversation();
      }
    }
    if (event.type === "message.delivery" && isCurrent) { // sent, or failed with the reason
      const m = state.messages.find((x) => x.id === event.data.id);
      if (m) {
        Object.assign(m, { delivery: event.data.delivery, delivery_error: event.data.error });
        const item = history && history.querySelector(`[data-message-id="${m.id}"]`);
        if (item) item.replaceWith(messageItem(m));
      }
      return; // the list doesn't change
    }
    if (event.type === "conversation.updated") knowLabels(event.data.labels || []);
    if (event.type === "conversation.status_changed" && event.data.to === "pending") {
      announcePending(id);
    }
    if (isCurrent && event.type.startsWith("conversation.")) refreshCurrent();
    scheduleReload();
  }

  function scheduleReload() { // bursts of events reload the list once
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => loadList(), 200);
  }

  async function announcePending(id) {
    beep();
    let name = `#${id}`;
    try { name = who(await get(`/conversations/${id}`)); } catch { /* the number will do */ }
    toast(t("new_pending", { who: name }));
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      const n = new Notification(t("app"), { body: t("new_pending", { who: name }), tag: `kefu-${id}` });
      n.onclick = () => { window.focus(); location.hash = `#/inbox/${id}`; };
    }
  }

  async function askNotifications() {
    try {
      const answer = await Notification.requestPermission();
      notifyButton.hidden = true;
      if (answer === "granted") toast(t("notify_on"));
    } catch (e) { toast(e.message, "error"); }
  }

  function markRead(id) {
    if (state.unread[id]) {
      delete state.unread[id];
      saveUnread(me.id, state.unread);
    }
  }

  // ---- start ---------------------------------------------------------------------------
  async function loadReference() {
    const settle = (p, fallback) => p.catch(() => fallback);
    const [agents, canned, labels, teams, channels] = await Promise.all([
      settle(get("/agents"), { items: [] }), settle(get("/canned"), { items: [] }),
      settle(get("/labels"), { items: [] }), settle(get("/teams"), { items: [] }),
      settle(get("/channels"), { items: [] }),
    ]);
    state.agents = agents.items;
    state.canned = canned.items;
    state.labels = labels.items;
    state.teams = teams.items.map((x) => x.name);
    state.channels = channels.items.filter((x) => x.enabled !== false).map((x) => x.name);
    renderFilters();
  }

  renderTabs();
  renderFilters();
  loadReference();
  loadList();
  events = connectEvents({
    onEvent,
    onState: (up) => {
      const live = document.getElementById("live");
      if (live) { live.textContent = up ? t("live_on") : t("live_off"); live.classList.toggle("down", !up); }
    },
    onReconnect: () => { loadList(); if (state.current) open(state.current.id); }, // what was missed
  });

  return {
    route([id]) {
      if (id && /^\d+$/.test(id)) open(Number(id));
      else {
        state.current = null;
        clear(view, h("p", { class: "placeholder" }, t("no_selection")));
        clear(side);
        renderList();
      }
    },
    unmount() {
      events.close();
      clearTimeout(reloadTimer);
    },
  };
}

function who(c) {
  return c.contact.name || c.contact.external_id || `#${c.id}`;
}

function kindText(m) {
  const a = m.attachments && m.attachments[0];
  return a ? `${t(a.kind === "image" ? "image" : "file")}: ${a.name || ""}` : m.kind;
}

function snoozeUntil(choice) {
  const d = new Date();
  if (choice === "tomorrow") {
    d.setDate(d.getDate() + 1);
    d.setHours(9, 0, 0, 0);
  } else {
    d.setTime(d.getTime() + Number(choice) * 3600 * 1000);
  }
  return d.toISOString();
}

function loadUnread(agentId) {
  try { return JSON.parse(localStorage.getItem(`${UNREAD}.${agentId}`)) || {}; } catch { return {}; }
}

function saveUnread(agentId, unread) {
  try { localStorage.setItem(`${UNREAD}.${agentId}`, JSON.stringify(unread)); } catch { /* not kept */ }
}

// A short two-tone chime from WebAudio (no sound file to serve); silent if the browser
// has not let the page play sound yet.
let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [i, freq] of [[0, 880], [1, 1320]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.12, now + i * 0.15);
      gain.gain.exponentialRampToValueAtTime(0.001, now + i * 0.15 + 0.14);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.15);
      osc.stop(now + i * 0.15 + 0.15);
    }
  } catch { /* no sound */ }
}

