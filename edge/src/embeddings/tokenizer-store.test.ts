// The tokenizer store inside workerd with the real TOKENIZERS namespace: the compiled form first, the files as the
// fallback (missing or unreadable compiled form), and the same ids either way.
import { env } from 'cloudflare:workers';
import { buildDefaultVocabulary, tokenizerFiles } from '@sd/gpu-runner/default-model/vocabulary';
import { ClipTokenizer } from '@sd/shared/tokenizer/index';
import { beforeEach, describe, expect, it } from 'vitest';
import { clearTokenizerCache, loadTokenizer, TOKENIZER_FILES, TokenizerMissingError } from './tokenizer-store.ts';

const files = tokenizerFiles(buildDefaultVocabulary());
const reference = ClipTokenizer.fromFiles({ vocab: files['vocab.json'], merges: files['merges.txt'] });
const PROMPT = 'a lighthouse at dusk, (oil painting:1.3) BREAK waves';
const unique = () => `test-${crypto.randomUUID()}`;

async function putFiles(name: string): Promise<void> {
  for (const [file, text] of Object.entries(files)) await env.TOKENIZERS.put(`${name}/${file}`, text);
}

describe('loadTokenizer', () => {
  beforeEach(() => clearTokenizerCache());

  it('loads the compiled form alone (no files uploaded) and tokenizes as the files do', async () => {
    const name = unique();
    await env.TOKENIZERS.put(`${name}/${TOKENIZER_FILES.compiled}`, reference.compile());
    const t = await loadTokenizer(env.TOKENIZERS, name);
    expect(t.tokenizePrompt(PROMPT, { mode: 'chunk' })).toEqual(reference.tokenizePrompt(PROMPT, { mode: 'chunk' }));
  });

  it('prefers the compiled form over the files', async () => {
    const name = unique();
    await putFiles(name);
    // A compiled tokenizer of another window length under the same name: the store must have read it.
    const other = ClipTokenizer.fromFiles({
      vocab: files['vocab.json'],
      merges: files['merges.txt'],
      tokenizerConfig: '{"model_max_length": 20}',
    });
    await env.TOKENIZERS.put(`${name}/${TOKENIZER_FILES.compiled}`, other.compile());
    expect((await loadTokenizer(env.TOKENIZERS, name)).modelMaxLength).toBe(20);
  });

  it('falls back to the files when the compiled form is missing or of another format version', async () => {
    const name = unique();
    await putFiles(name);
    expect((await loadTokenizer(env.TOKENIZERS, name)).encodeBpe(PROMPT)).toEqual(reference.encodeBpe(PROMPT));
    clearTokenizerCache();
    const stale = reference.compile();
    new DataView(stale.buffer).setUint32(4, 999, true);
    await env.TOKENIZERS.put(`${name}/${TOKENIZER_FILES.compiled}`, stale);
    expect((await loadTokenizer(env.TOKENIZERS, name)).encodeBpe(PROMPT)).toEqual(reference.encodeBpe(PROMPT));
  });

  it('names what to upload when neither is there', async () => {
    const name = unique();
    await expect(loadTokenizer(env.TOKENIZERS, name)).rejects.toThrow(TokenizerMissingError);
    await expect(loadTokenizer(env.TOKENIZERS, name)).rejects.toThrow(/needs .*vocab\.json and .*merges\.txt/);
  });
});
