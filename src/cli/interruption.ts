// Ctrl-C (SIGINT) or SIGTERM while a command runs: the temp files it registered (store/interrupt-cleanup.ts) are
// removed and ckvc says so (CKVC_INTERRUPTED, spec/EXIT_CODES.md), instead of dying silently with a checkout's or a
// bundle's temp file left beside the user's files; then it ends by the signal itself, as a shell expects of the
// programs it runs (bash goes on with a script when a child *exits* on Ctrl-C, taking the signal as handled).
// Commands that handle a first signal themselves (commit and watch finish or abandon their work cleanly; serve and
// ui shut down) listen for it while they run; this handler then leaves it to them, and acts on one that arrives
// once theirs is gone (a second Ctrl-C).
import { CkvcError } from '../core/errors.js';
import { removeRegisteredTemps } from '../api/interrupted-temps.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

let note: (() => string | undefined) | undefined;

/** What the command says beside an interruption (a transfer: the batches that went through whole and stay). */
export function setInterruptNote(fn: () => string | undefined): void {
  note = fn;
}

/** Installs the handler; returns the call that takes it away again (once the command has returned). */
export function exitOnInterrupt(report: (e: CkvcError) => number): () => void {
  const remove = () => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (process.listenerCount(signal) > 1) return;
    const removed = removeRegisteredTemps();
    const temps = removed ? `; removed ${removed} temp file(s) it was writing` : '';
    const said = note?.();
    report(
      new CkvcError(
        'CKVC_INTERRUPTED',
        `interrupted (${signal}): stopped before finishing, with nothing half-written${temps}${said ? `; ${said}` : ''}`,
        {
          signal,
        },
      ),
    );
    remove();
    process.kill(process.pid, signal);
  }
  for (const s of SIGNALS) process.on(s, onSignal);
  return remove;
}

/**
 * Calls `fn` on the first SIGINT or SIGTERM, and then listens for neither (a second signal, of either kind, is the
 * handler above's); returns the call that stops listening.
 */
export function onFirstSignal(fn: (signal: NodeJS.Signals) => void): () => void {
  const stop = () => {
    for (const s of SIGNALS) process.off(s, fire);
  };
  function fire(signal: NodeJS.Signals): void {
    stop();
    fn(signal);
  }
  for (const s of SIGNALS) process.on(s, fire);
  return stop;
}

/** Resolves on the first SIGINT or SIGTERM (serve and ui run until then). */
export const untilFirstSignal = () => new Promise<void>((resolve) => onFirstSignal(() => resolve()));
