/**
 * setInterval whose callback errors (ENOSPC while flushing samples, ...) go to
 * `onError` instead of becoming uncaught exceptions: a timer has no caller to
 * throw to, and an uncaught exception would end the harness without its cleanup.
 */
export function safeInterval(fn: () => void, ms: number, onError: (e: unknown) => void): NodeJS.Timeout {
  return setInterval(() => {
    try {
      fn();
    } catch (e) {
      onError(e);
    }
  }, ms);
}

/**
 * `p`'s value, or null once `ms` passed first. Unlike racing `p` against a sleep, the timer is
 * cleared as soon as `p` settles: a pending timer keeps node's event loop alive, and each such
 * race left in a command's teardown (a 30 s wait for a guest's end that came at once) held the
 * finished `migbench run` open for the rest of its timeout.
 */
export function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
