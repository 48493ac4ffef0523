// Rows and files per run over time, as an SVG bar chart (oldest run on the left). No library: two bar
// series scaled to their own maximum, labelled for screen readers by a summary.

import { el } from "./dom.js";

const WIDTH = 720;
const HEIGHT = 160;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

export function runChart(runs) {
  const ended = runs.filter((run) => run.end_time).slice().reverse();
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = el(
    "figcaption",
    { class: "legend" },
    el("span", {}, el("span", { class: "swatch rows-swatch" }), "rows written"),
    el("span", {}, el("span", { class: "swatch files-swatch" }), "files loaded"),
    "per ended run, oldest first",
  );
  if (ended.length === 0) {
    const empty = document.createElement("p");
    empty.className = "muted";
    empty.textContent = "The chart fills in as runs end.";
    figure.append(empty);
    return figure;
  }
  const maxRows = Math.max(1, ...ended.map((run) => Number(run.rows_written || 0)));
  const maxFiles = Math.max(1, ...ended.map((run) => Number(run.files_processed || 0)));
  const slot = WIDTH / ended.length;
  const bar = Math.max(1, Math.min(24, slot / 2 - 2));
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT + 20}`, role: "img", id: "run-chart" });
  const total = ended.reduce((sum, run) => sum + Number(run.rows_written || 0), 0);
  const title = svg("title", {});
  title.textContent = `${ended.length} ended runs, ${total} rows in all; the largest run wrote ${maxRows} rows`;
  chart.append(title);
  ended.forEach((run, index) => {
    const x = index * slot + slot / 2;
    const rows = (Number(run.rows_written || 0) / maxRows) * HEIGHT;
    const files = (Number(run.files_processed || 0) / maxFiles) * HEIGHT;
    const rowsBar = svg("rect", { class: "rows", x: x - bar - 1, y: HEIGHT - rows, width: bar, height: rows });
    const filesBar = svg("rect", { class: "files", x: x + 1, y: HEIGHT - files, width: bar, height: files });
    const tip = svg("title", {});
    tip.textContent = `${run.run_id}: ${run.rows_written} rows, ${run.files_processed} files (${run.status})`;
    rowsBar.append(tip);
    filesBar.append(tip.cloneNode(true));
    chart.append(rowsBar, filesBar);
  });
  chart.append(svg("line", { x1: 0, y1: HEIGHT, x2: WIDTH, y2: HEIGHT, stroke: "#d8dde5" }));
  figure.append(chart, caption);
  return figure;
}
