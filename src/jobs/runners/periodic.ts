/**
 * Runs `fn` every `ms` (the timer does not keep the process alive), skipping a tick while the
 * previous run is still waiting: during an outage each run waits out its bounded timeout, and
 * overlapping runs would pile up statements and Redis commands behind one another.
 * Errors go to `onError`; the returned timer is for clearInterval.
 */
export function everyUnlessBusy(ms: number, fn: () => Promise<unknown> | void, onError: (err: unknown) => void = () => {}): NodeJS.Timeout {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void Promise.resolve()
      .then(fn)
      .catch(onError)
      .finally(() => {
        busy = false;
      });
  }, ms);
  timer.unref();
  return timer;
}
