// The dashboard (admins): GET /reports/summary over a date range as headline figures, charts
// (Chart.js, loaded on demand from vendor/) and tables, each table exportable as CSV.

import { get, query } from "./api.js";
import { h, clear, field } from "./dom.js";
import { t, language, when } from "./i18n.js";

const COLORS = ["#2563eb", "#f59e0b", "#15803d", "#b91c1c", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const TOP_INTENTS = 10;
const MAX_FLOWS = 6;
const MAX_DAYS = 366; // the longest window GET /reports/summary answers

let chartLibrary = null; // the import of vendor/chart.umd.min.js, once per page load
function loadCharts() {
  chartLibrary = chartLibrary || import("./vendor/chart.umd.min.js").then(() => globalThis.Chart);
  return chartLibrary;
}

// ---- dates: local calendar days -> ISO 8601 with the browser's offset ------------------
const pad = (n) => String(n).padStart(2, "0");
const dayValue = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

function parseDay(value) { // "2026-03-01" -> local midnight, or null
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

export function isoLocal(d) {
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return `${dayValue(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function addDays(d, n) {
  const copy = new Date(d);
  copy.setDate(copy.getDate() + n);
  return copy;
}

// ---- numbers as people read them ---------------------------------------------------------
const locale = () => (language() === "zh" ? "zh-CN" : "en");
const count = (n) => new Intl.NumberFormat(locale()).format(n ?? 0);
const percent = (r) => (r === null || r === undefined ? t("nobody")
  : new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(r));

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return t("nobody");
  const s = Math.round(seconds);
  const parts = s >= 86400 ? [[Math.floor(s / 86400), "dur_d"], [Math.floor((s % 86400) / 3600), "dur_h"]]
    : s >= 3600 ? [[Math.floor(s / 3600), "dur_h"], [Math.floor((s % 3600) / 60), "dur_m"]]
      : s >= 60 ? [[Math.floor(s / 60), "dur_m"], [s % 60, "dur_s"]] : [[s, "dur_s"]];
  return parts.filter(([n], i) => i === 0 || n).map(([n, key]) => t(key, { n })).join(" ");
}

const reasonText = (reason) => {
  const key = `reason_${String(reason).replace(/\s+/g, "_")}`;
  const text = t(key);
  return text === key ? reason : text;
};

// ---- CSV, downloaded in the browser --------------------------------------------------------
function csvField(value) {
  if (value === null || value === undefined) return "";
  let text = String(value);
  // a customer's "=cmd|..." must stay text in a spreadsheet, not become a formula
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(header, rows) {
  return [header, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

function download(filename, text) {
  // The BOM makes Excel read the file as UTF-8 (Chinese intact).
  const url = URL.createObjectURL(new Blob(["\uFEFF", text], { type: "text/csv;charset=utf-8" }));
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- the page -------------------------------------------------------------------------------
export function mount(root) {
  let charts = [];
  let seq = 0;
  const today = new Date();
  const since = h("input", { type: "date", "data-testid": "range-since", value: dayValue(addDays(today, -6)), required: true });
  const until = h("input", { type: "date", "data-testid": "range-until", value: dayValue(today), required: true });
  const preset = (days, key) => h("button", {
    type: "button", "data-testid": `range-${days}`,
    onclick: () => {
      const now = new Date();
      since.value = dayValue(addDays(now, 1 - days));
      until.value = dayValue(now);
      load();
    },
  }, t(key));
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const status = h("p", { class: "muted", role: "status", "data-testid": "dashboard-status" });
  const body = h("div", { class: "dashboard-body", "aria-busy": "true" });
  for (const input of [since, until]) input.addEventListener("change", () => load());
  clear(root, h("div", { class: "page dashboard" },
    h("h1", {}, t("dashboard")),
    h("form", {
      class: "range", role: "group", "aria-label": t("date_range"),
      onsubmit: (e) => { e.preventDefault(); load(); },
    }, field(t("from"), since), field(t("to"), until),
    h("span", { class: "presets", role: "group", "aria-label": t("presets") },
      preset(1, "today"), preset(7, "days7"), preset(30, "days30"))),
    problem, status, body));

  async function load() {
    const first = parseDay(since.value);
    const last = parseDay(until.value);
    problem.hidden = true;
    if (!first || !last || last < first) {
      problem.textContent = t("bad_range");
      problem.hidden = false;
      return;
    }
    if (Math.round((last - first) / 86400000) + 1 > MAX_DAYS) { // the API's limit, said before asking
      problem.textContent = t("range_too_long", { n: MAX_DAYS });
      problem.hidden = false;
      return;
    }
    const mine = ++seq;
    body.setAttribute("aria-busy", "true");
    try {
      const [report, Chart] = await Promise.all([
        get(`/reports/summary${query({ since: isoLocal(first), until: isoLocal(addDays(last, 1)) })}`),
        loadCharts(),
      ]);
      if (mine !== seq) return; // a newer range was asked for meanwhile
      render(report, Chart);
      status.textContent = t("report_window", { since: when(report.since), until: when(report.until) });
    } catch (e) {
      if (mine !== seq) return;
      problem.textContent = e.status === 0 ? t("network") : e.message;
      problem.hidden = false;
    } finally {
      if (mine === seq) body.removeAttribute("aria-busy");
    }
  }

  function render(r, Chart) {
    for (const chart of charts) chart.destroy();
    charts = [];
    const filename = (name) => `kefu-${name}-${since.value}-${until.value}.csv`;
    const channelRows = Object.entries(r.channels);
    const intentRows = Object.entries(r.intents);
    const flowRows = Object.entries(r.flows);
    const reasons = Object.entries(r.escalation.reasons);

    const chart = (id, title, config, summary) => {
      const canvas = h("canvas", { role: "img", "aria-label": `${title}: ${summary || t("no_data")}` }, summary || t("no_data"));
      const box = h("figure", { class: "chart", "data-testid": `chart-${id}` },
        h("figcaption", {}, title),
        h("div", { class: "chart-box" }, canvas));
      charts.push(new Chart(canvas, {
        ...config,
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          plugins: { legend: { display: config.data.datasets.length > 1 } },
          ...config.options,
        },
      }));
      return box;
    };
    const bars = (labels, datasets, options) => ({
      type: "bar",
      data: { labels, datasets: datasets.map((d, i) => ({ backgroundColor: COLORS[i % COLORS.length], ...d })) },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, ...options },
    });
    const said = (pairs) => pairs.map(([k, v]) => `${k} ${v}`).join(", ");

    const sections = [
      figures(r),
      h("div", { class: "charts" },
        chart("reasons", t("escalation_reasons"),
          bars(reasons.map(([k]) => reasonText(k)), [{ label: t("conversations"), data: reasons.map(([, n]) => n) }]),
          said(reasons.map(([k, n]) => [reasonText(k), n]))),
        chart("channels", t("per_channel"),
          bars(channelRows.map(([name]) => name), [
            { label: t("conversations"), data: channelRows.map(([, c]) => c.conversations), yAxisID: "y" },
            { label: t("containment"), data: channelRows.map(([, c]) => (c.containment_rate ?? 0) * 100), yAxisID: "pct" },
          ], {
            scales: {
              y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: t("conversations") } },
              pct: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: `${t("containment")} %` } },
            },
          }),
          said(channelRows.map(([name, c]) => [name, `${c.conversations} (${percent(c.containment_rate)})`]))),
        chart("intents", t("top_intents"),
          bars(intentRows.slice(0, TOP_INTENTS).map(([name]) => name), [
            { label: t("messages"), data: intentRows.slice(0, TOP_INTENTS).map(([, i]) => i.messages) },
            { label: t("escalated"), data: intentRows.slice(0, TOP_INTENTS).map(([, i]) => i.escalated) },
          ], { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }),
          said(intentRows.slice(0, TOP_INTENTS).map(([name, i]) => [name, i.messages])))),
      h("section", { class: "funnels", "aria-labelledby": "funnels-h" },
        h("h2", { id: "funnels-h" }, t("flow_funnels")),
        flowRows.length ? h("div", { class: "charts" }, flowRows.slice(0, MAX_FLOWS).map(([name, f]) => {
          const labels = [...f.steps.map((s) => s.step), t("fell_back"), t("handed_off")];
          const values = [...f.steps.map((s) => s.conversations), f.fell_back, f.handed_off];
          return chart(`flow-${name}`, `${name} (${t("conversations_n", { n: f.conversations })})`, bars(labels, [{
            label: t("conversations"), data: values,
            backgroundColor: values.map((_, i) => (i < f.steps.length ? COLORS[0] : i === f.steps.length ? COLORS[1] : COLORS[3])),
          }]), said(labels.map((l, i) => [l, values[i]])));
        })) : h("p", { class: "muted" }, t("no_data"))),
      reportTable("channels", t("per_channel"), filename, [
        [t("channel"), (x) => x[0]], [t("conversations"), (x) => x[1].conversations],
        [t("messages_in"), (x) => x[1].messages.in], [t("messages_out"), (x) => x[1].messages.out],
        [t("containment"), (x) => x[1].containment_rate, percent], [t("escalation"), (x) => x[1].escalation.rate, percent],
        [t("first_response_median"), (x) => x[1].first_response_seconds.median, duration, t("in_seconds", { what: t("first_response_median") })],
        [t("resolution_median"), (x) => x[1].resolution_seconds.median, duration, t("in_seconds", { what: t("resolution_median") })],
      ], channelRows),
      reportTable("intents", t("per_intent"), filename, [
        [t("intent"), (x) => x[0]], [t("messages"), (x) => x[1].messages],
        [t("conversations"), (x) => x[1].conversations], [t("escalated"), (x) => x[1].escalated],
      ], intentRows),
      reportTable("flow-steps", t("flow_steps"), filename, [
        [t("flow"), (x) => x.flow], [t("step_col"), (x) => x.step], [t("location"), (x) => x.loc],
        [t("conversations"), (x) => x.conversations],
      ], flowRows.flatMap(([flow, f]) => [
        ...f.steps.map((s) => ({ flow, ...s })),
        { flow, step: t("fell_back"), loc: "", conversations: f.fell_back },
        { flow, step: t("handed_off"), loc: "", conversations: f.handed_off },
      ])),
      reportTable("unrecognized", t("unrecognized"), filename, [
        [t("text"), (x) => x.text], [t("times"), (x) => x.count], [t("last_seen"), (x) => x.last_at, when],
      ], r.unrecognized, h("a", { href: "#/review" }, t("label_them"))),
    ];
    clear(body, sections);
  }

  load();
  return {
    route() {},
    unmount() {
      seq++;
      for (const chart of charts) chart.destroy();
      charts = [];
      clear(root);
    },
  };
}

// The headline figures; data-value keeps the API's number for whoever reads the page.
function figures(r) {
  const figure = (id, label, shown, value, detail) => h("div", { class: "figure", "data-testid": `figure-${id}`, "data-value": value ?? "" },
    h("dt", {}, label), h("dd", {}, h("span", { class: "big" }, shown), detail ? h("small", { class: "muted" }, detail) : null));
  const times = (d) => `${t("p90")} ${duration(d.p90)} · ${t("measured_n", { n: d.count })}`;
  return h("dl", { class: "figures", "aria-label": t("headline") },
    figure("conversations", t("conversations"), count(r.conversations), r.conversations),
    figure("messages-in", t("messages_in"), count(r.messages.in), r.messages.in),
    figure("messages-out", t("messages_out"), count(r.messages.out), r.messages.out),
    figure("containment", t("containment"), percent(r.containment_rate), r.containment_rate),
    figure("escalation", t("escalation"), percent(r.escalation.rate), r.escalation.rate, t("conversations_n", { n: r.escalation.count })),
    figure("first-response", t("first_response_median"), duration(r.first_response_seconds.median), r.first_response_seconds.median, times(r.first_response_seconds)),
    figure("resolution", t("resolution_median"), duration(r.resolution_seconds.median), r.resolution_seconds.median, times(r.resolution_seconds)),
    figure("csat", t("csat"), r.csat.average === null ? t("nobody") : `${r.csat.average.toFixed(1)} / 5`, r.csat.average,
      t("ratings_n", { n: r.csat.count })));
}

// A table of a report's rows with its CSV export. columns: [header, value(row), format?,
// CSV header?]; the CSV has the API's values (rates as fractions, times in seconds).
function reportTable(id, caption, filename, columns, rows, extra) {
  const exportButton = h("button", {
    type: "button", class: "small", "data-testid": `export-${id}`, "aria-label": `${t("export_csv")}: ${caption}`,
    onclick: () => download(filename(id), toCsv(columns.map(([header, , , csvHeader]) => csvHeader || header), rows.map((row) => columns.map(([, value]) => value(row))))),
  }, t("export_csv"));
  return h("section", { class: "report-table", "aria-label": caption },
    h("table", { "data-testid": `table-${id}` },
      h("caption", {}, caption, " ", exportButton, extra ? [" ", extra] : null),
      h("thead", {}, h("tr", {}, columns.map(([header]) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, rows.length ? rows.map((row) => h("tr", {}, columns.map(([, value, format], i) => {
        const v = value(row);
        return h(i === 0 ? "th" : "td", i === 0 ? { scope: "row", class: "wrap" } : { class: typeof v === "number" ? "num" : null },
          format ? format(v) : v === null || v === undefined ? "" : typeof v === "number" ? count(v) : String(v));
      }))) : h("tr", {}, h("td", { colspan: String(columns.length), class: "muted" }, t("no_data"))))));
}
