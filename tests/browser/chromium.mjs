// Debian's Chromium driven by playwright-core, as every browser test here starts it: headless,
// with a fresh profile directory (playwright passes it as --user-data-dir), no background
// traffic. Nothing is downloaded.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Launches Chromium; returns the context and its profile directory (remove it when done). */
export async function launchChromium(prefix, options = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    ...options,
  });
  return { browser, userDataDir };
}
