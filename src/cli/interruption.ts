// Ctrl-C (SIGINT) or SIGTERM while a command runs: the temp files it registered (store/interrupt-cleanup.ts) are
// removed and ckvc exits 130 with CKVC_INTERRUPTED (spec/EXIT_CODES.md), saying so, instead of dying silently with
// a checkout's or a bundle's temp file left beside the user's files. Commands that handle the signal themselves
// (commit and watch finish or abandon their work cleanly; serve and ui shut down) listen for it while they run;
// this handler then leaves the signal to them, and acts on one that arrives once theirs is gone (a second Ctrl-C).
import { CkvcError } from '../core/errors.js';
import { removeRegisteredTemps } from '../store/interrupt-cleanup.js';

export function exitOnInterrupt(report: (e: CkvcError) => number): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    const removed = removeRegisteredTemps();
    const temps = removed ? `; removed ${removed} temp file(s) it was writing` : '';
    const err = new CkvcError(
      'CKVC_INTERRUPTED',
      `interrupted (${signal}): stopped before finishing, with nothing half-written${temps}`,
      { signal },
    );
    process.exit(report(err));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
