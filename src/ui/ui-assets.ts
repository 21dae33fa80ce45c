// The page's static files: ours (src/ui-assets, copied to dist/ui-assets by the build) and uPlot's, read from
// the installed package (no CDN: clusters often have no internet). Found relative to this module, which runs
// from src/ui (tests), dist/ui (tsc) or dist/bundle (the esbuild bundle).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CkvcError } from '../core/errors.js';

export interface Asset {
  file: string;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The nearest `ui-assets` folder holding index.html, from this module's folder upward. */
function findAssetsDir(): string {
  const from = path.dirname(fileURLToPath(import.meta.url));
  let dir = from;
  for (let up = 0; up < 4; up++) {
    const candidate = path.join(dir, 'ui-assets');
    if (fs.existsSync(path.join(candidate, 'index.html'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new CkvcError(
    'CKVC_INTERNAL',
    `the page's files (ui-assets/index.html) are missing: not in ${from} nor the 3 folders above it; ` +
      'rebuild ckvc (npm run build) or reinstall it',
    {},
  );
}

/** URL path -> file: a fixed list made once, so no request path ever reaches the file system. */
export function assetTable(): Map<string, Asset> {
  const dir = findAssetsDir();
  const table = new Map<string, Asset>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type && /^[a-z0-9-]+\.[a-z]+$/.test(name)) table.set(`/assets/${name}`, { file: path.join(dir, name), type });
  }
  const require = createRequire(import.meta.url);
  table.set('/vendor/uplot.js', { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: TYPES['.js']! });
  table.set('/vendor/uplot.css', { file: require.resolve('uplot/dist/uPlot.min.css'), type: TYPES['.css']! });
  return table;
}
