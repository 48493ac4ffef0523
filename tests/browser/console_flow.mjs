// Drives the web console in headless Chromium (Debian's, through playwright-core) as a user would:
// sign in, try an invalid ingestion, create a valid one, run it, watch the run reach SUCCESS, look at the
// files, clear them through the confirmation. Prints one JSON line with what it saw; screenshots go to
// $ARTIFACTS. Started by tests/integration/test_console_browser.py, which checks the JSON and the API.

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const { BASE_URL, TOKEN, SOURCE_URI, INGESTION_ID, TABLE, ARTIFACTS, CHROMIUM } = process.env;
// Chromium's own background traffic fails on a closed network and slows every start: turn it off.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

mkdirSync(ARTIFACTS, { recursive: true });
const seen = { pageErrors: [], consoleErrors: [] };
const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(30_000);
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") seen.consoleErrors.push(message.text());
  });
  const shot = (name) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
  const field = (label) => page.getByLabel(label, { exact: true });

  // Sign in with the token; the header then names its principal.
  await page.goto(`${BASE_URL}/ui/`);
  await field("API token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Ingestions" }).waitFor();
  seen.caller = await page.locator("#caller").textContent();
  await shot("1-ingestions");

  // An invalid source first: the API's own violation appears next to the field, nothing is created.
  await page.getByRole("link", { name: "New ingestion" }).first().click();
  await field("Ingestion id").fill(INGESTION_ID);
  await field("Name").fill("Users from the console");
  await field("Source").fill("ftp://example.com/users/");
  await field("Reader options").fill("header=true");
  await field("Table").fill(TABLE);
  await page.getByRole("button", { name: "Create" }).click();
  const violation = page.locator('[id="error-source.uri"]');
  await violation.waitFor();
  seen.violation = await violation.textContent();
  await shot("2-validation");

  // Fixed, it is created and its page opens.
  await field("Source").fill(SOURCE_URI);
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: new RegExp(INGESTION_ID) }).waitFor();
  seen.created = await page.locator("#notice").textContent();

  // Run now, then watch the Runs tab until the run ends.
  await page.getByRole("button", { name: "Run now" }).click();
  const ended = page.locator('#runs tbody tr:is([data-status="SUCCESS"], [data-status="FAILED"], [data-status="PARTIAL_SUCCESS"])');
  await ended.first().waitFor({ timeout: 180_000 });
  seen.runStatus = await ended.first().getAttribute("data-status");
  seen.runRows = (await ended.first().locator('td[data-field="rows"]').textContent()).trim();
  seen.runFiles = (await ended.first().locator('td[data-field="files"]').textContent()).trim();
  seen.chartBars = await page.locator("#run-chart rect").count();
  await shot("3-runs");

  // Preview: nothing new is waiting after the run.
  await page.getByRole("button", { name: "Preview" }).click();
  await page.locator("#preview").waitFor();
  seen.preview = (await page.locator("#preview p").first().textContent()).trim();

  // Pause: Run now is then refused with the API's reason; Resume undoes it.
  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByRole("button", { name: "Resume" }).waitFor();
  await page.getByRole("button", { name: "Run now" }).click();
  await page.locator("#notice.bad").waitFor();
  seen.pausedRun = await page.locator("#notice").textContent();
  await page.getByRole("button", { name: "Resume" }).click();
  await page.getByRole("button", { name: "Pause" }).waitFor();

  // Edit: the change is saved and shown.
  await page.getByRole("link", { name: "Edit" }).click();
  await field("Name").fill("Users, renamed");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: /Users, renamed/ }).waitFor();
  seen.saved = await page.locator("#notice").textContent();

  // The Files tab lists the files the run loaded.
  await page.getByRole("tab", { name: "Files" }).click();
  await page.locator("#files tbody tr").first().waitFor();
  seen.files = await page.locator("#files tbody tr").evaluateAll((rows) =>
    rows.map((row) => ({ key: row.dataset.key, status: row.dataset.status })),
  );
  await field("Key").fill("part-1");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length === 1);
  seen.searched = await page.locator("#files tbody tr").getAttribute("data-key");
  await shot("4-files");

  // Clear processed files: the confirmation says what would be loaded again and warns of duplicates.
  await page.getByRole("button", { name: "Clear processed files" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  seen.confirmation = await page.locator("#clear-counts").textContent();
  seen.warning = await page.locator("#clear-warning").textContent();
  await shot("5-confirm-clear");
  await page.getByRole("button", { name: "Clear them" }).click();
  await page.locator("#notice", { hasText: "Cleared" }).waitFor();
  seen.cleared = await page.locator("#notice").textContent();
  await field("Key").fill("");
  await page.getByRole("button", { name: "Show" }).click();
  await page.getByText("No file records match.").waitFor();
  seen.filesAfterClear = await page.locator("#files tbody tr").count();
  await shot("6-cleared");

  // Keyboard: the tabs answer the arrow keys.
  await page.getByRole("tab", { name: "Files" }).focus();
  await page.keyboard.press("ArrowLeft");
  seen.selectedAfterArrow = await page.locator('[role="tab"][aria-selected="true"]').textContent();
} catch (error) {
  seen.failure = String(error);
  const page = browser.contexts()[0]?.pages()[0];
  if (page) {
    seen.pageText = (await page.locator("body").innerText()).slice(0, 2000);
    await page.screenshot({ path: `${ARTIFACTS}/failure.png`, fullPage: true });
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(seen.failure ? 1 : 0);
