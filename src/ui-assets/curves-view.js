// Metric curves: one chart per chosen key, one line per branch (uPlot, served from the installed package).
// x is the step, or the commit time when some point has no step. Hover names the point; a click opens its
// commit; each branch's best point (as `ckvc best` picks it) is ringed; the legend toggles branches.
import { commitHref, el, getJson, num, short } from './dom.js';

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#ad494a',
  '#637939',
  '#8c6d31',
  '#843c39',
  '#7b4173',
  '#3182bd',
  '#e6550d',
  '#31a354',
  '#756bb1',
];

/**
 * Columns uPlot wants: one shared sorted x array, and per branch its values (null where it has none) and the
 * commit behind each. Series arrive column by column (spec/UI.md §3: /api/metrics).
 */
export function columns(series, key) {
  const has = (s, j) => s.values[key][j] !== null;
  const useStep = series.every((s) => s.steps.every((step, j) => !has(s, j) || step !== null));
  const xOf = (s, j) => (useStep ? s.steps[j] : s.times[j] / 1000);
  const all = [];
  for (const s of series) for (let j = 0; j < s.ids.length; j++) if (has(s, j)) all.push(xOf(s, j));
  const xs = [...new Set(all)].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = [];
  const ids = [];
  for (const s of series) {
    const y = new Array(xs.length).fill(null);
    const id = new Array(xs.length).fill(null);
    for (let j = 0; j < s.ids.length; j++) {
      if (!has(s, j)) continue;
      const i = at.get(xOf(s, j));
      y[i] = s.values[key][j];
      id[i] = { id: s.ids[j], step: s.steps[j] ?? undefined };
    }
    ys.push(y);
    ids.push(id);
  }
  return { useStep, xs, ys, ids };
}

/** The nearest index with a value in `ys` around `i`, so hover and click land on a real point of that branch. */
function nearestFilled(ys, i) {
  for (let d = 0; d < ys.length; d++) {
    if (i - d >= 0 && ys[i - d] !== null) return i - d;
    if (i + d < ys.length && ys[i + d] !== null) return i + d;
  }
  return null;
}

function bestMarker(series, key, cols) {
  return (u) => {
    const ctx = u.ctx;
    series.forEach((s, k) => {
      const best = s.best[key];
      if (!best || !u.series[k + 1].show) return;
      const i = cols.ids[k].findIndex((p) => p && p.id === best.id);
      if (i < 0) return;
      const x = u.valToPos(cols.xs[i], 'x', true);
      const y = u.valToPos(best.value, 'y', true);
      ctx.save();
      ctx.strokeStyle = PALETTE[k % PALETTE.length];
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath();
      ctx.arc(x, y, 6 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.restore();
    });
  };
}

/** The point under the cursor: the focused branch's nearest filled index. */
function pointAt(u, cols) {
  const k = u.cursor.idx === null || u.cursor.idx === undefined ? -1 : focusedSeries(u);
  if (k < 0) return null;
  const i = nearestFilled(cols.ys[k], u.cursor.idx);
  return i === null ? null : { k, i, point: cols.ids[k][i], value: cols.ys[k][i] };
}

/** The shown branch with a point nearest the cursor (in pixels), looking at each one's nearest point in x. */
function focusedSeries(u) {
  let bestK = -1;
  let bestD = Infinity;
  for (let k = 1; k < u.series.length; k++) {
    if (!u.series[k].show) continue;
    const i = nearestFilled(u.data[k], u.cursor.idx);
    if (i === null) continue;
    const dx = u.valToPos(u.data[0][i], 'x') - u.cursor.left;
    const dy = u.valToPos(u.data[k][i], 'y') - u.cursor.top;
    const d = Math.hypot(dx, dy);
    if (d < bestD) {
      bestD = d;
      bestK = k - 1;
    }
  }
  return bestK;
}

function tooltipPlugin(series, key, cols, tip) {
  return {
    hooks: {
      setCursor: (u) => {
        const hit = pointAt(u, cols);
        if (!hit) {
          tip.hidden = true;
          return;
        }
        const p = hit.point;
        tip.replaceChildren(
          el('b', {}, series[hit.k].branch),
          el('br'),
          `${key} = ${num(hit.value)}`,
          el('br'),
          p.step !== undefined ? `step ${p.step} · ` : '',
          `commit ${short(p.id)}`,
        );
        tip.hidden = false;
        tip.style.left = `${u.valToPos(cols.xs[hit.i], 'x') + 12}px`;
        tip.style.top = `${u.valToPos(hit.value, 'y') + 12}px`;
      },
      ready: (u) => {
        u.over.addEventListener('click', () => {
          const hit = pointAt(u, cols);
          if (hit) location.assign(commitHref(hit.point.id));
        });
      },
    },
  };
}

function chartOptions(series, key, cols, logScale, width, tip) {
  return {
    width,
    height: 360,
    scales: { x: { time: !cols.useStep }, y: logScale ? { distr: 3 } : {} },
    axes: [{ label: cols.useStep ? 'step' : 'time' }, { label: key, size: 70 }],
    series: [
      { label: cols.useStep ? 'step' : 'time' },
      ...series.map((s, k) => ({
        label: s.branch,
        stroke: PALETTE[k % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: { size: 4 },
        value: (_u, v) => (v === null ? '–' : num(v)),
      })),
    ],
    cursor: { drag: { x: true, y: false } },
    hooks: { draw: [bestMarker(series, key, cols)] },
    plugins: [tooltipPlugin(series, key, cols, tip)],
  };
}

function renderChart(host, series, key) {
  const cols = columns(series, key);
  const positive = cols.ys.every((y) => y.every((v) => v === null || v > 0));
  const logBox = el('input', { type: 'checkbox', class: 'log-toggle', disabled: !positive });
  const tip = el('div', { class: 'tooltip', hidden: true });
  const plotBox = el('div', { class: 'plot' });
  const card = el(
    'section',
    { class: 'chart', dataset: { key } },
    el('h2', {}, key),
    el('label', { title: positive ? '' : 'some values are 0 or negative' }, logBox, ' log scale'),
    plotBox,
  );
  host.append(card);
  let chart;
  const draw = () => {
    chart?.destroy();
    plotBox.replaceChildren(tip);
    chart = new uPlot(
      chartOptions(series, key, cols, logBox.checked, Math.max(400, host.clientWidth - 40), tip),
      [cols.xs, ...cols.ys],
      plotBox,
    );
    window.ckvcCharts[key] = { chart, cols, series: series.map((s) => s.branch) };
  };
  logBox.addEventListener('change', draw);
  draw();
}

export async function renderCurves(main, keys) {
  if (!keys.length) {
    const o = await getJson('/api/overview');
    keys = Object.keys(o.modes).slice(0, 1);
    if (!keys.length) {
      main.replaceChildren(el('p', { class: 'muted' }, 'No branch records a metric yet.'));
      return;
    }
  }
  const q = keys.map((k) => `key=${encodeURIComponent(k)}`).join('&');
  const m = await getJson(`/api/metrics?${q}`);
  document.title = `ckvc: ${keys.join(', ')}`;
  window.ckvcCharts = {};
  main.replaceChildren(
    el(
      'p',
      { class: 'muted' },
      `${m.series.length} branch(es); ringed: each branch's best ` +
        `(${keys.map((k) => `${k}: ${m.modes[k]}`).join(', ')}). ` +
        'Click a point to open its commit; click a branch in the legend to hide it.',
    ),
  );
  for (const key of keys)
    renderChart(
      main,
      m.series.filter((s) => s.values[key].some((v) => v !== null)),
      key,
    );
}
