// npm run bench:ui: the curves view on a large history (issue 13: interactive within 1 s of load). Not a test.
// Builds a store of UI_BENCH_COMMITS (default 10,000) commits on UI_BENCH_BRANCHES (default 20) branches through
// the Node API (each commit a small file, a step and two metrics; kept in UI_BENCH_STORE when set, and reused
// from there on the next run), serves it with `ckvc ui`, opens /metrics?key=loss in Debian's chromium and prints:
// the time from navigation to the drawn chart (body[data-ready]), the /api/metrics reply's time and size, and
// the time from a mouse move over the chart to its tooltip.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { initStore, openStore } from '../../dist/api/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const COMMITS = Number(process.env.UI_BENCH_COMMITS ?? 10_000);
const BRANCHES = Number(process.env.UI_BENCH_BRANCHES ?? 20);
const TARGET_MS = 1000;

async function buildStore(dir) {
  if (fs.existsSync(path.join(dir, '.ckvc'))) return console.log(`reusing the store in ${dir}`);
  fs.mkdirSync(dir, { recursive: true });
  await initStore(dir);
  const s = await openStore(dir);
  const file = path.join(dir, 'weights.bin');
  const t0 = performance.now();
  const perBranch = Math.ceil(COMMITS / BRANCHES);
  let made = 0;
  try {
    for (let step = 1; step <= perBranch; step++) {
      for (let b = 0; b < BRANCHES && made < COMMITS; b++, made++) {
        fs.writeFileSync(file, `branch ${b} step ${step}\n`);
        await s.commit({
          paths: [file],
          message: `run-${b} step ${step}`,
          branch: `run-${b}`,
          step: step * 10,
          metrics: { loss: (1 + b / 10) / Math.sqrt(step), acc: 1 - 1 / (1 + step) },
          author: 'bench',
          cwd: dir,
        });
      }
      if (step % 50 === 0) console.log(`  ${made} commits, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    await s.close();
  }
  console.log(`built ${made} commits on ${BRANCHES} branches in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

function serveUi(store) {
  const child = spawn(process.execPath, [path.join(repo, 'bin', 'ckvc'), 'ui', '--port', '0', '--store', store], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').once('data', (d) => resolve({ child, url: d.trim().split('\n')[0] }));
    child.once('exit', (code) => reject(new Error(`ckvc ui exited ${code}`)));
  });
}

async function measure(url) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CKVC_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(new URL('/', url).href); // warm: the browser's own start-up is not the page's
    const results = [];
    for (let run = 0; run < 4; run++) {
      const t0 = Date.now();
      await page.goto(new URL('/metrics?key=loss', url).href);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      const loaded = Date.now() - t0;
      const timing = await page.evaluate(() => {
        const e = performance.getEntriesByType('resource').find((r) => r.name.includes('/api/metrics'));
        return { api: Math.round(e.duration), bytes: e.encodedBodySize, ready: Number(document.body.dataset.readyMs) };
      });
      const box = await page.evaluate(() => window.ckvcCharts.loss.chart.over.getBoundingClientRect().toJSON());
      const t1 = Date.now();
      await page.mouse.move(box.left + box.width * (0.3 + run / 10), box.top + box.height / 2);
      await page.waitForSelector('.tooltip:not([hidden])');
      const hover = Date.now() - t1;
      const points = await page.evaluate(() =>
        window.ckvcCharts.loss.chart.data.slice(1).reduce((a, ys) => a + ys.filter((v) => v !== null).length, 0),
      );
      results.push({ loaded, ...timing, hover, points });
    }
    return results;
  } finally {
    await context.close();
  }
}

const dir = process.env.UI_BENCH_STORE ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ckvc-bench-ui-'));
await buildStore(dir);
const { child, url } = await serveUi(path.join(dir, '.ckvc'));
try {
  const results = await measure(url);
  for (const r of results) {
    console.log(
      `curves view: drawn ${r.ready} ms after navigation start (${r.loaded} ms as the driver saw it; ` +
        `/api/metrics ${r.api} ms, ${(r.bytes / 1024).toFixed(0)} KiB), ` +
        `tooltip ${r.hover} ms after a mouse move; ${r.points} points`,
    );
  }
  // The first load comes right after start, while the server still reads the history ahead (src/ui/commit-cache.ts).
  const later = results.slice(1).map((r) => r.ready);
  console.log(
    `first load after start: ${results[0].ready} ms; later loads: best ${Math.min(...later)} ms, ` +
      `worst ${Math.max(...later)} ms (target ${TARGET_MS} ms); ` +
      `load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`,
  );
} finally {
  child.kill('SIGTERM');
  if (!process.env.UI_BENCH_STORE) fs.rmSync(dir, { recursive: true, force: true });
}
