/**
 * A real browser for page tests: Debian's Chromium (/usr/bin/chromium), headless, driven by
 * puppeteer-core (which never downloads a browser). The only importer of puppeteer-core.
 *
 * Every page records what a person would notice: console errors, uncaught exceptions, failed
 * requests and answers of 400 or more. Requests to any origin but the daemon's are recorded and
 * aborted, so nothing leaves the machine whatever the page tries.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export type { Page };

export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go (gitignored): test-artifacts/ at the repository root. */
export const ARTIFACTS_DIR = resolve(import.meta.dirname, '..', '..', '..', 'test-artifacts');

export interface PageLog {
  readonly consoleErrors: string[];
  readonly pageErrors: string[];
  readonly failedRequests: string[];
  readonly badResponses: string[];
  readonly foreignRequests: string[];
  readonly requests: string[];
}

export interface TestBrowser {
  /** A new page that records its problems; requests outside `origin` are aborted and recorded. */
  open(origin: string, viewport?: { width: number; height: number }): Promise<{ page: Page; log: PageLog }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'kasa-chromium-'));
  const browser: Browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    // Without the background-networking switches Chromium reaches out to Google services.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-extensions',
    ],
  });
  return {
    async open(origin, viewport = { width: 1280, height: 900 }) {
      const page = await browser.newPage();
      await page.setViewport(viewport);
      const log: PageLog = {
        consoleErrors: [],
        pageErrors: [],
        failedRequests: [],
        badResponses: [],
        foreignRequests: [],
        requests: [],
      };
      page.on('console', (message) => {
        if (message.type() === 'error') log.consoleErrors.push(message.text());
      });
      page.on('pageerror', (error) => log.pageErrors.push(String(error)));
      page.on('requestfailed', (request) => {
        // Our own aborts of foreign requests are recorded as such, not twice.
        if (new URL(request.url()).origin === origin)
          log.failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`);
      });
      page.on('response', (response) => {
        if (response.status() >= 400) log.badResponses.push(`${response.status()} ${response.url()}`);
      });
      await page.setRequestInterception(true);
      page.on('request', (request) => {
        const url = request.url();
        log.requests.push(url);
        if (url.startsWith('data:') || new URL(url).origin === origin) {
          void request.continue();
        } else {
          log.foreignRequests.push(url);
          void request.abort('blockedbyclient');
        }
      });
      return { page, log };
    },
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot under test-artifacts/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
