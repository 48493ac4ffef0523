// Create or change an ingestion. The form sends what the API takes and shows the API's own field
// violations next to the fields they name, so the console never disagrees with the API about what is valid.

import { ApiError, api } from "../api.js";
import { navigate } from "../app.js";
import { el, replace } from "../dom.js";

const FORMATS = ["csv", "json", "parquet", "avro", "orc", "text"];

// [field path in the API, label, kind, hint]
const FIELDS = [
  ["ingestion_id", "Ingestion id", "text", "Letters, digits, '-' and '_'; empty makes one up. Cannot change later."],
  ["name", "Name", "text", ""],
  ["source.uri", "Source", "text", "s3://bucket/prefix/ or file:///absolute/dir/"],
  ["source.format", "Format", "select", ""],
  ["source.pattern", "Pattern", "text", 'Optional glob relative to the source, e.g. "*.csv"'],
  ["source.options", "Reader options", "lines", "One name=value per line, e.g. header=true"],
  ["source.endpoint_url", "S3 endpoint", "text", "For S3-compatible stores, e.g. http://minio:9000"],
  ["source.region", "S3 region", "text", ""],
  ["source.credentials_ref", "S3 credentials", "text", "env:NAME, file:/path or profile:NAME; empty: the default chain"],
  ["destination.table", "Table", "text", "db.table or catalog.db.table"],
  ["destination.write_mode", "Write mode", "mode", ""],
  ["destination.merge_keys", "Merge keys", "list", "Comma-separated key columns (merge mode)"],
  ["max_retries", "Retries per file", "number", ""],
  ["schedule.cron", "Schedule (cron)", "text", 'Optional, e.g. "*/15 * * * *"'],
  ["schedule.timezone", "Time zone", "text", "IANA name, e.g. Europe/Berlin; default UTC"],
  ["enabled", "Active", "checkbox", "Paused ingestions do not run, by hand or by schedule"],
];

function read(object, path) {
  return path.split(".").reduce((value, key) => (value === undefined || value === null ? undefined : value[key]), object);
}

function write(object, path, value) {
  const keys = path.split(".");
  let target = object;
  for (const key of keys.slice(0, -1)) target = target[key] = target[key] || {};
  target[keys[keys.length - 1]] = value;
}

function inputFor([path, label, kind], value) {
  const id = `field-${path.replace(/\./g, "-")}`;
  const common = { id, name: path, dataset: { field: path } };
  if (kind === "select" || kind === "mode") {
    const choices = kind === "select" ? FORMATS : ["append", "merge"];
    return el("select", common, choices.map((choice) => el("option", { value: choice, selected: choice === value }, choice)));
  }
  if (kind === "lines") {
    const text = Object.entries(value || {}).map(([k, v]) => `${k}=${v}`).join("\n");
    return el("textarea", common, text);
  }
  if (kind === "checkbox") return el("input", { ...common, type: "checkbox", checked: value !== false });
  if (kind === "list") return el("input", { ...common, type: "text", value: (value || []).join(", ") });
  if (kind === "number") return el("input", { ...common, type: "number", min: 0, value: value ?? "" });
  return el("input", { ...common, type: "text", value: value ?? "" });
}

