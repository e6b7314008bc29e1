import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { getJson, query } from '../api.ts';
import { ErrorBox } from '../components/error-box.tsx';
import { type JobFilterValues, JobFilters } from '../components/job-filters.tsx';
import { JobTable } from '../components/job-table.tsx';
import { Pager } from '../components/pager.tsx';
import { useLoad } from '../hooks.ts';
import type { JobPage } from '../ops-types.ts';

const DEFAULT_PAGE_SIZE = 25;
const AUTO_REFRESH_MS = 5000;

/**
 * The cursors of the pages visited, in order, per set of filters ('' is the first page). Kept for the
 * whole visit, so coming back from a job's page (or with the browser's back button) still knows the
 * way to the previous pages: the API itself only pages forward. A link straight to a later page
 * starts a trail whose distance from the first page is unknown.
 */
interface Trail {
  cursors: string[];
  fromStart: boolean;
}
const trails = new Map<string, Trail>();

/** The trail through `cursor` for these filters, and where the cursor sits on it. */
function trailAt(filterKey: string, cursor: string): { trail: Trail; at: number } {
  let trail = trails.get(filterKey);
  if (!trail || !trail.cursors.includes(cursor)) {
    trail = cursor === '' ? { cursors: [''], fromStart: true } : { cursors: [cursor], fromStart: false };
    trails.set(filterKey, trail);
  }
  return { trail, at: trail.cursors.indexOf(cursor) };
}

function pageSize(value: string | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : DEFAULT_PAGE_SIZE;
}

/**
 * Jobs, newest first, paged on the server: filters and the page's cursor live in the URL, so a link
 * reproduces the view.
 */
export function JobsPage() {
  const { query: params, path, route } = useLocation();
  const filters: JobFilterValues = { status: params.status || undefined, type: params.type || undefined, since: params.since || undefined };
  const limit = pageSize(params.limit);
  const cursor = params.cursor ?? '';
  const filterKey = query({ ...filters, limit: params.limit });
  const [auto, setAuto] = useState(false);

  const { trail, at } = trailAt(filterKey, cursor);

  const go = (values: JobFilterValues, nextCursor?: string) =>
    route(`${path}${query({ ...values, limit: params.limit, cursor: nextCursor || undefined })}`);

  const load = useLoad(
    () => getJson<JobPage>(`/v1/jobs${query({ ...filters, limit, cursor: cursor || undefined })}`),
    `${filterKey}|${cursor}`,
    auto ? AUTO_REFRESH_MS : undefined,
  );
  const page = load.data;

  const next = () => {
    if (!page?.next_cursor) return;
    trail.cursors = [...trail.cursors.slice(0, at + 1), page.next_cursor];
    go(filters, page.next_cursor);
  };
  // Before the first page of a trail that began on a later page comes the first page itself.
  const previous = () => go(filters, at > 0 ? trail.cursors[at - 1] : undefined);

  const label = trail.fromStart ? `Page ${at + 1}` : at === 0 ? 'A later page' : `${at} page${at === 1 ? '' : 's'} after a linked page`;
  return (
    <section class="jobs-page">
      <div class="page-head">
        <h1>Jobs</h1>
        <label class="muted page-head-right">
          <input type="checkbox" name="auto-refresh" checked={auto} onChange={(e) => setAuto((e.target as HTMLInputElement).checked)} /> refresh every{' '}
          {AUTO_REFRESH_MS / 1000} s
        </label>
        <button type="button" onClick={load.reload} disabled={load.loading}>
          Refresh
        </button>
      </div>
      <JobFilters
        values={filters}
        onChange={(values) => {
          go(values);
        }}
      />
      <ErrorBox error={load.error} />
      {page ? (
        page.jobs.length ? (
          <JobTable jobs={page.jobs} />
        ) : (
          <p class="muted empty">No job matches these filters{cursor ? ' on this page' : ''}.</p>
        )
      ) : load.error ? null : (
        <p class="muted">loading…</p>
      )}
      <Pager
        label={page ? `${label} · ${page.jobs.length} job${page.jobs.length === 1 ? '' : 's'} · ${limit} per page` : label}
        canPrevious={cursor !== ''}
        canNext={Boolean(page?.next_cursor)}
        onPrevious={previous}
        onNext={next}
      />
    </section>
  );
}
