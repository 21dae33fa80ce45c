// The page's router: every view has its own address (/, /metrics?key=K, /commit/ID, /compare/A/B), served as
// this one HTML page; the path picks the view.
import { renderCommit } from './commit-view.js';
import { renderCompare } from './compare-view.js';
import { showError } from './dom.js';
import { renderCurves } from './curves-view.js';
import { renderOverview } from './overview-view.js';

function view(pathname) {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return (main) => renderOverview(main);
  if (parts[0] === 'metrics') return (main) => renderCurves(main, new URLSearchParams(location.search).getAll('key'));
  if (parts[0] === 'commit' && parts.length >= 2) return (main) => renderCommit(main, parts.slice(1).join('/'));
  if (parts[0] === 'compare' && parts.length === 3) return (main) => renderCompare(main, parts[1], parts[2]);
  return null;
}

const main = document.getElementById('main');
const render = view(location.pathname);
if (!render) showError(main, new Error(`no view at ${location.pathname}`));
// readyMs: milliseconds from navigation to the rendered view (tests/bench/ui.mjs reports it).
else
  render(main).then(
    () => {
      document.body.dataset.readyMs = String(Math.round(performance.now()));
      document.body.dataset.ready = '1';
    },
    (e) => {
      showError(main, e);
      document.body.dataset.ready = 'error';
    },
  );
