// Clearing processed files, behind a confirmation that says what the next run would load again.
// The numbers come from a dry run of the same call; the table is never touched, hence the warning.

import { api } from "../api.js";
import { bytes, el } from "../dom.js";

export async function askToClear(ingestion) {
  const base = `/ingestions/${encodeURIComponent(ingestion.ingestion_id)}/processed-files`;
  const counted = await api("DELETE", base, { query: { dry_run: true } });
  const again =
    counted.files_to_reprocess === undefined
      ? `No executor listed the source just now, so it is unknown how many of them are still there.`
      : `${counted.files_to_reprocess} of them (${bytes(counted.bytes_to_reprocess)}) are still in the source: the next run loads them again.`;
  const confirm = el("button", { type: "submit", class: "danger", value: "clear", id: "confirm-clear" }, "Clear them");
  const dialog = el(
    "dialog",
    { id: "clear-dialog", "aria-labelledby": "clear-title" },
    el(
      "form",
      { method: "dialog" },
      el("h2", { id: "clear-title" }, `Clear the processed files of ${ingestion.ingestion_id}?`),
      el("p", { id: "clear-counts" }, `This forgets ${counted.files_cleared} file records (${bytes(counted.bytes_cleared)}). ${again}`),
      el(
        "p",
        { class: "warning", id: "clear-warning" },
        `The table ${ingestion.destination.table} is kept: rows already loaded from these files will be there twice. `,
        "Drop the table first for a clean reload.",
      ),
      el("div", { class: "actions" }, el("button", { type: "submit", value: "cancel", autofocus: true }, "Cancel"), confirm),
    ),
  );
  document.body.append(dialog);
  dialog.showModal();
  const choice = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  dialog.remove();
  if (choice !== "clear") return null;
  return api("DELETE", base);
}
