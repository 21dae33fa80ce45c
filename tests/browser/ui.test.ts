// The page in a real browser (Debian's chromium, driven by playwright-core; nothing is downloaded), clicked
// through as a person would. CKVC_UPDATE_SCREENSHOTS=1 also writes examples/ui/*.png (the README's pictures).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/ckvc.js';
import { cleanupTemp, tempDir } from '../helpers/temp-dirs.js';
import { HOSTILE_MESSAGE, makeUiStore, startUi, stopUiServers, type UiStore } from '../helpers/ui-store.js';

const CHROMIUM = process.env.CKVC_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = path.join(REPO_ROOT, 'examples', 'ui');

let S: UiStore;
let url: string;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];

/** Opens a view and waits until its script has rendered it (body[data-ready]). */
async function open(p: string): Promise<void> {
  await page.goto(new URL(p, url).href);
  await page.waitForSelector('body[data-ready]');
  expect(await page.getAttribute('body', 'data-ready')).toBe('1');
}

async function screenshot(name: string): Promise<void> {
  if (process.env.CKVC_UPDATE_SCREENSHOTS !== '1') return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

describe('the page in Chromium', () => {
  beforeAll(async () => {
    // A missing browser is a failure, not a skip: .ci/run installs it (apt-get install chromium).
    if (!fs.existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
    S = await makeUiStore();
    url = await startUi(S.store);
    const profile = tempDir('ckvc-chromium-');
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1200, height: 760 },
      deviceScaleFactor: 1,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  afterAll(async () => {
    await context?.close();
    stopUiServers();
    cleanupTemp();
  });

  it('the overview lists every branch with its tip, and the history graph links each commit', async () => {
    await open('/');
    const names = await page.$$eval('#branches tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
    expect(names).toEqual(['hostile', 'lowlr', 'main (HEAD)']);
    // Each commit of the store is one linked row of the graph.
    const linked = await page.$$eval('#graph .graph-row[data-id] > a.id', (as) =>
      as.map((a) => a.getAttribute('href')),
    );
    expect(linked).toHaveLength(11);
    expect(await page.textContent('#graph')).toContain('warm start from');
    expect(await page.textContent('#stats')).toContain('commits11');
    // The best tip value of each metric is marked: hostile's toString (the only one), main's loss (lowest) and
    // acc (highest). A tip without toString shows nothing there, not Object's method of that name.
    const marked = await page.$$eval('#branches .best', (cells) =>
      cells.map((c) => c.closest('tr')!.firstChild!.textContent),
    );
    expect(marked).toEqual(['hostile', 'main (HEAD)', 'main (HEAD)']);
    expect(await page.textContent('#branches')).not.toMatch(/native code/);
    await screenshot('overview');
  });

  it('choosing a metric draws one series per branch with the right number of points', async () => {
    await open('/');
    await page.uncheck('#metric-picker input[value="acc"]');
    await page.check('#metric-picker input[value="loss"]');
    await page.click('#metric-picker button');
    await page.waitForSelector('body[data-ready]');
    expect(new URL(page.url()).search).toBe('?key=loss');
    const drawn = await page.evaluate(() => {
      const c = (window as any).ckvcCharts.loss;
      return c.series.map((b: string, k: number) => [b, c.chart.data[k + 1].filter((v: unknown) => v !== null).length]);
    });
    expect(drawn).toEqual([
      ['hostile', 1],
      ['lowlr', 4],
      ['main', 6],
    ]);
    const legend = await page.$$eval('.u-legend .u-series th', (ths) => ths.map((t) => t.textContent?.trim()));
    expect(legend).toEqual(['step', 'hostile', 'lowlr', 'main']);
    await screenshot('curves');
    // The legend hides a branch and shows it again; the log scale redraws the chart with a log y axis.
    const shown = () =>
      page.evaluate(() => (window as any).ckvcCharts.loss.chart.series.slice(1).map((x: any) => x.show));
    await page.click('.u-legend .u-series:nth-child(2)');
    expect(await shown()).toEqual([false, true, true]);
    await page.click('.u-legend .u-series:nth-child(2)');
    expect(await shown()).toEqual([true, true, true]);
    await page.check('.chart .log-toggle');
    expect(await page.evaluate(() => (window as any).ckvcCharts.loss.chart.scales.y.distr)).toBe(3);
  });

  it('hovering a point names it; clicking it opens its commit', async () => {
    await open('/metrics?key=loss');
    const target = S.ids.main![3]!;
    const at = await page.evaluate((id) => {
      const { chart, cols } = (window as any).ckvcCharts.loss;
      const k = cols.ids.findIndex((col: any[]) => col.some((p) => p && p.id === id));
      const i = cols.ids[k].findIndex((p: any) => p && p.id === id);
      const box = chart.over.getBoundingClientRect();
      return { x: box.left + chart.valToPos(cols.xs[i], 'x'), y: box.top + chart.valToPos(cols.ys[k][i], 'y') };
    }, target);
    await page.mouse.move(at.x, at.y);
    await page.waitForSelector('.tooltip:not([hidden])');
    expect(await page.textContent('.tooltip')).toBe(`mainloss = 0.5step 400 · commit ${target.slice(0, 12)}`);
    await page.mouse.click(at.x, at.y);
    await page.waitForURL(`**/commit/${target}`);
    await page.waitForSelector('body[data-ready]');
    expect(await page.textContent('#meta')).toContain(target);
    expect(await page.textContent('h1')).toBe('main step 400');
  });

  it('a commit shows its warm start, config, metrics, files and tensors, with a download per file', async () => {
    await open(`/commit/${S.ids.lowlr![0]}`);
    expect(await page.textContent('#parents')).toContain('warm start from');
    expect(await page.textContent('#config-text')).toBe('lr: 0.01\nlayers: 2\nwarmup: 50\n');
    expect(await page.$$eval('#tensors tbody tr', (r) => r.length)).toBe(3);
    const href = await page.getAttribute('#files a[download]', 'href');
    expect(href).toBe(`/api/file?rev=${S.ids.lowlr![0]}&path=model.safetensors`);
    await screenshot('commit');
  });

  it('compare shows the config change, the metric delta and the tensors by relative change', async () => {
    await open('/compare/main/lowlr');
    const config = await page.$$eval('#config-changes tbody tr', (rows) =>
      rows.map((r) => [...r.children].map((c) => c.textContent)),
    );
    expect(config).toEqual([
      ['lr', 'changed', '0.1', '0.01'],
      ['warmup', 'added', '', '50'],
    ]);
    const loss = await page.$$eval('#metric-deltas tbody tr', (rows) =>
      rows.map((r) => [...r.children].map((c) => c.textContent)),
    );
    expect(loss).toContainEqual(['loss', '0.333333', '0.4', '+0.0666667', '+20.00%']);
    expect(await page.$$eval('#tensor-bars .bar-row', (r) => r.length)).toBe(2);
    await screenshot('compare');
    await open('/compare/main/hostile');
    expect(await page.textContent('#tensor-bars .flagged .flag')).toBe(' F32[16] → F32[8]');
  });

  it('a commit message, run and label holding HTML are shown as text, never run', async () => {
    await open('/commit/hostile');
    expect(await page.textContent('h1#message')).toBe(HOSTILE_MESSAGE);
    expect(await page.textContent('#meta')).toContain('<k>=<v onclick=x>');
    await open('/');
    expect(await page.textContent('#graph')).toContain(HOSTILE_MESSAGE);
    expect(
      await page.evaluate(() => [
        (window as any).__ckvcXss,
        document.querySelectorAll('main img, main script, main b').length,
      ]),
    ).toEqual([undefined, 0]);
    expect(problems).toEqual([]);
  });
});
