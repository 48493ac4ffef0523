// One ingestion: its configuration, its actions, a chart of its runs, and the Runs and Files tabs.
// While a run is queued or running the page polls, so status and counts move as the run does.

import { api } from "../api.js";
import { notify } from "../app.js";
import { runChart } from "../chart.js";
import { ACTIVE, bytes, duration, el, replace, statusBadge, when } from "../dom.js";
import { askToClear } from "./clear.js";
import { showFiles } from "./files.js";

const POLL_MS = 1000;

function configList(ingestion) {
  const source = ingestion.source;
  const destination = ingestion.destination;
  const entries = [
    ["Source", source.uri],
    ["Format", source.format],
    ["Pattern", source.pattern || "every file"],
    ["Reader options", Object.entries(source.options || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"],
    ["Table", destination.table],
    ["Write mode", destination.write_mode || "append"],
    ["Retries per file", ingestion.max_retries],
    ["Schedule", ingestion.schedule && ingestion.schedule.cron ? `${ingestion.schedule.cron} (${ingestion.schedule.timezone || "UTC"})` : "none"],
    ["State", ingestion.enabled ? "active" : "paused"],
    ["Owner", ingestion.owner],
  ];
  return el("dl", { class: "config" }, entries.map(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]));
}

function runRow(run) {
  const progress = ACTIVE.has(run.status)
    ? el("progress", {
        class: "progress",
        max: Math.max(1, Number(run.files_discovered || 0)),
        value: Number(run.files_processed || 0),
        "aria-label": `files loaded of ${run.files_discovered}`,
      })
    : null;
  return el(
    "tr",
    { dataset: { run: run.run_id, status: run.status } },
    el("td", {}, run.run_id),
    el("td", {}, statusBadge(run.status), run.cancel_requested ? el("span", { class: "muted" }, " (cancelling)") : null),
    el("td", {}, run.trigger),
    el("td", {}, when(run.start_time || run.create_time)),
    el("td", { class: "num" }, duration(run)),
    el("td", { class: "num", dataset: { field: "files" } }, `${run.files_processed} / ${run.files_discovered}`, progress),
    el("td", { class: "num" }, run.files_failed),
    el("td", { class: "num" }, run.files_skipped),
    el("td", { class: "num", dataset: { field: "rows" } }, run.rows_written),
    el("td", { class: "num" }, bytes(run.bytes_processed)),
    el("td", { class: "error-text" }, run.error),
  );
}

function runsTable(runs) {
  if (runs.length === 0) return el("p", { class: "muted" }, "No runs yet. Run now loads every file waiting in the source.");
  const headings = ["Run", "Status", "Trigger", "Started", "Duration", "Files", "Failed", "Skipped", "Rows", "Bytes", "Error"];
  return el(
    "table",
    { id: "runs" },
    el("thead", {}, el("tr", {}, headings.map((name) => el("th", { scope: "col" }, name)))),
    el("tbody", {}, runs.map(runRow)),
  );
}

function previewPanel(preview) {
  return el(
    "section",
    { id: "preview", "aria-label": "Preview" },
    el("h2", {}, "Next run"),
    el(
      "p",
      {},
      `Would load ${preview.files_to_process} files (${bytes(preview.bytes_to_process)}); `,
      `${preview.files_pending} waiting in all; ${preview.files_discovered} in the source; `,
      `table ${preview.table_exists ? "exists" : "does not exist yet"}.`,
    ),
    (preview.warnings || []).map((warning) => el("p", { class: "warning" }, warning)),
    preview.files && preview.files.length
      ? el("ul", {}, preview.files.map((file) => el("li", {}, `${file.key} (${bytes(file.size)})`)))
      : null,
  );
}

export async function showIngestion(main, ingestionId, tab) {
  const base = `/ingestions/${encodeURIComponent(ingestionId)}`;
  let ingestion = await api("GET", base);
  let timer = null;
  let left = false;
  const runsPanel = el("div", { id: "panel-runs", role: "tabpanel", "aria-labelledby": "tab-runs" });
  const filesPanel = el("div", { id: "panel-files", role: "tabpanel", "aria-labelledby": "tab-files" });
  const chartHolder = el("div");
  const previewHolder = el("div");
  const configHolder = el("div", {}, configList(ingestion));
  const pauseButton = el("button", { type: "button", id: "pause" });

  async function refreshRuns() {
    const page = await api("GET", `${base}/runs`, { query: { page_size: 50 } });
    const runs = page.runs || [];
    replace(runsPanel, runsTable(runs));
    replace(chartHolder, runChart(runs));
    clearTimeout(timer);
    if (!left && runs.some((run) => ACTIVE.has(run.status))) timer = setTimeout(() => refreshRuns().catch(report), POLL_MS);
    return runs;
  }

  function report(error) {
    notify(error.message, { bad: true });
  }

  function labelPause() {
    pauseButton.textContent = ingestion.enabled ? "Pause" : "Resume";
  }

  async function act(action) {
    try {
      await action();
    } catch (error) {
      report(error);
    }
  }

  const runNow = () =>
    act(async () => {
      const run = await api("POST", `${base}/run`, { body: {} });
      notify(`Run ${run.run_id} queued.`);
      selectTab("runs");
      await refreshRuns();
    });
  const togglePause = () =>
    act(async () => {
      ingestion = await api("PATCH", base, { body: { enabled: !ingestion.enabled } });
      notify(ingestion.enabled ? "Resumed: runs and schedules go ahead." : "Paused: no run starts until resumed.");
      labelPause();
      replace(configHolder, configList(ingestion));
    });
  const preview = () =>
    act(async () => {
      notify("Listing the source…");
      replace(previewHolder, previewPanel(await api("GET", `${base}/preview`)));
      notify("");
    });
  const clear = () =>
    act(async () => {
      const cleared = await askToClear(ingestion);
      if (cleared) {
        notify(cleared.message);
        if (tab === "files") await showFiles(filesPanel, base);
      }
    });

  pauseButton.addEventListener("click", togglePause);
  labelPause();

  const tabs = {
    runs: el("button", { type: "button", role: "tab", id: "tab-runs", "aria-controls": "panel-runs" }, "Runs"),
    files: el("button", { type: "button", role: "tab", id: "tab-files", "aria-controls": "panel-files" }, "Files"),
  };

  function selectTab(name) {
    tab = name;
    for (const [key, button] of Object.entries(tabs)) {
      button.setAttribute("aria-selected", String(key === name));
      button.tabIndex = key === name ? 0 : -1;
    }
    runsPanel.hidden = name !== "runs";
    filesPanel.hidden = name !== "files";
    const hash = `#/ingestions/${encodeURIComponent(ingestionId)}${name === "files" ? "/files" : ""}`;
    history.replaceState(null, "", hash);
    if (name === "files") showFiles(filesPanel, base).catch(report);
  }
  tabs.runs.addEventListener("click", () => selectTab("runs"));
  tabs.files.addEventListener("click", () => selectTab("files"));
  const tabList = el("div", { role: "tablist", "aria-label": "Runs and files" }, tabs.runs, tabs.files);
  tabList.addEventListener("keydown", (event) => {
    // Arrow keys move between tabs, as in any tab list.
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const next = tab === "runs" ? "files" : "runs";
    selectTab(next);
    tabs[next].focus();
  });

  replace(
    main,
    el("h1", {}, `${ingestion.name} `, el("span", { class: "muted" }, ingestion.ingestion_id)),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "primary", id: "run-now", onclick: runNow }, "Run now"),
      pauseButton,
      el("button", { type: "button", id: "preview-button", onclick: preview }, "Preview"),
      el("button", { type: "button", class: "danger", id: "clear-files", onclick: clear }, "Clear processed files"),
      el("a", { class: "button", href: `#/ingestions/${encodeURIComponent(ingestionId)}/edit` }, "Edit"),
    ),
    previewHolder,
    el("details", {}, el("summary", {}, "Configuration"), configHolder),
    el("h2", {}, "Rows and files per run"),
    chartHolder,
    tabList,
    runsPanel,
    filesPanel,
  );
  await refreshRuns();
  selectTab(tab);
  return () => {
    left = true;
    clearTimeout(timer);
  };
}
