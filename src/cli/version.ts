// The version `ckvc --version` prints. The bundled CLI (npm run build) has it inlined from package.json, so
// printing it reads no file; the unbundled tsc output (dist/cli, which the benchmarks import) reads it from
// package.json two folders up. yargs would find package.json itself by walking up from its own install
// folder, which in a bundle no longer says where ckvc lives.
import { readFileSync } from 'node:fs';

declare const CKVC_BUILD_VERSION: string | undefined;

export function cliVersion(): string {
  if (typeof CKVC_BUILD_VERSION === 'string') return CKVC_BUILD_VERSION;
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}
