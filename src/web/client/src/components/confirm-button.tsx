import { useState } from 'preact/hooks';
import { ErrorBox } from './error-box.tsx';

/**
 * A button for an action that changes something (cancel, retry): asks for confirmation in a dialog,
 * then runs the action and reports its error, if any.
 */
export function ConfirmButton(props: { label: string; question: string; action: () => Promise<unknown>; onDone?: () => void; disabled?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | undefined>(undefined);
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.action();
      setAsking(false);
      props.onDone?.();
    } catch (err) {
      setError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" disabled={props.disabled || busy} onClick={() => setAsking(true)}>
        {props.label}
      </button>
      {asking ? (
        <div class="dialog-backdrop">
          <div class="dialog" role="dialog" aria-modal="true" aria-label={props.label}>
            <p>{props.question}</p>
            <ErrorBox error={error} />
            <div class="dialog-actions">
              <button type="button" onClick={() => setAsking(false)} disabled={busy}>
                No
              </button>
              <button type="button" class="primary" onClick={confirm} disabled={busy}>
                Yes, {props.label.toLowerCase()}
              </button>
            </div>
          </div>
        </div>
      ) : null}
    </>
  );
}
