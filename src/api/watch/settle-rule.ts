// `ckvc watch`: deciding that a checkpoint is complete. A writer gives no "done" signal we can see on every
// filesystem, so a checkpoint counts as complete once its signature (size and mtime, or for a folder its
// listing) has been seen unchanged for the settle time. A file renamed into place is caught the same way: it
// appears with its final signature and then simply stays.

interface Seen {
  signature: string;
  /** Monotonic time this signature was first seen (or the settle clock was restarted). */
  since: number;
  /** Polls that saw this signature. */
  polls: number;
}

export class SettleTracker {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly settleMs: number) {}

  /** Records one poll's signature of `name`; a different signature than last time restarts its clock. */
  observe(name: string, signature: string, now: number): void {
    const s = this.seen.get(name);
    if (s && s.signature === signature) s.polls++;
    else this.seen.set(name, { signature, since: now, polls: 1 });
  }

  /** Forgets names that were not seen this poll: one that comes back starts over. */
  keepOnly(present: ReadonlySet<string>): void {
    for (const name of this.seen.keys()) if (!present.has(name)) this.seen.delete(name);
  }

  /** The commit found the checkpoint still changing: wait the settle time again from now. */
  restart(name: string, now: number): void {
    const s = this.seen.get(name);
    if (s) {
      s.since = now;
      s.polls = 1;
    }
  }

  forget(name: string): void {
    this.seen.delete(name);
  }

  /**
   * Complete: unchanged for the settle time, and (unless the settle time is 0) seen by at least two polls, so
   * a single poll can never vouch for a file on its own.
   */
  isSettled(name: string, now: number): boolean {
    const s = this.seen.get(name);
    if (!s) return false;
    return now - s.since >= this.settleMs && (this.settleMs === 0 || s.polls >= 2);
  }

  names(): string[] {
    return [...this.seen.keys()];
  }
}
