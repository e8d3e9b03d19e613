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
