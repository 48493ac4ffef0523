// The console's entry: sign-in, the header, and a router over location.hash.
//   #/                     ingestions
//   #/new                  create an ingestion
//   #/ingestions/ID        an ingestion (runs tab); #/ingestions/ID/files the files tab
//   #/ingestions/ID/edit   change it

import { ApiError, api, signIn, signOut, token } from "./api.js";
import { el, replace } from "./dom.js";
import { showEditor } from "./views/editor.js";
import { showIngestion } from "./views/ingestion.js";
import { showIngestions } from "./views/ingestions.js";

const main = document.getElementById("main");
let leaveView = () => {};
let carriedNotice = "";

// Go to another view and show a message there (a plain notify would be cleared by the navigation).
export function navigate(hash, message) {
  carriedNotice = message;
  window.location.hash = hash;
}

export function notify(message, { bad = false } = {}) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.className = bad ? "notice bad" : "notice";
  notice.hidden = !message;
}

function showSignIn(reason) {
  replace(document.getElementById("who"));
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true, size: 50 });
  const form = el(
    "form",
    {
      class: "editor",
      onsubmit: async (event) => {
        event.preventDefault();
        signIn(input.value);
        await route();
      },
    },
    el("label", { for: "token" }, "API token"),
    input,
    el("p", { class: "hint wide" }, "Kept in this browser tab only, until it closes or you sign out."),
    el("div", { class: "buttons" }, el("button", { class: "primary", type: "submit" }, "Sign in")),
  );
  replace(main, el("h1", {}, "Sign in"), reason ? el("p", { class: "error-text" }, reason) : null, form);
  input.focus();
}

async function showCaller() {
  const caller = await api("GET", "/whoami");
  const role = (caller.role || "").replace("ROLE_", "").toLowerCase();
  replace(
    document.getElementById("who"),
    el("span", { id: "caller" }, `${caller.name} (${role})`),
    el("button", { type: "button", onclick: () => { signOut(); route(); } }, "Sign out"),
  );
}

async function route() {
  leaveView();
  leaveView = () => {};
  notify(carriedNotice);
  carriedNotice = "";
  if (!token()) {
    showSignIn("");
    return;
  }
  try {
    await showCaller();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      showSignIn(`That token was refused: ${error.message}`);
      return;
    }
    throw error;
  }
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "new") {
      await showEditor(main, null);
    } else if (parts[0] === "ingestions" && parts[1] && parts[2] === "edit") {
      await showEditor(main, parts[1]);
    } else if (parts[0] === "ingestions" && parts[1]) {
      leaveView = await showIngestion(main, parts[1], parts[2] === "files" ? "files" : "runs");
    } else {
      await showIngestions(main);
    }
  } catch (error) {
    replace(main, el("h1", {}, "Something went wrong"), el("p", { class: "error-text" }, error.message));
  }
  main.focus();
}

window.addEventListener("hashchange", route);
route();
