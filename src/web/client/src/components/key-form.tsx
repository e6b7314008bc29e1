import { useState } from 'preact/hooks';
import { storedKey, storeKey } from '../api.ts';

/**
 * Where the API key is entered: the dashboard uses the API with the same auth as any client.
 * Shown in the header; opened by itself when the API answers 401.
 */
export function KeyForm(props: { needed: boolean; onClose: () => void }) {
  const [value, setValue] = useState('');
  const has = storedKey() !== null;
  return (
    <form
      class="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        storeKey(value.trim() || null);
        setValue('');
        props.onClose();
      }}
    >
      {props.needed ? <p class="warn">The API needs a key: an operator creates one with <code>evalops apikey create</code>.</p> : null}
      <label>
        API key{' '}
        <input type="password" name="api-key" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} placeholder={has ? 'a key is stored' : 'evk_…'} />
      </label>
      <button type="submit" class="primary">
        Use key
      </button>
      {has ? (
        <button
          type="button"
          onClick={() => {
            storeKey(null);
            props.onClose();
          }}
        >
          Forget key
        </button>
      ) : null}
    </form>
  );
}
