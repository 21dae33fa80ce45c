// Temp files and folders a command is writing outside the store's own tmp/ (a checked-out file's temp beside its
// target, a bundle's temp beside `pack -o`), or large ones inside it (a received bundle's quarantine), that an
// interruption must not leave behind: without this, Ctrl-C in a checkout left a hidden temp file as large as the
// file it was writing next to the user's files, which nothing removes. Each is registered while it exists; the
// command line's signal handler (cli/interruption.ts) removes whatever is registered, then exits. A process killed
// outright (SIGKILL, power loss) still leaves them: those are what leftovers.ts and checkout's stale-temp rule
// (spec/FORMAT.md §9.2) are for.
import * as fs from 'node:fs';

const registered = new Set<string>();

/** Registers `p` for removal if the process is interrupted; returns the call that forgets it again. */
export function removedIfInterrupted(p: string): () => void {
  registered.add(p);
  return () => {
    registered.delete(p);
  };
}

// Thread-pool file operations take well under a millisecond: 3 clean checks 10 ms apart cost a Ctrl-C 30 ms.
const SETTLE_CHECKS = 3;
const SETTLE_STEP_MS = 10;
const SETTLE_LIMIT_MS = 500;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Removes every registered path now, synchronously (from a signal handler, just before exiting), and returns how
 * many were removed. A file operation already on the thread pool when the signal came (an `open` of a registered
 * temp, a `mkdir` inside a quarantine) can land just after: a folder removal then fails with ENOTEMPTY, or the temp
 * appears after it was looked for (a CI run left a quarantine that way). So the paths are looked at again until they
 * have stayed absent for a few checks in a row, within a bound; writes still in flight after that go on into
 * unlinked files, which the exit closes.
 */
export function removeRegisteredTemps(): number {
  if (registered.size === 0) return 0;
  const removed = new Set<string>();
  let absentChecks = 0;
  for (let waited = 0; absentChecks < SETTLE_CHECKS && waited <= SETTLE_LIMIT_MS; waited += SETTLE_STEP_MS) {
    let found = 0;
    for (const p of registered) {
      try {
        if (!fs.lstatSync(p, { throwIfNoEntry: false })) continue;
        found++;
        fs.rmSync(p, { recursive: true, force: true });
        removed.add(p);
      } catch {
        // Tried again on the next check; past the bound, the stale-temp rules remove it later.
      }
    }
    absentChecks = found ? 0 : absentChecks + 1;
    if (absentChecks < SETTLE_CHECKS) Atomics.wait(sleeper, 0, 0, SETTLE_STEP_MS);
  }
  registered.clear();
  return removed.size;
}
