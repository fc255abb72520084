// `npm run bootstrap -- --tokenizer-dir DIR`: takes a fresh `terraform apply` of infra/examples/complete to its first
// image with no hand-written config: reads `terraform output -json`, uploads the model's tokenizer into the deployed
// TOKENIZERS namespace, creates the first API key in the deployed KEYS namespace, and (--first-image) runs one prediction.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { errorMessage } from '@sd/shared/error-message';
import Replicate, { type Prediction } from 'replicate';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const run = promisify(execFile);

const USAGE = `Usage: npm run bootstrap -- --tokenizer-dir DIR [options]

Reads the outputs of infra/examples/complete and, against the deployed KV namespaces:
  1. uploads DIR (a diffusers export's tokenizer/ folder) as the model's tokenizer into TOKENIZERS
  2. creates the first API key (sk_) in KEYS and prints it once
  3. with --first-image, runs one prediction through the edge and prints the image URL (a sleeping fleet wakes first)

Options:
  --outputs <file>        JSON of \`terraform output -json\` (default: run terraform -chdir=<tf-dir> output -json)
  --tf-dir <dir>          Terraform root (default: infra/examples/complete)
  --tokenizer-dir <dir>   Folder with vocab.json and merges.txt (required unless --skip-tokenizer)
  --skip-tokenizer        The tokenizer is already uploaded
  --key-name <text>       Label of the key (default "first key")
  --key <sk_...>          Use this key instead of creating one (for a later --first-image)
  --first-image           Run one prediction with the new key
  --prompt <text>         Prompt of the first image (default "a lighthouse at dusk, oil painting")
  --timeout <seconds>     How long to wait for the first image (default 1800: wake alarm + boot + image pull + model load)
  --local                 Write wrangler dev's local KV under --persist-to instead of the deployed namespaces (tests)
  --persist-to <dir>      With --local: the persistence directory
`;

class UsageError extends Error {}

/** What the bootstrap needs from `terraform output -json` ({ name: { value, type, sensitive } }). */
export interface DeploymentOutputs {
  edgeUrl: string;
  keysNamespaceId: string;
  tokenizersNamespaceId: string;
  model: string;
  tokenizer: string;
  accountId?: string;
}

/** Parses `terraform output -json`; names the missing or malformed output. */
export function parseOutputs(json: string): DeploymentOutputs {
  let raw: Record<string, { value?: unknown }>;
  try {
    raw = JSON.parse(json) as Record<string, { value?: unknown }>;
  } catch {
    throw new UsageError('the outputs are not JSON (expected `terraform output -json`)');
  }
  const value = (name: string): unknown => {
    if (!raw || typeof raw !== 'object' || !(name in raw)) throw new UsageError(`terraform output ${name} is missing`);
    return raw[name].value;
  };
  const str = (name: string, v: unknown): string => {
    if (typeof v !== 'string' || v.length === 0) throw new UsageError(`terraform output ${name} must be a non-empty string`);
    return v;
  };
  const ids = value('kv_namespace_ids') as Record<string, unknown> | null;
  if (!ids || typeof ids !== 'object') throw new UsageError('terraform output kv_namespace_ids must be a map');
  const edgeUrl = str('edge_url', value('edge_url'));
  if (!/^https?:\/\/[^/]+$/.test(edgeUrl)) throw new UsageError(`terraform output edge_url must be a base URL, got ${edgeUrl}`);
  return {
    edgeUrl,
    keysNamespaceId: str('kv_namespace_ids.KEYS', ids.KEYS),
    tokenizersNamespaceId: str('kv_namespace_ids.TOKENIZERS', ids.TOKENIZERS),
    model: str('model', value('model')),
    tokenizer: str('tokenizer', value('tokenizer')),
    accountId: 'cloudflare_account_id' in raw ? str('cloudflare_account_id', raw.cloudflare_account_id.value) : undefined,
  };
}

