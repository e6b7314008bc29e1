import { JOB_STATUSES } from '../ops-types.ts';

/** The jobs list's filters, as they appear in the URL's query string. */
export interface JobFilterValues {
  status?: string | undefined;
  type?: string | undefined;
  since?: string | undefined;
}

const SINCE_OPTIONS: [string, string][] = [
  ['', 'any time'],
  ['15m', 'last 15 min'],
  ['1h', 'last hour'],
  ['6h', 'last 6 hours'],
  ['24h', 'last 24 hours'],
  ['7d', 'last 7 days'],
];

/**
 * Status, type and creation-time filters. Each change applies at once (the type when the field is
 * left or Enter is pressed); the page keeps them in the URL so a link reproduces the view.
 */
export function JobFilters(props: { values: JobFilterValues; onChange: (values: JobFilterValues) => void }) {
  const { values } = props;
  const set = (patch: JobFilterValues) => props.onChange({ ...values, ...patch });
  const statusKnown = !values.status || (JOB_STATUSES as readonly string[]).includes(values.status);
  const sinceKnown = SINCE_OPTIONS.some(([v]) => v === (values.since ?? ''));
  return (
    <form
      class="toolbar job-filters"
      onSubmit={(e) => {
        e.preventDefault();
        const type = (e.currentTarget.elements.namedItem('type') as HTMLInputElement | null)?.value.trim();
        set({ type: type || undefined });
      }}
    >
      <label>
        status
        <select name="status" value={values.status ?? ''} onChange={(e) => set({ status: (e.target as HTMLSelectElement).value || undefined })}>
          <option value="">any status</option>
          {JOB_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
          {statusKnown ? null : <option value={values.status}>{values.status}</option>}
        </select>
      </label>
      <label>
        type
        {/* Not controlled: a refresh of the page must not wipe what is being typed; keyed so a new URL resets it. */}
        <input
          key={values.type ?? ''}
          name="type"
          type="search"
          placeholder="noop, sleep, evaluation…"
          defaultValue={values.type ?? ''}
          onChange={(e) => set({ type: (e.target as HTMLInputElement).value.trim() || undefined })}
        />
      </label>
      <label>
        created
        <select name="since" value={values.since ?? ''} onChange={(e) => set({ since: (e.target as HTMLSelectElement).value || undefined })}>
          {SINCE_OPTIONS.map(([v, label]) => (
            <option key={v} value={v}>
              {label}
            </option>
          ))}
          {sinceKnown ? null : <option value={values.since}>since {values.since}</option>}
        </select>
      </label>
      {values.status || values.type || values.since ? (
        <button type="button" onClick={() => props.onChange({})}>
          Clear filters
        </button>
      ) : null}
    </form>
  );
}
