/** A coloured status word: job and run statuses, health statuses, pass/fail. */
export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status.replace(/[^a-z_]/gi, '')}`}>{status}</span>;
}
