// Loads a model's CLIP tokenizer from the TOKENIZERS KV namespace and keeps it in isolate memory: the compiled form
// `<name>/tokenizer.sdtk` when present (typed-array views of one KV value), else the files it was compiled from
// (`<name>/vocab.json`, `<name>/merges.txt`, optional `<name>/tokenizer_config.json`, `<name>/special_tokens_map.json`).
import { ClipTokenizer, CompiledTokenizerError } from '@sd/shared/tokenizer/index';
import { errorFields, logger } from '../log.ts';

export const TOKENIZER_FILES = {
  compiled: 'tokenizer.sdtk',
  vocab: 'vocab.json',
  merges: 'merges.txt',
  tokenizerConfig: 'tokenizer_config.json',
  specialTokensMap: 'special_tokens_map.json',
} as const;

// One build per isolate and name: even the compiled form costs a KV read and a table build, a request should not pay it twice.
const loaded = new Map<string, Promise<ClipTokenizer>>();

export class TokenizerMissingError extends Error {
  override name = 'TokenizerMissingError';
}

async function fromFiles(kv: KVNamespace, name: string): Promise<ClipTokenizer> {
  const [vocab, merges, tokenizerConfig, specialTokensMap] = await Promise.all([
    kv.get(`${name}/${TOKENIZER_FILES.vocab}`, 'text'),
    kv.get(`${name}/${TOKENIZER_FILES.merges}`, 'text'),
    kv.get(`${name}/${TOKENIZER_FILES.tokenizerConfig}`, 'text'),
    kv.get(`${name}/${TOKENIZER_FILES.specialTokensMap}`, 'text'),
  ]);
  if (vocab === null || merges === null) {
    throw new TokenizerMissingError(
      `tokenizer ${JSON.stringify(name)} is not in KV TOKENIZERS (needs ${name}/${TOKENIZER_FILES.compiled}, or ${name}/vocab.json and ${name}/merges.txt; upload with npm run tokenizer:upload)`,
    );
  }
  return ClipTokenizer.fromFiles({
    vocab,
    merges,
    tokenizerConfig: tokenizerConfig ?? undefined,
    specialTokensMap: specialTokensMap ?? undefined,
  });
}

async function build(kv: KVNamespace, name: string): Promise<ClipTokenizer> {
  const compiled = await kv.get(`${name}/${TOKENIZER_FILES.compiled}`, 'arrayBuffer');
  if (compiled !== null) {
    try {
      return ClipTokenizer.fromCompiled(new Uint8Array(compiled));
    } catch (err) {
      if (!(err instanceof CompiledTokenizerError)) throw err;
      // E.g. written by an older upload script: the files still give the same tokenizer, only slower to load.
      logger({ component: 'tokenizer' }).warn('compiled tokenizer unusable; loading its files (re-run tokenizer:upload)', {
        tokenizer: name,
        ...errorFields(err),
      });
    }
  }
  return fromFiles(kv, name);
}

/** The tokenizer named `name`; throws TokenizerMissingError when neither its compiled form nor its files are uploaded. */
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
