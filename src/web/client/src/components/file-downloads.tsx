import { useState } from 'preact/hooks';
import { ApiError, storedKey } from '../api.ts';
import type { RunFile } from '../eval-types.ts';
import { formatBytes } from '../format.ts';
import { ErrorBox } from './error-box.tsx';

/**
 * Fetches `href` with the stored API key and saves it as `name`: a plain link cannot send the key
 * header. The object URL is revoked once the browser has taken the file.
 */
export async function downloadWithKey(href: string, name: string): Promise<void> {
  const key = storedKey();
  const response = await fetch(href, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (!response.ok) {
    let message = response.statusText || `HTTP ${response.status}`;
    try {
      message = ((await response.json()) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON
    }
    throw new ApiError(response.status, `HTTP_${response.status}`, message);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A download link: a plain link when no key is needed, fetch + blob with the key otherwise. */
export function DownloadLink(props: { href: string; name: string; label?: string; onError: (error: Error | undefined) => void }) {
  return (
    <a
      href={props.href}
      download={props.name}
      class="download-link"
      onClick={(event) => {
        if (!storedKey()) return;
        event.preventDefault();
        props.onError(undefined);
        downloadWithKey(props.href, props.name).catch((err: unknown) => props.onError(err instanceof Error ? err : new Error(String(err))));
      }}
    >
      {props.label ?? props.name}
    </a>
  );
}

/** The files of a run folder with their sizes and hashes, each a download. */
export function FileDownloads({ runId, files }: { runId: string; files: RunFile[] }) {
  const [error, setError] = useState<Error | undefined>(undefined);
  if (files.length === 0) return <p class="muted">No files yet: they are written when the run finishes.</p>;
  return (
    <>
      <ErrorBox error={error} />
      <table class="file-table">
        <thead>
          <tr>
            <th>file</th>
            <th class="num">size</th>
            <th>sha256</th>
          </tr>
        </thead>
        <tbody>
          {files.map((f) => (
            <tr key={f.name}>
              <td>
                <DownloadLink href={`/v1/evaluations/${runId}/files/${encodeURIComponent(f.name)}`} name={f.name} onError={setError} />
              </td>
              <td class="num">{formatBytes(f.bytes)}</td>
              <td class="mono muted" title={f.sha256}>
                {f.sha256.slice(0, 16)}…
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
