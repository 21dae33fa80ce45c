// npm run build, second step: the CLI as one CommonJS file (dist/bundle/ckvc.cjs). Start-up is most of a short
// command's time (issue 12): Node resolves, reads and compiles each module file on its own, and yargs and the API
// are hundreds of files. One CommonJS script rather than ES modules because V8 can keep a script's compiled code
// between runs and Node 20 offers that only for scripts (bin/compiled-code-cache.cjs: `log -n 1` +61 -> +35 ms
// over a bare Node, README, Start-up); its lazily imported parts are still evaluated only when a command imports
// them. tsc still type-checks and emits dist/ (the library: dist/api, which tests and examples import).
//
// Native addons and the libraries that find their addon next to their own files stay in node_modules.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

/**
 * string-width (yargs measures help text with it; three copies in the tree) builds Unicode property regexes
 * (RGI_Emoji and others, flag v) and an Intl.Segmenter when it is loaded: tens of ms on every start, though
 * only --help and usage errors measure text. Each import of it gets a stand-in with the same one export that
 * loads the real module on first call (esbuild evaluates a require()d module when first required). The build
 * fails if a copy exports anything else, so a new string-width cannot quietly break this.
 */
const deferStringWidth = {
  name: 'defer-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData?.real) return undefined;
      const real = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { real: true },
      });
      if (real.errors.length) return { errors: real.errors };
      return { path: real.path, namespace: 'deferred' };
    });
    b.onLoad({ filter: /.*/, namespace: 'deferred' }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const exports = text.match(/^export\b.*$/gm) ?? [];
      if (exports.length !== 1 || !/^export default function stringWidth\(/.test(exports[0])) {
        throw new Error(
          `${args.path}: expected one export, 'export default function stringWidth(' (see deferStringWidth in esbuild.config.mjs)`,
        );
      }
      return {
        contents: `let real; export default function stringWidth(...a) { real ??= require(${JSON.stringify(args.path)}).default; return real(...a); }`,
        resolveDir: path.dirname(args.path),
        loader: 'js',
      };
    });
  },
};

/**
 * A plugin for a package whose loader asks process.report.getReport() whether libc is musl before it loads its
 * addon (about 7 ms of every start): on Linux x64 and arm64 the bundle first requires the glibc addon package
 * itself (`${pkg}-linux-ARCH-gnu`, the one npm installs on glibc systems); if that package is absent or does not
 * load (musl), `m` stays unset and the package's own loader (`specifier`) decides as before. `exports` is the
 * stand-in's export code, given `m`.
 */
function glibcAddonFirst(pkg, specifier, exportsCode) {
  const namespace = `${pkg}-addon`;
  const filter = new RegExp(`^${specifier.replace(/[/.]/g, '\\$&')}$`);
  return {
    name: `direct-addon:${pkg}`,
    setup(b) {
      // The stand-in's own fallback require (importer in this namespace) is the real, external package.
      b.onResolve({ filter }, (args) =>
        args.namespace === namespace ? { path: args.path, external: true } : { path: args.path, namespace },
      );
      b.onLoad({ filter: /.*/, namespace }, () => ({
        contents: `let m;
if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
  try { m = require('${pkg}-linux-' + process.arch + '-gnu'); } catch { m = undefined; }
}
m ??= require('${specifier}');
${exportsCode}`,
        loader: 'js',
      }));
    },
  };
}

const directBlakeAddon = glibcAddonFirst(
  '@napi-rs/blake-hash',
  '@napi-rs/blake-hash',
  `export const Blake3Hasher = m.Blake3Hasher;
export const blake3 = m.blake3;`,
);

// src/core/store-format/codec/zstd-binding.ts imports the package's native loader (its index.js drops the level).
const directZstdAddon = glibcAddonFirst(
  '@mongodb-js/zstd',
  '@mongodb-js/zstd/bindings.js',
  `export const compress = m.compress;
export const decompress = m.decompress;`,
);

/**
 * cbor-x's Node entry also loads cbor-extract, a native addon that speeds up decoding long strings: 20-40 ms of
 * every command that reads an object, for strings ckvc's objects keep short. Its `cbor-x/decode` export is no
 * better under Node (its "node" condition maps it to index.js: encoder, decoder and iterators, four files that
 * Node resolves, reads and compiles). ckvc only decodes with it, so the bundle takes the decoder's own file,
 * decode.js (plain JS, no imports), and compiles it with the rest; decoding gives the same values either way.
 */
const cborDecoderOnly = {
  name: 'cbor-decoder-only',
  setup(b) {
    const dir = path.dirname(createRequire(import.meta.url).resolve('cbor-x/package.json'));
    b.onResolve({ filter: /^cbor-x$/ }, () => ({ path: path.join(dir, 'decode.js') }));
  },
};

/**
 * level (the index's LevelDB) is about 30 CommonJS files that Node would resolve, read and compile one by one on
 * every command that writes the index: bundled instead. Only classic-level's addon stays outside: its binding.js
 * finds the prebuilt addon next to its own file (`node-gyp-build(__dirname)`), so the stand-in hands
 * node-gyp-build (itself not bundled) the installed classic-level's folder instead of the bundle's.
 */
