// Uploads a model's CLIP tokenizer files into the TOKENIZERS KV namespace under `<name>/<file>`, where the edge's
// tokenizer-store reads them. Usage: npm run -s tokenizer:upload -w edge -- --name N --dir DIR [--namespace-id ID]
// [--account-id ID] [--local] [--persist-to DIR]. DIR is a diffusers export's tokenizer/ folder; --local writes wrangler
// dev's local KV, otherwise the deployed one; --namespace-id names the namespace directly (a deployment's TOKENIZERS id
// from `terraform output kv_namespace_ids`) instead of through edge/wrangler.jsonc's binding and its placeholder id.
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

const work = mkdtempSync(join(tmpdir(), 'tokenizer-upload-'));
try {
  const bulk = join(work, 'bulk.json');
  writeFileSync(bulk, JSON.stringify(entries));
  const edgeDir = join(dirname(fileURLToPath(import.meta.url)), '..');
  const wranglerBin = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
  const args = [
    wranglerBin,
    'kv',
    'bulk',
    'put',
    bulk,
    ...(namespaceId ? ['--namespace-id', namespaceId] : ['--binding', 'TOKENIZERS']),
    values.local ? '--local' : '--remote',
  ];
  if (values['persist-to']) args.push('--persist-to', resolve(values['persist-to']));
  const run = spawnSync(process.execPath, args, {
    cwd: edgeDir,
    stdio: 'inherit',
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      ...(values['account-id'] ? { CLOUDFLARE_ACCOUNT_ID: values['account-id'] } : {}),
    },
  });
  if (run.status !== 0) fail(`wrangler kv bulk put exited with ${run.status}`);
  console.log(
    `uploaded ${entries.length} files as tokenizer ${name} to ${namespaceId ? `namespace ${namespaceId}` : 'binding TOKENIZERS'} (vocabulary of ${tokenizer.vocabSize} tokens, windows of ${tokenizer.modelMaxLength})`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
