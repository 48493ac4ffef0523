// Building the page: elements from data without ever parsing data as HTML, and values shown for people.

// el("a", {href: "#/x", onclick: fn}, "text", child) — strings become text nodes, never markup.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined));
}

export function bytes(value) {
  const number = Number(value || 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = number;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${number} B` : `${size.toFixed(1)} ${units[unit]}`;
}

export function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

export function duration(run) {
  if (!run.start_time) return "";
  const end = run.end_time ? new Date(run.end_time) : new Date();
  const seconds = Math.max(0, (end - new Date(run.start_time)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function statusBadge(status) {
  return el("span", { class: `status status-${status}` }, status || "never run");
}

export const ACTIVE = new Set(["QUEUED", "RUNNING"]);
