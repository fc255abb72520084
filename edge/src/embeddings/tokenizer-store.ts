// Loads a model's CLIP tokenizer files from the TOKENIZERS KV namespace (keys `<name>/vocab.json`, `<name>/merges.txt`,
// optional `<name>/tokenizer_config.json`, `<name>/special_tokens_map.json`) and keeps the built tokenizer in isolate memory.
import { ClipTokenizer } from '@sd/shared/tokenizer/index';

export const TOKENIZER_FILES = {
  vocab: 'vocab.json',
  merges: 'merges.txt',
  tokenizerConfig: 'tokenizer_config.json',
  specialTokensMap: 'special_tokens_map.json',
} as const;

// One build per isolate and name: the vocabulary parse costs tens of milliseconds, a request should not pay it twice.
const loaded = new Map<string, Promise<ClipTokenizer>>();

export class TokenizerMissingError extends Error {
  override name = 'TokenizerMissingError';
}

async function build(kv: KVNamespace, name: string): Promise<ClipTokenizer> {
  const [vocab, merges, tokenizerConfig, specialTokensMap] = await Promise.all([
    kv.get(`${name}/${TOKENIZER_FILES.vocab}`, 'text'),
    kv.get(`${name}/${TOKENIZER_FILES.merges}`, 'text'),
    kv.get(`${name}/${TOKENIZER_FILES.tokenizerConfig}`, 'text'),
    kv.get(`${name}/${TOKENIZER_FILES.specialTokensMap}`, 'text'),
  ]);
  if (vocab === null || merges === null) {
    throw new TokenizerMissingError(
      `tokenizer ${JSON.stringify(name)} is not in KV TOKENIZERS (needs ${name}/vocab.json and ${name}/merges.txt; upload with npm run tokenizer:upload)`,
    );
  }
  return ClipTokenizer.fromFiles({
    vocab,
    merges,
    tokenizerConfig: tokenizerConfig ?? undefined,
    specialTokensMap: specialTokensMap ?? undefined,
  });
}

/** The tokenizer named `name`; throws TokenizerMissingError when its files are not uploaded. */
export function loadTokenizer(kv: KVNamespace, name: string): Promise<ClipTokenizer> {
  let pending = loaded.get(name);
  if (!pending) {
    pending = build(kv, name);
    loaded.set(name, pending);
    // A failure is not cached: the files may be uploaded a moment later.
    pending.catch(() => loaded.delete(name));
  }
  return pending;
}

/** Forgets built tokenizers (tests that upload different files under one name). */
export function clearTokenizerCache(): void {
  loaded.clear();
}
