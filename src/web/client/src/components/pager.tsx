/** Previous/next paging for lists paged on the server. */
export function Pager(props: { label: string; canPrevious: boolean; canNext: boolean; onPrevious: () => void; onNext: () => void }) {
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" disabled={!props.canPrevious} onClick={props.onPrevious}>
        ← Previous
      </button>
      <span class="pager-label">{props.label}</span>
      <button type="button" disabled={!props.canNext} onClick={props.onNext}>
        Next →
      </button>
    </nav>
  );
}
