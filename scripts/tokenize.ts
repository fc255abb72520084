// `npm run -s tokenize -- [--tokenizer DIR] [--mode truncate|chunk] [--no-weights]`: reads one JSON string per
// line on stdin and writes one JSON object per line ({ids, weights, tokens, truncated}) for debugging prompts.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { errorMessage } from '@sd/shared/error-message';
import { DEFAULT_MODEL_DIR } from '../gpu-runner/src/default-model/write-model.ts';
import { ClipTokenizer, type LongPromptMode } from '../shared/src/tokenizer/index.ts';

/** The embedded default model's tokenizer: what the local stack's edge and runner use. */
const DEFAULT_TOKENIZER_DIR = join(DEFAULT_MODEL_DIR, 'tokenizer');

const USAGE = 'usage: npm run -s tokenize -- [--tokenizer DIR] [--mode truncate|chunk] [--no-weights] < prompts.jsonl';
const HELP = `${USAGE}

Reads one JSON string per line on stdin (e.g. "a red circle") and writes one JSON object per line:
{"ids": [...], "weights": [...], "tokens": N, "truncated": false}.

  --tokenizer DIR   a diffusers tokenizer/ folder (vocab.json, merges.txt); default: the embedded model's,
                    ${relative(process.cwd(), DEFAULT_TOKENIZER_DIR) || DEFAULT_TOKENIZER_DIR}
  --mode MODE       truncate (diffusers: one window of 77 ids, printed flat; the default) or chunk (AUTOMATIC1111:
                    75-token windows; what the API does unless its input says prompt_mode "truncate")
  --no-weights      take "(word:1.3)" literally instead of as a prompt weight
  -h, --help        this text

Example: echo '"a (red:1.3) circle"' | npm run -s tokenize
`;

interface CliOptions {
  help?: boolean;
  tokenizerDir: string;
  mode: LongPromptMode;
  weighting: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): CliOptions {
  let tokenizerDir: string | undefined;
  let mode: LongPromptMode = 'truncate';
  let weighting = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--tokenizer':
        tokenizerDir = value();
        break;
      case '--mode': {
        const m = value();
        if (m !== 'truncate' && m !== 'chunk') throw new UsageError(`--mode must be truncate or chunk, got ${JSON.stringify(m)}`);
        mode = m;
        break;
      }
      case '--no-weights':
        weighting = false;
        break;
      case '--help':
      case '-h':
        return { help: true, tokenizerDir: '', mode, weighting };
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  tokenizerDir ??= DEFAULT_TOKENIZER_DIR;
  for (const file of ['vocab.json', 'merges.txt']) {
    if (!existsSync(join(tokenizerDir, file))) {
      throw new UsageError(`--tokenizer ${JSON.stringify(tokenizerDir)} has no ${file} (expected a model's tokenizer/ folder)`);
    }
  }
  return { tokenizerDir, mode, weighting };
}

function loadTokenizer(dir: string): ClipTokenizer {
  const optional = (name: string): string | undefined => {
    const path = join(dir, name);
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  };
  return ClipTokenizer.fromFiles({
    vocab: readFileSync(join(dir, 'vocab.json'), 'utf8'),
    merges: readFileSync(join(dir, 'merges.txt'), 'utf8'),
    tokenizerConfig: optional('tokenizer_config.json'),
    specialTokensMap: optional('special_tokens_map.json'),
  });
}

function tokenizeLine(tokenizer: ClipTokenizer, options: CliOptions, line: string, lineNo: number): string {
  let prompt: unknown;
  try {
    prompt = JSON.parse(line);
  } catch {
    return JSON.stringify({
      error: `line ${lineNo} must be a JSON string, got invalid JSON: ${line.slice(0, 60)}`,
      line: lineNo,
    });
  }
  if (typeof prompt !== 'string') {
    return JSON.stringify({
      error: `line ${lineNo} must be a JSON string, got ${prompt === null ? 'null' : typeof prompt}`,
      line: lineNo,
    });
  }
  const out = tokenizer.tokenizePrompt(prompt, { mode: options.mode, weighting: options.weighting });
  // Truncate mode has exactly one window: print it flat, as the 77 ids a pipeline feeds the text encoder.
  const flat = options.mode === 'truncate';
  return JSON.stringify({
    ids: flat ? out.ids[0] : out.ids,
    weights: flat ? out.weights[0] : out.weights,
    tokens: out.tokenCount,
    truncated: out.truncated,
  });
}

async function main(): Promise<void> {
  let options: CliOptions;
  let tokenizer: ClipTokenizer;
  try {
    options = parseArgs(process.argv.slice(2));
    if (options.help) {
      process.stdout.write(HELP);
      process.exit(0);
    }
    tokenizer = loadTokenizer(options.tokenizerDir);
  } catch (err) {
    const message = err instanceof UsageError ? `${err.message}\n${USAGE}` : `cannot load tokenizer: ${errorMessage(err)}`;
    process.stderr.write(`tokenize: ${message.split('\n')[0]}\n`);
    process.exit(2);
  }

  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0); // the reader went away (| head): nothing left to do
    throw err;
  });
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    process.stdout.write(`${tokenizeLine(tokenizer, options, line, lineNo)}\n`);
  }
}

await main();
