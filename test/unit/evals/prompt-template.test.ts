import { describe, expect, it } from 'vitest';
import {
  parsePromptFile,
  parsePromptVersion,
  promptVersion,
  renderMessages,
  templateVariables,
  TemplateError,
  type ChatMessage,
} from '../../../src/evals/prompt-template.ts';
import { EvalValidationError } from '../../../src/evals/eval-errors.ts';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You answer about {{ topic }}.' },
  { role: 'user', content: 'Q: {{question}} (user {{user.name}}, item {{items.1}}) {{question}}' },
];

describe('renderMessages', () => {
  it('substitutes plain, spaced, dotted and indexed placeholders', () => {
    const out = renderMessages(messages, {
      topic: 'maths',
      question: '2+2?',
      user: { name: 'Ada' },
      items: ['a', 'b'],
    });
    expect(out).toEqual([
      { role: 'system', content: 'You answer about maths.' },
      { role: 'user', content: 'Q: 2+2? (user Ada, item b) 2+2?' },
    ]);
  });

  it('renders non-string values as canonical JSON and falls back to literal dotted keys', () => {
    const out = renderMessages([{ role: 'user', content: '{{n}} {{obj}} {{a.b}}' }], { n: 3, obj: { z: 1, a: [true] }, 'a.b': 'flat' });
    expect(out[0]?.content).toBe('3 {"a":[true],"z":1} flat');
  });

  it('leaves text that is not a placeholder alone', () => {
    const out = renderMessages([{ role: 'user', content: 'json {{ }} and {{1x}} and {x}' }], {});
    expect(out[0]?.content).toBe('json {{ }} and {{1x}} and {x}');
  });

  it('throws one TemplateError naming every missing variable, not retryable', () => {
    let caught: unknown;
    try {
      renderMessages(messages, { question: 'q' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TemplateError);
    const error = caught as TemplateError;
    expect(error.code).toBe('VALIDATION');
    expect(error.retryable).toBe(false);
    expect(error.missing).toEqual(['topic', 'user.name', 'items.1']);
    expect(error.message).toBe("prompt template is missing variables 'topic', 'user.name', 'items.1'");
  });

  it('treats null as present and undefined as missing', () => {
    expect(renderMessages([{ role: 'user', content: '{{a}}' }], { a: null })[0]?.content).toBe('null');
    expect(() => renderMessages([{ role: 'user', content: '{{a}}' }], { a: undefined })).toThrow(TemplateError);
  });
});

describe('templateVariables', () => {
  it('lists the names in order of first use without duplicates', () => {
    expect(templateVariables(messages)).toEqual(['topic', 'question', 'user.name', 'items.1']);
  });
});

describe('prompt versions', () => {
  it('formats and parses name@N', () => {
    expect(promptVersion('qa', 3)).toBe('qa@3');
    expect(parsePromptVersion('qa.v2-x@12')).toEqual({ name: 'qa.v2-x', version: 12 });
    expect(parsePromptVersion('qa@0')).toBeNull();
    expect(parsePromptVersion('QA@1')).toBeNull();
    expect(parsePromptVersion('qa')).toBeNull();
  });
});

describe('parsePromptFile', () => {
  const yaml = [
    'name: qa-prompt',
    'messages:',
    '  - role: system',
    '    content: Be brief.',
    '  - role: user',
    '    content: "{{question}}"',
    'params:',
    '  temperature: 0',
  ].join('\n');

  it('reads YAML and JSON to the same definition', () => {
    const fromYaml = parsePromptFile(yaml, 'prompts/qa.yaml');
    const fromJson = parsePromptFile(JSON.stringify(fromYaml), 'qa.json');
    expect(fromYaml).toEqual({
      name: 'qa-prompt',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: '{{question}}' },
      ],
      params: { temperature: 0 },
    });
    expect(fromJson).toEqual(fromYaml);
  });

  it('defaults params to an empty object', () => {
    expect(parsePromptFile('{"name":"a","messages":[{"role":"user","content":"hi"}]}', 'a.json').params).toEqual({});
  });

  it('names the invalid fields', () => {
    const bad = JSON.stringify({ name: 'Bad Name', messages: [{ role: 'robot', content: 'x' }], extra: 1 });
    let caught: unknown;
    try {
      parsePromptFile(bad, 'bad.json');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EvalValidationError);
    const problems = (caught as EvalValidationError).problems.join('\n');
    expect(problems).toMatch(/^name: must be 1-100 characters/m);
    expect(problems).toMatch(/^messages\.0\.role: /m);
    expect(problems).toMatch(/extra/);
    expect((caught as Error).message).toMatch(/^bad\.json is not a valid prompt definition/);
  });

  it('requires at least one message', () => {
    expect(() => parsePromptFile('name: a\nmessages: []\n', 'a.yml')).toThrow(/messages: must hold at least one message/);
  });

  it('reports syntax errors with the file and line', () => {
    expect(() => parsePromptFile('name: a\nmessages: [\n  - x: : :\n', 'broken.yaml')).toThrow(/^broken\.yaml: not valid YAML at line \d+/);
    expect(() => parsePromptFile('{"name": ', 'broken.json')).toThrow(/^broken\.json: not valid JSON/);
  });
});
