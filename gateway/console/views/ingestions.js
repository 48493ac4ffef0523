// The ingestions the token can see, each with its last run.

import { api, listAll } from "../api.js";
import { el, replace, statusBadge, when } from "../dom.js";

async function lastRun(ingestionId) {
  const page = await api("GET", `/ingestions/${encodeURIComponent(ingestionId)}/runs`, { query: { page_size: 1 } });
  return (page.runs || [])[0] || null;
}

export async function showIngestions(main) {
  const ingestions = await listAll("/ingestions", "ingestions");
  const runs = await Promise.all(ingestions.map((ingestion) => lastRun(ingestion.ingestion_id)));
  const rows = ingestions.map((ingestion, index) => {
    const run = runs[index];
    const link = `#/ingestions/${encodeURIComponent(ingestion.ingestion_id)}`;
    return el(
      "tr",
      { dataset: { ingestion: ingestion.ingestion_id } },
      el("td", {}, el("a", { href: link }, ingestion.ingestion_id)),
      el("td", {}, ingestion.name),
      el("td", {}, ingestion.destination.table),
      el("td", {}, ingestion.enabled ? "active" : "paused"),
      el("td", {}, statusBadge(run ? run.status : "")),
      el("td", {}, run ? when(run.end_time || run.start_time || run.create_time) : ""),
    );
  });
  replace(
    main,
    el("h1", {}, "Ingestions"),
    el("p", {}, el("a", { class: "button", href: "#/new" }, "New ingestion")),
    ingestions.length === 0
      ? el("p", { class: "muted" }, "No ingestions you can see yet.")
      : el(
          "table",
          {},
          el("caption", { class: "muted" }, `${ingestions.length} ingestions`),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ...["Ingestion", "Name", "Table", "State", "Last run", "Last run time"].map((name) =>
                el("th", { scope: "col" }, name),
              ),
            ),
          ),
          el("tbody", {}, rows),
        ),
  );
}
