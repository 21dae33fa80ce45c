// Loaded with `node --import` into the ckvc processes the store fuzz test spawns: on exit, writes the process's
// peak resident set size (KiB, process.resourceUsage().maxRSS) to $CKVC_FUZZ_RSS_OUT, so the test can show that
// no damaged pack makes the CLI allocate what a corrupted length field asks for.
import { writeFileSync } from 'node:fs';

const out = process.env.CKVC_FUZZ_RSS_OUT;
if (out) {
  process.on('exit', () => {
    try {
      writeFileSync(out, String(process.resourceUsage().maxRSS));
    } catch {
      // the test reports a missing figure; never change the exit code of the process under test
    }
  });
}