async function tsx(script: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [TSX, join(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${script} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

async function firstImage(out: DeploymentOutputs, key: string, prompt: string, timeoutS: number): Promise<Prediction> {
  const replicate = new Replicate({ auth: key, baseUrl: `${out.edgeUrl}/v1`, useFileOutput: false });
  let p = await replicate.predictions.create({ version: out.model, input: { prompt } });
  const deadline = Date.now() + timeoutS * 1000;
  let last = '';
  const t0 = Date.now();
  while (!['succeeded', 'failed', 'canceled'].includes(p.status)) {
    if (Date.now() > deadline) throw new Error(`prediction ${p.id} still ${p.status} after ${timeoutS} s`);
    if (p.status !== last) {
      process.stdout.write(`  ${p.id} ${p.status} after ${Math.round((Date.now() - t0) / 1000)} s\n`);
      last = p.status;
    }
    await new Promise((r) => setTimeout(r, 5000));
    p = await replicate.predictions.get(p.id);
  }
  return p;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      outputs: { type: 'string' },
      'tf-dir': { type: 'string' },
      'tokenizer-dir': { type: 'string' },
      'skip-tokenizer': { type: 'boolean' },
      'key-name': { type: 'string' },
      key: { type: 'string' },
      'first-image': { type: 'boolean' },
      prompt: { type: 'string' },
      timeout: { type: 'string' },
      local: { type: 'boolean' },
      'persist-to': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!values['tokenizer-dir'] && !values['skip-tokenizer'])
    throw new UsageError('--tokenizer-dir is required (or --skip-tokenizer when it is uploaded)');
  if (values['persist-to'] && !values.local) throw new UsageError('--persist-to only applies with --local');
  if (values.local && values['first-image']) throw new UsageError('--first-image needs the deployed edge, not --local');
  const timeoutS = values.timeout === undefined ? 1800 : Number(values.timeout);
  if (!Number.isInteger(timeoutS) || timeoutS < 1)
    throw new UsageError(`--timeout must be a positive number of seconds, got ${values.timeout}`);

  const outputsJson = values.outputs
    ? await readFile(resolve(values.outputs), 'utf8')
    : await run('terraform', [
        `-chdir=${resolve(values['tf-dir'] ?? join(REPO_ROOT, 'infra', 'examples', 'complete'))}`,
        'output',
        '-json',
      ])
        .then((r) => r.stdout)
        .catch((err: Error) => {
          throw new UsageError(`terraform output -json failed (${err.message.split('\n')[0]}); pass --outputs <file> instead`);
        });
  const out = parseOutputs(outputsJson);
  const where = values.local
    ? ['--local', ...(values['persist-to'] ? ['--persist-to', resolve(values['persist-to'])] : [])]
    : ['--remote', ...(out.accountId ? ['--account-id', out.accountId] : [])];
  const log = (line: string) => process.stdout.write(`${line}\n`);

  if (values['tokenizer-dir']) {
    log(`1. tokenizer ${out.tokenizer} -> TOKENIZERS ${out.tokenizersNamespaceId}`);
    // upload-tokenizer takes --local (default remote) and --persist-to; --account-id only for the deployed namespace.
    const tokArgs = values.local ? where : out.accountId ? ['--account-id', out.accountId] : [];
    await tsx('edge/scripts/upload-tokenizer.ts', [
      '--name',
      out.tokenizer,
      '--dir',
      resolve(values['tokenizer-dir']),
      '--namespace-id',
      out.tokenizersNamespaceId,
      ...tokArgs,
    ]);
  } else {
    log('1. tokenizer: skipped (--skip-tokenizer)');
  }

  let key = values.key;
  if (key !== undefined && !/^sk_[a-z0-9]+_[A-Za-z0-9]+$/.test(key)) throw new UsageError('--key must be an sk_ secret key');
  if (key) log('2. first API key: given (--key)');
  else key = await createFirstKey(out, values, where);

  if (values['first-image']) {
    log(`3. first image: ${out.model} at ${out.edgeUrl} (a sleeping fleet takes minutes to wake)`);
    const p = await firstImage(out, key, values.prompt ?? 'a lighthouse at dusk, oil painting', timeoutS);
    if (p.status !== 'succeeded') throw new Error(`prediction ${p.id} ${p.status}: ${JSON.stringify(p.error)}`);
    log(`   ${JSON.stringify(p.output)}`);
  } else {
    log(
      `3. first image: npm run bootstrap -- --skip-tokenizer --key <the key> --first-image (or POST ${out.edgeUrl}/v1/predictions)`,
    );
  }
}

async function createFirstKey(
  out: DeploymentOutputs,
  values: { local?: boolean; 'persist-to'?: string; 'key-name'?: string },
  where: string[],
): Promise<string> {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(`2. first API key -> KEYS ${out.keysNamespaceId}`);
  const keysWhere = values.local ? (values['persist-to'] ? ['--persist-to', resolve(values['persist-to'])] : []) : where;
  const created = JSON.parse(
    await tsx('edge/scripts/keys.ts', [
      'create',
      '--name',
      values['key-name'] ?? 'first key',
      '--namespace-id',
      out.keysNamespaceId,
      ...keysWhere,
      '--json',
    ]),
  ) as { key: string; id: string };
  log(`   ${created.key}\n   (key id ${created.id}; shown once, only its hash is stored)`);
  return created.key;
}

// Run only as a script, so tests can import parseOutputs.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`bootstrap: ${errorMessage(err)}\n`);
    process.exitCode = usage ? 2 : 1;
  });
}
