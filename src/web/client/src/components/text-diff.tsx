import { diffLines, diffWords } from 'diff';

/**
 * The difference between two texts: `lines` marks whole added and removed lines (+/-), `words`
 * marks changed words inline. Unchanged text stays plain.
 */
export function TextDiff(props: { before: string; after: string; mode: 'lines' | 'words'; label?: string }) {
  if (props.mode === 'words') {
    const parts = diffWords(props.before, props.after);
    return (
      <pre class="text-diff text-diff-words" aria-label={props.label}>
        {parts.map((part, i) => (
          <span key={i} class={part.added ? 'diff-add' : part.removed ? 'diff-del' : undefined}>
            {part.value}
          </span>
        ))}
      </pre>
    );
  }
  const rows: { sign: '+' | '-' | ' '; text: string }[] = [];
  for (const part of diffLines(props.before, props.after)) {
    const sign = part.added ? '+' : part.removed ? '-' : ' ';
    const lines = part.value.endsWith('\n') ? part.value.slice(0, -1).split('\n') : part.value.split('\n');
    for (const text of lines) rows.push({ sign, text });
  }
  return (
    <pre class="text-diff text-diff-lines" aria-label={props.label}>
      {rows.map((row, i) => (
        <div key={i} class={row.sign === '+' ? 'diff-line diff-add-line' : row.sign === '-' ? 'diff-line diff-del-line' : 'diff-line'}>
          <span class="diff-sign">{row.sign}</span>
          {row.text || ' '}
        </div>
      ))}
    </pre>
  );
}
