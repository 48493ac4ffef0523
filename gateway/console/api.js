// Calls to /api/v1 with the signed-in token. The token lives in sessionStorage: it is gone when the tab closes.

const TOKEN_KEY = "autoloader.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// An API error: the HTTP status, the google.rpc.Status fields and the field violations, as the API sent them.
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body ? body.code : undefined;
    this.violations = [];
    for (const detail of (body && body.details) || []) {
      for (const violation of detail.field_violations || []) {
        this.violations.push({ field: violation.field, description: violation.description });
      }
    }
  }
}

export async function api(method, path, { query = {}, body } = {}) {
  const url = new URL(`/api/v1${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, String(item));
    }
  }
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : {};
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

// Every item of a paginated list, following next_page_token (up to `limit` items).
export async function listAll(path, field, { query = {}, limit = 1000 } = {}) {
  const items = [];
  let pageToken = "";
  do {
    const page = await api("GET", path, { query: { ...query, page_size: 100, page_token: pageToken } });
    items.push(...(page[field] || []));
    pageToken = page.next_page_token || "";
  } while (pageToken && items.length < limit);
  return items;
}
