import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { getJson, getNdjson, query } from '../api.ts';
import { DownloadLink } from '../components/file-downloads.tsx';
import { ErrorBox } from '../components/error-box.tsx';
import { Pager } from '../components/pager.tsx';
import { asText, datasetHref, shortSnapshot } from '../eval-display.ts';
import type { DatasetRow, DatasetSnapshot } from '../eval-types.ts';
import { formatBytes, formatNumber, formatTime } from '../format.ts';
import { useLoad } from '../hooks.ts';

const PREVIEW_ROWS = 50;
/** Vars shown as their own columns; more than this and vars are shown as one JSON column. */
const MAX_VAR_COLUMNS = 6;

/** Dataset snapshots, newest first, with their row counts. */
export function DatasetsPage() {
  const load = useLoad(() => getJson<{ datasets: DatasetSnapshot[] }>('/v1/datasets?limit=1000'), 'datasets');
  const datasets = load.data?.datasets ?? [];
  return (
    <section class="eval-page">
      <h1>Datasets</h1>
      <ErrorBox error={load.error} />
      {load.data && datasets.length === 0 ? <p class="muted">No dataset snapshot yet: push one with evalops dataset push FILE or POST /v1/datasets.</p> : null}
      {datasets.length > 0 ? (
        <table class="dataset-table">
          <thead>
            <tr>
              <th>snapshot</th>
              <th>name</th>
              <th>format</th>
              <th class="num">rows</th>
              <th class="num">size</th>
              <th>created</th>
            </tr>
          </thead>
          <tbody>
            {datasets.map((d) => (
              <tr key={d.data_snapshot_id} data-snapshot={d.data_snapshot_id}>
                <td>
                  <a class="mono" href={datasetHref(d.data_snapshot_id)} title={d.data_snapshot_id}>
                    {shortSnapshot(d.data_snapshot_id)}
                  </a>
                </td>
                <td>{d.name ?? <span class="muted">—</span>}</td>
                <td>{d.source_format}</td>
                <td class="num">{formatNumber(d.row_count)}</td>
                <td class="num">{formatBytes(d.byte_count)}</td>
                <td>{formatTime(d.created_at)}</td>
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

/**
 * One snapshot: its facts and a preview of its rows, read from the server a page at a time
 * (GET /v1/datasets/:id/rows?offset=&limit=, which stops reading after the page).
 */
export function DatasetPage({ id }: { id?: string }) {
  const snapshotId = id ?? '';
  const { query: params, path, route } = useLocation();
  const offset = Math.max(0, Math.floor(Number(params.offset) || 0));
  const snapshot = useLoad(() => getJson<DatasetSnapshot>(`/v1/datasets/${encodeURIComponent(snapshotId)}`), snapshotId);
  const rowsUrl = `/v1/datasets/${encodeURIComponent(snapshotId)}/rows${query({ offset, limit: PREVIEW_ROWS })}`;
  const rows = useLoad(() => getNdjson<DatasetRow>(rowsUrl), rowsUrl);
  const [downloadError, setDownloadError] = useState<Error | undefined>(undefined);
  const d = snapshot.data;

  return (
    <section class="eval-page">
      <p class="crumb-line">
        <a href="/datasets">Datasets</a> /
      </p>
      <h1>
        Dataset snapshot {d?.name ? <span>“{d.name}”</span> : null}
      </h1>
      <ErrorBox error={snapshot.error} />
      {d ? (
        <div class="panel">
          <dl class="facts">
            <dt>id</dt>
            <dd class="mono">{d.data_snapshot_id}</dd>
            <dt>rows</dt>
            <dd>{formatNumber(d.row_count)}</dd>
            <dt>size</dt>
            <dd>{formatBytes(d.byte_count)} of canonical JSONL</dd>
            <dt>uploaded as</dt>
            <dd>{d.source_format}</dd>
            <dt>created</dt>
            <dd>{formatTime(d.created_at)}</dd>
            <dt>content</dt>
            <dd>
              <DownloadLink href={`/v1/datasets/${encodeURIComponent(d.data_snapshot_id)}/rows`} name={`${d.data_snapshot_id.slice(7, 19)}.jsonl`} label="download the rows (JSONL)" onError={setDownloadError} />
            </dd>
          </dl>
          <ErrorBox error={downloadError} />
        </div>
      ) : null}
      <div class="panel">
        <h2>Preview</h2>
        <ErrorBox error={rows.error} />
        {rows.data ? <PreviewTable rows={rows.data} offset={offset} /> : rows.loading ? <p class="muted">Loading rows…</p> : null}
        {d && d.row_count > PREVIEW_ROWS ? (
          <Pager
            label={`Rows ${formatNumber(Math.min(offset + 1, d.row_count))}–${formatNumber(Math.min(offset + PREVIEW_ROWS, d.row_count))} of ${formatNumber(d.row_count)}`}
            canPrevious={offset > 0}
            canNext={offset + PREVIEW_ROWS < d.row_count}
            onPrevious={() => route(`${path}${query({ offset: Math.max(0, offset - PREVIEW_ROWS) || undefined })}`)}
            onNext={() => route(`${path}${query({ offset: offset + PREVIEW_ROWS })}`)}
          />
        ) : null}
      </div>
    </section>
  );
}

function PreviewTable({ rows, offset }: { rows: DatasetRow[]; offset: number }) {
  if (rows.length === 0) return <p class="muted">No rows here.</p>;
  const varNames = [...new Set(rows.flatMap((r) => Object.keys(r.vars ?? {})))];
  const spread = varNames.length <= MAX_VAR_COLUMNS;
  const hasExpected = rows.some((r) => r.expected !== undefined);
  const hasMetadata = rows.some((r) => r.metadata !== undefined);
  return (
    <table class="preview-table">
      <thead>
        <tr>
          <th class="num">#</th>
          <th>id</th>
          {spread ? varNames.map((v) => <th key={v}>{v}</th>) : <th>vars</th>}
          {hasExpected ? <th>expected</th> : null}
          {hasMetadata ? <th>metadata</th> : null}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={r.id} data-row-id={r.id}>
            <td class="num muted">{formatNumber(offset + i + 1)}</td>
            <td class="mono">{r.id}</td>
            {spread ? (
              varNames.map((v) => (
                <td key={v} class="preview-cell">
                  {r.vars?.[v] === undefined ? <span class="muted">—</span> : asText(r.vars[v])}
                </td>
              ))
            ) : (
              <td class="preview-cell">{asText(r.vars)}</td>
            )}
            {hasExpected ? <td class="preview-cell">{r.expected === undefined ? <span class="muted">—</span> : asText(r.expected)}</td> : null}
            {hasMetadata ? <td class="preview-cell muted">{r.metadata === undefined ? '—' : asText(r.metadata)}</td> : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