const levelAddonInPlace = {
  name: 'level-addon-in-place',
  setup(b) {
    b.onLoad({ filter: /[\\/]classic-level[\\/]binding\.js$/ }, () => ({
      // Resolved the way Node would from the installed packages (level's classic-level, classic-level's
      // node-gyp-build), nested or hoisted alike.
      contents: `const path = require('node:path');
const { createRequire } = require('node:module');
const fromLevel = createRequire(require.resolve('level/package.json'));
const classicLevel = fromLevel.resolve('classic-level/package.json');
module.exports = createRequire(classicLevel)('node-gyp-build')(path.dirname(classicLevel));`,
      loader: 'js',
    }));
  },
};

/**
 * yargs looks for its program's package.json (to guess a version) from the folder before `node_modules` in its
 * own path, which is ckvc's folder when yargs is installed under it. Bundled, its path has no `node_modules`, and
 * it searched upward from the current folder instead, listing every folder up to / (in a busy /tmp: tens of ms
 * on every command). The bundle points it at ckvc's own package.json, two folders above the bundle.
 */
const yargsFindsOurPackage = {
  name: 'yargs-finds-our-package',
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const from = "const mainFilename = __dirname.substring(0, __dirname.lastIndexOf('node_modules'));";
      if (!text.includes(from)) throw new Error(`${args.path}: expected '${from}' (see yargsFindsOurPackage)`);
      const to = "const mainFilename = fileURLToPath(new URL('../../package.json', import.meta.url));";
      return { contents: text.replace(from, to), loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

const repo = path.dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));

// A build leaves nothing of the one before (earlier builds also wrote chunks/ and ckvc.js).
rmSync(path.join(repo, 'dist/bundle'), { recursive: true, force: true });

const result = await build({
  absWorkingDir: repo,
  entryPoints: { ckvc: 'src/cli/main.ts' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  // import() becomes require(): V8 keeps no dynamic-import handler with cached code (bin/compiled-code-cache.cjs),
  // so an import() in a script run from its cache fails (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING).
  supported: { 'dynamic-import': false },
  platform: 'node',
  target: 'node20',
  // Not minified: no start-up difference measurable here, and an internal error's stack trace stays readable
  // (node --enable-source-maps maps it to src/: the launcher then loads the bundle with require()).
  minify: false,
  sourcemap: 'linked',
  // import.meta.url (the web page's files and package.json are found from it) is the bundle's own URL.
  define: { CKVC_BUILD_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__ckvcBundleUrl' },
  external: [
    '@napi-rs/blake-hash',
    '@mongodb-js/zstd',
    'cbor-extract',
    // Loaded only to record code provenance during a commit; a CommonJS package best left to Node to load.
    'isomorphic-git',
    // Hundreds of modules, imported (dynamically) only when an s3:// remote is used: Node loads it then.
    '@aws-sdk/client-s3',
    // Only resolved (require.resolve), to find classic-level's addon: see levelAddonInPlace.
    'level/package.json',
  ],
  // 'use strict' first: esbuild's own directive comes after the banner, where it no longer is one, and every module
  // was strict as an ES module.
  banner: { js: "'use strict'; const __ckvcBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [
    deferStringWidth,
    directBlakeAddon,
    directZstdAddon,
    cborDecoderOnly,
    levelAddonInPlace,
    yargsFindsOurPackage,
  ],
  logLevel: 'warning',
  // CKVC_BUNDLE_META=1: also write dist/bundle/meta.json, what each output file holds and imports.
  metafile: Boolean(process.env.CKVC_BUNDLE_META),
});
// No import() may be left (see 'supported'). bin/compiled-code-cache.cjs reads an ASCII bundle as Latin-1, 4 ms
// quicker than UTF-8. esbuild escapes every non-ASCII character in code (its default charset) but copies comments
// as written; those characters (the sources' § and accents) are escaped in the comments too, and a line that holds
// one and is not a comment fails the build rather than being changed.
const bundleFile = path.join(repo, 'dist/bundle/ckvc.cjs');
const lines = readFileSync(bundleFile, 'utf8').split('\n');
const isComment = (line) => /^\s*(\/\/|\/\*|\*)/.test(line);
for (const [i, line] of lines.entries()) {
  if (/(^|[^\w$.])import\(/.test(line) && !isComment(line))
    throw new Error(`${bundleFile}:${i + 1}: an import() left in the bundle (see 'supported' above)`);
  if (!/[^\x00-\x7f]/.test(line)) continue;
  if (!isComment(line)) throw new Error(`${bundleFile}:${i + 1}: a non-ASCII character outside a comment`);
  lines[i] = line.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}
writeFileSync(bundleFile, lines.join('\n'));
if (result.metafile) writeFileSync(path.join(repo, 'dist/bundle/meta.json'), JSON.stringify(result.metafile));

// The web page's files (`ckvc ui`): plain HTML, CSS and JS served as they are. src/ui/ui-assets.ts finds them
// from dist/ui (tsc's output) and from dist/bundle alike.
rmSync(path.join(repo, 'dist/ui-assets'), { recursive: true, force: true });
cpSync(path.join(repo, 'src/ui-assets'), path.join(repo, 'dist/ui-assets'), { recursive: true });
