import { ApiError } from '../api.ts';

/** What went wrong loading or doing something, as the API said it (with its error_id for 5xx). */
export function ErrorBox({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : undefined;
  return (
    <div class="error-box" role="alert">
      <strong>{api ? `${api.status} ${api.code}` : 'Error'}</strong>: {error.message}
      {api?.errorId ? <span class="muted"> (error_id {api.errorId})</span> : null}
    </div>
  );
}
