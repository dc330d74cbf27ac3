/**
 * The web view in a real browser: Debian's Chromium driven headless by playwright-core, against a
 * history collected from the simulator. Each page loads with no console error (a CSP violation is
 * one) and no failed request; the ladder chart has one step per leverage; changing the date in the
 * form changes the chart; the filters change the rows; the hostile symbol stays text; Tab reaches
 * every control. Screenshots of the overview and a symbol page are taken; with
 * UPDATE_SCREENSHOTS=1 they replace docs/img/*.png (the ones the docs show).
 *
 * Without /usr/bin/chromium the test is skipped, except under CI=true, where it fails: .ci/run
 * installs Chromium, so a missing one there is a broken install, not a reason to pass.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runCliCaptured } from './helpers/harness.ts';
import { HOSTILE, serveHistory, webHistory, type WebHistory } from './helpers/web-history.ts';
import type { WebServer } from '../src/web/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env.CI === 'true') {
  throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`);
}

const DOCS_IMG = join(import.meta.dirname, '..', 'docs', 'img');

describe('web view in Chromium', { skip: available ? false : `${CHROMIUM} is not installed` }, () => {
  let history: WebHistory;
  let server: WebServer;
  let browser: Browser;
  let shots: string;

  before(async () => {
    history = await webHistory();
    server = await serveHistory(history.h.dbPath);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    shots = process.env.UPDATE_SCREENSHOTS === '1' ? DOCS_IMG : mkdtempSync(join(tmpdir(), 'tierwatch-shots-'));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await history?.close();
    if (shots !== undefined && shots !== DOCS_IMG) rmSync(shots, { recursive: true, force: true });
  });

  /** A page that records console errors, failed requests, error statuses and dialogs (alert()). */
  async function open(path: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('requestfailed', (request) =>
      problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
    );
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.goto(new URL(path, server.url).href, { waitUntil: 'load' });
    return { page, problems };
  }

  /** The initial-margin steps of one chart's series (one line each, drawn by Plot): leverage and geometry. */
  async function steps(page: Page, role: 'at' | 'compare'): Promise<Array<{ leverage: string; d: string }>> {
    return page.locator(`svg.ladder >> nth=0 >> .series-${role} line.step.initial`).evaluateAll((lines) =>
      lines.map((line) => ({
        leverage: line.getAttribute('data-leverage') ?? '',
        d: ['x1', 'x2', 'y1', 'y2'].map((name) => line.getAttribute(name) ?? '').join(' '),
      })),
    );
  }

  async function cliTierCount(at: string): Promise<number> {
    const result = await runCliCaptured(
      ['snapshot', '--at', at, '--symbol', 'META-USD', '--account', 'primary', '--format', 'json'],
      {
        env: { TIERWATCH_DB: history.h.dbPath, LOG_LEVEL: 'silent' },
      },
    );
    return (JSON.parse(result.stdout) as unknown[]).length;
  }

  it('every page loads with no console error and no failed request', async () => {
    const first = `run:${history.rounds[0]![0]}`;
    for (const path of [
      '/',
      '/changes',
      '/changes?include-baseline&page=2',
      `/diff?from=${first}`,
      '/runs',
      '/symbol/META-USD',
      `/symbol/META-USD?compare=${first}`,
      `/symbol/${encodeURIComponent(HOSTILE)}`,
    ]) {
      const { page, problems } = await open(path);
      assert.ok((await page.locator('h1').count()) === 1, path);
      assert.deepEqual(problems, [], path);
      await page.close();
    }
  });

  it('draws one step per leverage, and another date draws another ladder', async () => {
    const late = `run:${history.rounds[2]![0]}`; // after META-USD 1x was removed
    const early = `run:${history.rounds[0]![0]}`;
    const { page, problems } = await open(`/symbol/META-USD?at=${late}&account=primary`);
    const lateSteps = await steps(page, 'at');
    assert.equal(lateSteps.length, await cliTierCount(late));
    assert.equal(new Set(lateSteps.map((step) => step.leverage)).size, lateSteps.length, 'one step per leverage');
    // Change the date in the form, as a user would, and submit it with the keyboard.
    await page.getByLabel('At', { exact: true }).fill(early);
    await Promise.all([page.waitForURL(/at=run%3A/), page.getByLabel('At', { exact: true }).press('Enter')]);
    const earlySteps = await steps(page, 'at');
    assert.equal(earlySteps.length, await cliTierCount(early));
    assert.notDeepEqual(earlySteps, lateSteps);
    // The overlay: a second date draws a second series.
    await page.getByLabel('Compare with').fill(late);
    await Promise.all([page.waitForURL(/compare=/), page.getByLabel('Compare with').press('Enter')]);
    const compared = await steps(page, 'compare');
    assert.deepEqual(
      compared.map((step) => step.leverage),
      lateSteps.map((step) => step.leverage),
    );
    assert.notDeepEqual(
      compared.map((step) => step.d),
      (await steps(page, 'at')).map((step) => step.d),
    );
    await page.screenshot({ path: join(shots, 'symbol.png') });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('the filters change the rows', async () => {
    const { page, problems } = await open('/changes');
    const all = await page.locator('main table tbody tr').count();
    await page.getByLabel('tightening').check();
    await Promise.all([page.waitForURL(/only=tightening/), page.getByRole('button', { name: 'Apply' }).click()]);
    const directions = await page.locator('main table tbody td.dir').allTextContents();
    assert.ok(directions.length > 0 && directions.length < all, `${directions.length} of ${all}`);
    assert.ok(
      directions.every((text) => text.includes('tightening')),
      directions.join(),
    );
    await page.getByLabel('Symbol', { exact: true }).fill('AAPL-USD');
    await page.getByLabel('tightening').uncheck();
    await Promise.all([page.waitForURL(/symbol=AAPL-USD/), page.getByRole('button', { name: 'Apply' }).click()]);
    const symbols = await page.locator('main table tbody tr td:nth-child(3)').allTextContents();
    assert.deepEqual([...new Set(symbols)], ['AAPL-USD']);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('the hostile symbol stays text', async () => {
    const { page, problems } = await open(`/symbol/${encodeURIComponent(HOSTILE)}`);
    assert.equal(await page.locator('h1').textContent(), HOSTILE);
    assert.equal(await page.locator('img').count(), 0);
    assert.ok((await page.locator('svg.ladder title').first().textContent())?.includes(HOSTILE));
    const changes = await open('/changes?include-baseline');
    assert.equal(await changes.page.locator('img').count(), 0);
    assert.ok((await changes.page.locator('main table').textContent())?.includes(HOSTILE));
    assert.deepEqual([...problems, ...changes.problems], []);
    await page.close();
    await changes.page.close();
  });

  it('Tab reaches every control', async () => {
    for (const path of ['/changes?symbol=META-USD', '/symbol/META-USD', '/diff', '/runs?last=3', '/']) {
      const { page } = await open(path);
      // Every visible control (links inside a closed <details> are not shown, so not reachable either).
      const controls = await page.locator('a[href], input, button, summary').evaluateAll((elements) =>
        elements
          .filter((element) => element.checkVisibility())
          .map((element, index) => {
            element.setAttribute('data-control', String(index));
            return index;
          }),
      );
      const reached = new Set<string>();
      for (let press = 0; press < controls.length + 3; press++) {
        await page.keyboard.press('Tab');
        // A string expression: the project is typed without the DOM library.
        const id = await page.evaluate("document.activeElement?.getAttribute('data-control') ?? null");
        if (typeof id === 'string') reached.add(id);
      }
      const missed = controls.filter((index) => !reached.has(String(index)));
      const described = await page
        .locator('[data-control]')
        .evaluateAll(
          (elements, indexes) =>
            elements.filter((_, index) => indexes.includes(index)).map((element) => element.outerHTML.slice(0, 120)),
          missed,
        );
      assert.deepEqual(described, [], `${path}: controls not reached by Tab`);
      await page.close();
    }
  });

  it('takes the overview screenshot, a small PNG', async () => {
    const { page, problems } = await open('/');
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
    for (const name of ['overview.png', 'symbol.png']) {
      const png = readFileSync(join(shots, name));
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
      assert.ok(png.length < 400_000, `${name} is ${png.length} bytes`);
    }
    assert.deepEqual(problems, []);
    await page.close();
  });
});
