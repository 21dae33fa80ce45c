// A time bound on work that may hang (a slow or stuck file system): the caller gets an answer or "timed out",
// never a hang, and the abandoned work cannot surface later as an unhandled rejection.

/** Runs `fn` with a deadline; resolves `{ ok: false }` when the deadline passes first (never hangs). */
export async function bounded<T>(
  ms: number,
  fn: (deadline: number) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false }> {
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: false }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false }), Math.max(0, deadline - Date.now()) + 1);
  });
  const work = fn(deadline).then((value) => ({ ok: true as const, value }));
  work.catch(() => undefined); // a loser that rejects later must not become an unhandled rejection
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
