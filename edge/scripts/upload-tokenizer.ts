// Uploads a model's CLIP tokenizer files into the TOKENIZERS KV namespace under `<name>/<file>`, with their compiled form
// `<name>/tokenizer.sdtk` (what the edge's tokenizer-store loads first: no 3 MB of JSON to parse on an isolate's first
// create). Usage: npm run -s tokenizer:upload -w edge -- --name N --dir DIR [--namespace-id ID] [--account-id ID]
// [--local] [--persist-to DIR]. DIR is a diffusers export's tokenizer/ folder; --local writes wrangler dev's local KV,
// otherwise the deployed one; --namespace-id names the namespace directly (a deployment's TOKENIZERS id from
// `terraform output kv_namespace_ids`) instead of through edge/wrangler.jsonc's binding and its placeholder id.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClipTokenizer } from '@sd/shared/tokenizer/index';

const FILES = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'] as const;
const REQUIRED = new Set(['vocab.json', 'merges.txt']);
// As TOKENIZER_FILES.compiled in edge/src/embeddings/tokenizer-store.ts.
const COMPILED = 'tokenizer.sdtk';

function fail(message: string): never {
  console.error(`tokenizer:upload: ${message}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    dir: { type: 'string' },
    local: { type: 'boolean', default: false },
    'persist-to': { type: 'string' },
    'namespace-id': { type: 'string' },
    'account-id': { type: 'string' },
  },
});
const namespaceId = values['namespace-id'];
if (namespaceId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(namespaceId))
  fail(`--namespace-id must be a KV namespace id (terraform output kv_namespace_ids), got ${JSON.stringify(namespaceId)}`);
if (namespaceId !== undefined && !values.local && !/^[0-9a-f]{32}$/.test(namespaceId))
  fail(`--namespace-id of a deployed namespace must be 32 hex characters, got ${JSON.stringify(namespaceId)}`);
if (values['account-id'] !== undefined && values.local) fail('--account-id only applies to the deployed namespace');
const name = values.name ?? fail('--name is required (the model\'s "tokenizer" in MODELS)');
if (!/^[A-Za-z0-9._-]+$/.test(name)) fail(`--name must be letters, digits, . _ -, got ${JSON.stringify(name)}`);
const dir = values.dir ?? fail('--dir is required (a folder with vocab.json and merges.txt)');

const entries: { key: string; value: string }[] = [];
const texts: Record<string, string> = {};
for (const file of FILES) {
  const path = join(dir, file);
  if (!existsSync(path)) {
    if (REQUIRED.has(file)) fail(`${path} is missing`);
    continue;
  }
  texts[file] = readFileSync(path, 'utf8');
  entries.push({ key: `${name}/${file}`, value: texts[file] });
}
// Refuse files the edge could not load, before they reach KV.
const tokenizer = ClipTokenizer.fromFiles({
  vocab: texts['vocab.json'],
  merges: texts['merges.txt'],
  tokenizerConfig: texts['tokenizer_config.json'],
  specialTokensMap: texts['special_tokens_map.json'],
});

const compiled = tokenizer.compile();
// The compiled form must tokenize exactly as the files do (the tests prove it on the goldens; this guards the upload).
const probe = 'a photo of an astronaut riding a horse, (detailed:1.2) 日本 😀 BREAK 4k';
if (JSON.stringify(ClipTokenizer.fromCompiled(compiled).encodeBpe(probe)) !== JSON.stringify(tokenizer.encodeBpe(probe))) {
  fail('the compiled tokenizer disagrees with the files on a probe prompt; not uploading');
}

const work = mkdtempSync(join(tmpdir(), 'tokenizer-upload-'));
try {
  const bulk = join(work, 'bulk.json');
  writeFileSync(bulk, JSON.stringify(entries));
  const edgeDir = join(dirname(fileURLToPath(import.meta.url)), '..');
  const wranglerBin = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
  const target = [
    ...(namespaceId ? ['--namespace-id', namespaceId] : ['--binding', 'TOKENIZERS']),
    values.local ? '--local' : '--remote',
    ...(values['persist-to'] ? ['--persist-to', resolve(values['persist-to'])] : []),
  ];
  const wrangler = (args: string[]) => {
    const run = spawnSync(process.execPath, [wranglerBin, 'kv', ...args, ...target], {
      cwd: edgeDir,
      stdio: 'inherit',
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: 'false',
        ...(values['account-id'] ? { CLOUDFLARE_ACCOUNT_ID: values['account-id'] } : {}),
      },
    });
    if (run.status !== 0) fail(`wrangler kv ${args.slice(0, 2).join(' ')} exited with ${run.status}`);
  };
  wrangler(['bulk', 'put', bulk]);
  // Binary by file, not in the bulk JSON: wrangler 4.86's local bulk put stores a base64 value's bytes as UTF-8 text
  // (every byte over 0x7f becomes U+FFFD); key put --path writes the bytes as they are.
  const bin = join(work, COMPILED);
  writeFileSync(bin, compiled);
  wrangler(['key', 'put', `${name}/${COMPILED}`, '--path', bin]);
  console.log(
    `uploaded ${entries.length} files and their compiled form (${compiled.length} bytes) as tokenizer ${name} to ${namespaceId ? `namespace ${namespaceId}` : 'binding TOKENIZERS'} (vocabulary of ${tokenizer.vocabSize} tokens, windows of ${tokenizer.modelMaxLength})`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