function valueOf([path, , kind], input) {
  if (kind === "checkbox") return input.checked;
  if (kind === "number") return input.value === "" ? undefined : Number(input.value);
  if (kind === "list") return input.value.split(",").map((item) => item.trim()).filter(Boolean);
  if (kind === "lines") {
    const options = {};
    for (const line of input.value.split("\n").map((item) => item.trim()).filter(Boolean)) {
      const at = line.indexOf("=");
      if (at > 0) options[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      else options[line] = "";
    }
    return options;
  }
  return input.value.trim();
}

function deepMerge(target, extra) {
  for (const [key, value] of Object.entries(extra)) {
    if (value && typeof value === "object" && !Array.isArray(value) && target[key] && typeof target[key] === "object") {
      deepMerge(target[key], value);
    } else {
      target[key] = value;
    }
  }
  return target;
}

// Settings the form has no field for (schema, metadata columns, webhook, run limits...), as JSON.
function otherSettings(ingestion) {
  if (!ingestion) return "";
  const known = new Set(["ingestion_id", "name", "source", "destination", "max_retries", "schedule", "enabled", "owner", "create_time", "update_time", "next_fire_time"]);
  const rest = Object.fromEntries(Object.entries(ingestion).filter(([key]) => !known.has(key)));
  return JSON.stringify(rest, null, 2);
}

export async function showEditor(main, ingestionId) {
  const current = ingestionId ? await api("GET", `/ingestions/${encodeURIComponent(ingestionId)}`) : null;
  const fields = current ? FIELDS.filter(([path]) => path !== "ingestion_id") : FIELDS;
  const inputs = new Map();
  const errors = el("div", { id: "form-errors", role: "alert", tabindex: -1 });
  const extra = el("textarea", { id: "field-extra", name: "extra", dataset: { field: "extra" } }, otherSettings(current));
  const rows = fields.map((field) => {
    const [path, label, , hint] = field;
    const input = inputFor(field, current ? read(current, path) : path === "source.format" ? "csv" : undefined);
    inputs.set(path, input);
    return [
      el("label", { for: input.id }, label),
      el("div", {}, input, hint ? el("div", { class: "hint" }, hint) : null),
      el("div", { class: "field-error", id: `error-${path}`, hidden: true }),
    ];
  });

  function showViolations(error) {
    for (const node of main.querySelectorAll(".field-error")) node.hidden = true;
    const unplaced = [];
    for (const violation of error.violations) {
      const slot = main.querySelector(`[id="error-${violation.field}"]`) || main.querySelector(`[id="error-${violation.field.split(".").slice(0, 2).join(".")}"]`);
      if (slot) {
        slot.textContent = `${violation.field}: ${violation.description}`;
        slot.hidden = false;
      } else {
        unplaced.push(`${violation.field}: ${violation.description}`);
      }
    }
    replace(errors, el("p", { class: "error-text" }, error.message), unplaced.length ? el("ul", {}, unplaced.map((text) => el("li", { class: "error-text" }, text))) : null);
    const first = main.querySelector(".field-error:not([hidden])");
    (first ? first.previousElementSibling.querySelector("input, select, textarea") : errors).focus?.();
  }

  async function submit(event) {
    event.preventDefault();
    const body = {};
    for (const field of fields) {
      const value = valueOf(field, inputs.get(field[0]));
      if (value === undefined || (value === "" && !current)) continue;
      write(body, field[0], value);
    }
    // A schedule exists only with a cron expression: an emptied one removes the schedule.
    if (!body.schedule || !body.schedule.cron) {
      delete body.schedule;
      if (current && current.schedule && current.schedule.cron) body.schedule = null;
    } else if (!body.schedule.timezone) {
      delete body.schedule.timezone;
    }
    try {
      if (extra.value.trim()) deepMerge(body, JSON.parse(extra.value));
    } catch (error) {
      replace(errors, el("p", { class: "error-text" }, `Other settings: not valid JSON (${error.message})`));
      return;
    }
    try {
      const saved = current
        ? await api("PATCH", `/ingestions/${encodeURIComponent(current.ingestion_id)}`, { body })
        : await api("POST", "/ingestions", { body });
      navigate(`#/ingestions/${encodeURIComponent(saved.ingestion_id)}`, current ? "Saved." : `Created ${saved.ingestion_id}.`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showViolations(error);
    }
  }

  replace(
    main,
    el("h1", {}, current ? `Edit ${current.ingestion_id}` : "New ingestion"),
    errors,
    el(
      "form",
      { class: "editor", id: "ingestion-form", onsubmit: submit, novalidate: true },
      rows,
      el("label", { for: "field-extra" }, "Other settings (JSON)"),
      el("div", {}, extra, el("div", { class: "hint" }, "schema, metadata_columns, webhook, max_files_per_run, max_bytes_per_run…")),
      el("div", { class: "field-error", id: "error-extra", hidden: true }),
      el(
        "div",
        { class: "buttons" },
        el("button", { type: "submit", class: "primary", id: "save" }, current ? "Save" : "Create"),
        el("a", { class: "button", href: current ? `#/ingestions/${encodeURIComponent(current.ingestion_id)}` : "#/" }, "Cancel"),
      ),
    ),
  );
  inputs.get(current ? "name" : "ingestion_id").focus();
}
