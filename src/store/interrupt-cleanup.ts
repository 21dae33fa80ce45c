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

/**
 * Removes every registered path now, synchronously (from a signal handler, just before exiting; writes still in
 * flight go on into unlinked files, which the exit closes). Returns how many were removed.
 */
export function removeRegisteredTemps(): number {
  let removed = 0;
  for (const p of registered) {
    try {
      if (fs.lstatSync(p, { throwIfNoEntry: false })) {
        fs.rmSync(p, { recursive: true, force: true });
        removed++;
      }
    } catch {
      // Nothing more can be done on the way out; the stale-temp rules remove it later.
    }
  }
  registered.clear();
  return removed;
}
