import { useLocation } from 'preact-iso';
import { getJson, query } from '../api.ts';
import { ErrorBox } from '../components/error-box.tsx';
import { TextDiff } from '../components/text-diff.tsx';
import type { PromptListItem, PromptVersion } from '../eval-types.ts';
import { formatTime } from '../format.ts';
import { useLoad } from '../hooks.ts';

/** Every prompt with its latest version. */
export function PromptsPage() {
  const load = useLoad(() => getJson<{ prompts: PromptListItem[] }>('/v1/prompts'), 'prompts');
  const prompts = load.data?.prompts ?? [];
  return (
    <section class="eval-page">
      <h1>Prompts</h1>
      <ErrorBox error={load.error} />
      {load.data && prompts.length === 0 ? <p class="muted">No prompt yet: push one with evalops prompt push FILE or POST /v1/prompts.</p> : null}
      {prompts.length > 0 ? (
        <table class="prompt-table">
          <thead>
            <tr>
              <th>name</th>
              <th>latest</th>
              <th class="num">versions</th>
              <th>updated</th>
            </tr>
          </thead>
          <tbody>
            {prompts.map((p) => (
              <tr key={p.name} data-prompt={p.name}>
                <td>
                  <a href={`/prompts/${encodeURIComponent(p.name)}`}>{p.name}</a>
                </td>
                <td class="mono">{p.prompt_version}</td>
                <td class="num">{p.versions}</td>
                <td>{formatTime(p.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : load.loading ? (
        <p class="muted">Loading…</p>
      ) : null}
    </section>
  );
}

/** A version as the diff compares it: its messages in order, then its params. */
export function renderPromptVersion(v: PromptVersion): string {
  const messages = v.messages.map((m) => `[${m.role}]\n${m.content}`).join('\n\n');
  return `${messages}\n\n[params]\n${JSON.stringify(v.params, null, 2)}\n`;
}

/**
 * A prompt's versions, newest first, and the difference between two of them (`?from=&to=` in the
 * URL; by default the previous version against the latest), by line or by word.
 */
export function PromptPage({ name }: { name?: string }) {
  const promptName = name ?? '';
  const { query: params, path, route } = useLocation();
  const load = useLoad(() => getJson<{ versions: PromptVersion[] }>(`/v1/prompts/${encodeURIComponent(promptName)}/versions`), promptName);
  const versions = load.data?.versions ?? [];
  const byNumber = (n: string | undefined) => versions.find((v) => String(v.version) === n);
  const to = byNumber(params.to) ?? versions[0];
  const from = byNumber(params.from) ?? versions.find((v) => to && v.version < to.version) ?? to;
  const mode = params.mode === 'words' ? 'words' : 'lines';
  const go = (next: { from?: number | undefined; to?: number | undefined; mode?: string }) =>
    route(`${path}${query({ from: next.from ?? from?.version, to: next.to ?? to?.version, mode: (next.mode ?? mode) === 'words' ? 'words' : undefined })}`, true);

  return (
    <section class="eval-page">
      <p class="crumb-line">
        <a href="/prompts">Prompts</a> /
      </p>
      <h1>{promptName}</h1>
      <ErrorBox error={load.error} />
      {load.loading && !load.data ? <p class="muted">Loading…</p> : null}
      {versions.length > 0 ? (
        <>
          <div class="panel">
            <h2>Versions</h2>
            <table class="version-table">
              <thead>
                <tr>
                  <th>version</th>
                  <th>description</th>
                  <th>messages</th>
                  <th>content hash</th>
                  <th>created</th>
                  <th>compare</th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => (
                  <tr key={v.version} data-version={v.version} class={v.version === to?.version || v.version === from?.version ? 'selected-row' : ''}>
                    <td class="mono">{v.prompt_version}</td>
                    <td>{v.description ?? <span class="muted">—</span>}</td>
                    <td>{v.messages.map((m) => m.role).join(', ')}</td>
                    <td class="mono muted" title={v.content_hash}>
                      {v.content_hash.slice(0, 12)}…
                    </td>
                    <td>{formatTime(v.created_at)}</td>
                    <td class="nowrap-cell">
                      <button type="button" class="link-button" disabled={v.version === from?.version} onClick={() => go({ from: v.version })}>
                        as old
                      </button>{' '}
                      <button type="button" class="link-button" disabled={v.version === to?.version} onClick={() => go({ to: v.version })}>
                        as new
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {from && to ? (
            <div class="panel">
              <div class="diff-head">
                <h2>
                  {from.prompt_version} → {to.prompt_version}
                </h2>
                <VersionSelect label="old" name="from" versions={versions} selected={from} onSelect={(version) => go({ from: version })} />
                <VersionSelect label="new" name="to" versions={versions} selected={to} onSelect={(version) => go({ to: version })} />
                <span class="mode-switch">
                  <button type="button" class={mode === 'lines' ? 'primary' : ''} onClick={() => go({ mode: 'lines' })}>
                    by line
                  </button>
                  <button type="button" class={mode === 'words' ? 'primary' : ''} onClick={() => go({ mode: 'words' })}>
                    by word
                  </button>
                </span>
              </div>
              {from.version === to.version ? <p class="muted">Only one version is chosen: its content is shown below.</p> : null}
              <TextDiff before={renderPromptVersion(from)} after={renderPromptVersion(to)} mode={mode} label={`diff ${from.prompt_version} to ${to.prompt_version}`} />
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

/** One side of the diff: a labelled choice among the prompt's versions. */
function VersionSelect(props: { label: string; name: string; versions: PromptVersion[]; selected: PromptVersion; onSelect: (version: number) => void }) {
  return (
    <label>
      {props.label}{' '}
      <select name={props.name} value={String(props.selected.version)} onChange={(e) => props.onSelect(Number((e.target as HTMLSelectElement).value))}>
        {props.versions.map((v) => (
          <option key={v.version} value={String(v.version)}>
            {v.prompt_version}
          </option>
        ))}
      </select>
    </label>
  );
}
