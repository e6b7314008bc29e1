import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  /** Fetch again now. */
  reload: () => void;
}

/**
 * Loads `load()` when `key` changes and, with `refreshMs`, again every interval while the tab is
 * visible. A slow answer that arrives after a newer request started is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, key: string, refreshMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    loadRef.current().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(undefined);
        setLoading(false);
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setError(err instanceof Error ? err : new Error(String(err)));
        setLoading(false);
      },
    );
  }, []);

  useEffect(() => {
    setData(undefined);
    run();
    const onKey = () => run();
    window.addEventListener('evalops:key-changed', onKey);
    let timer: ReturnType<typeof setInterval> | undefined;
    if (refreshMs) {
      timer = setInterval(() => {
        if (document.visibilityState === 'visible') run();
      }, refreshMs);
    }
    return () => {
      generation.current++;
      window.removeEventListener('evalops:key-changed', onKey);
      if (timer) clearInterval(timer);
    };
  }, [key, refreshMs, run]);

  return { data, error, loading, reload: run };
}
