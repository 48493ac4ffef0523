// The Files tab: processed-file records with a status filter, a key search and pages.

import { api } from "../api.js";
import { bytes, el, replace, when } from "../dom.js";

const STATUSES = ["", "PROCESSED", "FAILED", "SKIPPED", "CLAIMED"];
const PAGE_SIZE = 50;

export async function showFiles(panel, base) {
  const status = el(
    "select",
    { id: "file-status" },
    STATUSES.map((value) => el("option", { value }, value || "any")),
  );
  const search = el("input", { id: "file-search", type: "search", placeholder: "key starts with…", size: 30 });
  const results = el("div", { id: "files-results" });
  const previous = [];
  let current = "";

  async function load(pageToken) {
    const page = await api("GET", `${base}/processed-files`, {
      query: { status: status.value, key_prefix: search.value, page_size: PAGE_SIZE, page_token: pageToken },
    });
    current = pageToken;
    const files = page.processed_files || [];
    const next = page.next_page_token || "";
    const back = el("button", { type: "button", disabled: previous.length === 0 }, "Previous page");
    const forward = el("button", { type: "button", disabled: !next }, "Next page");
    back.addEventListener("click", () => load(previous.pop()));
    forward.addEventListener("click", () => {
      previous.push(current);
      load(next);
    });
    replace(
      results,
      files.length === 0
        ? el("p", { class: "muted" }, "No file records match.")
        : el(
            "table",
            { id: "files" },
            el(
              "thead",
              {},
              el("tr", {}, ["Key", "Status", "Size", "Attempts", "Run", "Modified", "Error"].map((name) => el("th", { scope: "col" }, name))),
            ),
            el(
              "tbody",
              {},
              files.map((file) =>
                el(
                  "tr",
                  { dataset: { key: file.key, status: file.status } },
                  el("td", {}, file.key),
                  el("td", {}, file.status),
                  el("td", { class: "num" }, bytes(file.size)),
                  el("td", { class: "num" }, file.attempts),
                  el("td", {}, file.run_id),
                  el("td", {}, when(file.last_modified)),
                  el("td", { class: "error-text" }, file.error),
                ),
              ),
            ),
          ),
      el("div", { class: "actions" }, back, forward),
    );
  }

  const filters = el(
    "form",
    {
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        previous.length = 0;
        load("");
      },
    },
    el("label", { for: "file-status" }, "Status", status),
    el("label", { for: "file-search" }, "Key", search),
    el("button", { type: "submit" }, "Show"),
  );
  status.addEventListener("change", () => filters.requestSubmit());
  replace(panel, filters, results);
  await load("");
}
