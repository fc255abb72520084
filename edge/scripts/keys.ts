/// <reference types="node" />
// `npm run keys -- create|list|revoke`: manages API keys in the edge's KEYS namespace, locally or on Cloudflare.
// Local = the same persistence directory `wrangler dev` uses (Miniflare); --remote = `wrangler kv ... --remote`.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { errorMessage, errorStack } from '@sd/shared/error-message';
import { type KeyRecord, keyStatus, newApiKey, type Scope, ScopeSchema } from '../src/auth/key-format.ts';
import {
  getKeyRecord,
  type KeyValueStore,
  kvStore,
  listKeyRecords,
  revokeKeyRecord,
  saveKeyRecord,
} from '../src/auth/key-store.ts';
import { DEFAULT_STATE_DIR, resolveStateDir } from './local-state.ts';

const USAGE = `Usage: npm run keys -- <command> [options]

Commands:
  create            Create a key; prints it once (only its SHA-256 hash is stored)
      --name <text>            Label shown by list (default "unnamed")
      --publishable            A pk_ key for web pages (default: an sk_ secret key)
      --origin <origin>        Repeatable. pk_: the origins it works from (required). sk_: allowed user-token audiences
      --scopes <a,b>           predictions:write, predictions:read, tokens:write (default: all for sk_, predictions:* for pk_)
      --expires <when>         ISO date/time or a duration from now: 30d, 12h, 45m
      --rate <n>               Requests per minute (default 60 sk_, 10 pk_)
      --max-in-flight <n>      Predictions in flight at once (default 8 sk_, 2 pk_)
      --max-steps <n>  --max-outputs <n>  --max-pixels <n>  --models <a,b>
  list              Ids, names, kinds, status, scopes and origins; never secrets
  revoke <id>       Revoke a key (kept, marked revoked; its user tokens stop working too)

Where:
  (default)                 Local KV in the local state folder: $SD_STATE_DIR, else edge/.wrangler/state; the folder
                            \`npm start\`, \`npm run demo\` and a plain \`wrangler dev\` use, so a key made here works there
  --persist-to <dir>        Another state folder (same meaning as \`npm start -- --state\` and \`wrangler dev --persist-to\`)
  --remote                  The deployed namespace, through \`wrangler kv --remote\` (needs wrangler login or CLOUDFLARE_API_TOKEN)
  --wrangler                Use \`wrangler kv\` commands for local KV too (slower; the same code path as --remote)
  --namespace-id <id>       The KEYS namespace by id instead of through the config's binding: a deployment's
                            (terraform output kv_namespace_ids), remote or local; no wrangler config needed
  --account-id <id>         Cloudflare account of --remote (sets CLOUDFLARE_ACCOUNT_ID for wrangler)
  --config <file>           Wrangler config (default: edge/wrangler.jsonc)
  --json                    Machine-readable output
`;

const EDGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BINDING = 'KEYS';

class UsageError extends Error {}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** `30d`, `12h`, `45m`, or an ISO date/time. */
export function parseExpiry(value: string, now = Date.now()): Date {
  const rel = /^(\d+)([dhm])$/.exec(value);
  if (rel) return new Date(now + Number(rel[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[rel[2] as 'd' | 'h' | 'm']);
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new UsageError(`--expires must be an ISO date/time or a duration like 30d, 12h, 45m; got ${JSON.stringify(value)}`);
  return new Date(t);
}

function parseScopes(value: string | undefined): Scope[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((s) => {
    const parsed = ScopeSchema.safeParse(s.trim());
    if (!parsed.success)
      throw new UsageError(`--scopes: unknown scope ${JSON.stringify(s)}; known: ${ScopeSchema.options.join(', ')}`);
    return parsed.data;
  });
}

/** Which namespace: the config's KEYS binding, or an explicit id (a deployed namespace from Terraform's outputs). */
type Target = { configPath: string; namespaceId?: string; accountId?: string };

/** `wrangler kv key ...` as a KeyValueStore: for --remote, and for local with --wrangler. */
function wranglerStore(where: string[], target: Target): KeyValueStore {
  const wranglerBin = path.join(
    path.dirname(createRequire(import.meta.url).resolve('wrangler/package.json')),
    'bin',
    'wrangler.js',
  );
  const run = async (args: string[]) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        wranglerBin,
        'kv',
        'key',
        ...args,
        ...(target.namespaceId ? ['--namespace-id', target.namespaceId] : ['--binding', BINDING, '--config', target.configPath]),
        ...where,
      ],
      {
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: 'false',
          FORCE_COLOR: '0',
          ...(target.accountId ? { CLOUDFLARE_ACCOUNT_ID: target.accountId } : {}),
        },
      },
    );
    return stdout;
  };
  return {
    async get(key) {
      const out = await run(['get', key, '--text']);
      // wrangler prints this (exit 0) for a missing key; our values are JSON, so it cannot be a real value.
      return out.trim() === 'Value not found' ? null : out.replace(/\n$/, '');
    },
    async put(key, value) {
      await run(['put', key, value]);
    },
    async delete(key) {
      await run(['delete', key]);
    },
    async list(prefix) {
      const out = await run(['list', '--prefix', prefix]);
      return (JSON.parse(out.slice(out.indexOf('['))) as { name: string }[]).map((k) => k.name);
    },
  };
}

/** Miniflare over the persistence directory exactly as `wrangler dev --persist-to <dir>` lays it out (<dir>/v3/kv/<id>). */
async function miniflareStore(persistTo: string, target: Target): Promise<{ store: KeyValueStore; close: () => Promise<void> }> {
  let namespaceId = target.namespaceId;
  if (!namespaceId) {
    const { unstable_readConfig } = await import('wrangler');
    const config = unstable_readConfig({ config: target.configPath }, { hideWarnings: true });
    const ns = config.kv_namespaces.find((k: { binding: string; id?: string }) => k.binding === BINDING);
    if (!ns?.id) throw new UsageError(`${target.configPath} has no kv_namespaces entry with binding ${BINDING} and an id`);
    namespaceId = ns.id;
  }
  const { Miniflare } = await import('miniflare');
  const mf = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 404 }); } }',
    kvNamespaces: { [BINDING]: namespaceId },
    defaultPersistRoot: path.join(persistTo, 'v3'),
  });
  // Miniflare's KVNamespace is the Workers API from its own copy of the types.
  const kv = (await mf.getKVNamespace(BINDING)) as unknown as KVNamespace;
  return { store: kvStore(kv), close: () => mf.dispose() };
}

/** Rows as columns padded to their widest cell (the last column unpadded), two spaces apart. */
export function alignColumns(rows: string[][]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return rows
    .map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]))).join('  '))
    .join('\n');
}

/** What list/create show: everything but the hash. */
function publicView(record: KeyRecord) {
  const { hash: _hash, ...rest } = record;
  return { ...rest, status: keyStatus(record) };
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      publishable: { type: 'boolean' },
      origin: { type: 'string', multiple: true },
      scopes: { type: 'string' },
      expires: { type: 'string' },
      rate: { type: 'string' },
      'max-in-flight': { type: 'string' },
      'max-steps': { type: 'string' },
      'max-outputs': { type: 'string' },
      'max-pixels': { type: 'string' },
      models: { type: 'string' },
      'persist-to': { type: 'string' },
      remote: { type: 'boolean' },
      local: { type: 'boolean' },
      wrangler: { type: 'boolean' },
      config: { type: 'string' },
      'namespace-id': { type: 'string' },
      'account-id': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    if (!command && !values.help) process.exitCode = 2;
    return;
  }
  if (values.remote && (values.local || values['persist-to']))
    throw new UsageError('--remote cannot be combined with --local or --persist-to');

  const configPath = path.resolve(values.config ?? path.join(EDGE_DIR, 'wrangler.jsonc'));
  const namespaceId = values['namespace-id'];
  // KV namespace ids are 32 hex characters on Cloudflare; locally any id names a namespace, so only refuse the absurd.
  if (namespaceId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(namespaceId))
    throw new UsageError(
      `--namespace-id must be a KV namespace id (terraform output kv_namespace_ids), got ${JSON.stringify(namespaceId)}`,
    );
  if (values.remote && namespaceId !== undefined && !/^[0-9a-f]{32}$/.test(namespaceId))
    throw new UsageError(
      `--namespace-id with --remote must be a 32-character hex KV namespace id, got ${JSON.stringify(namespaceId)}`,
    );
  if (values['account-id'] !== undefined && !values.remote) throw new UsageError('--account-id only applies to --remote');
  const target: Target = { configPath, namespaceId, accountId: values['account-id'] };
  // Like wrangler: an explicit --persist-to is relative to the working directory, the default to the config's folder
  // (for the repo's own config, the shared local state folder, which $SD_STATE_DIR moves).
  const configDefault = path.join(path.dirname(configPath), '.wrangler', 'state');
  const persistTo =
    values['persist-to'] !== undefined || configDefault === DEFAULT_STATE_DIR
      ? resolveStateDir(values['persist-to'])
      : configDefault;
  let store: KeyValueStore;
  let close = async () => {};
  if (values.remote) store = wranglerStore(['--remote'], target);
  else if (values.wrangler) store = wranglerStore(['--local', '--persist-to', persistTo], target);
  else ({ store, close } = await miniflareStore(persistTo, target));

  const where = values.remote
    ? 'the deployed KEYS namespace'
    : `the local state folder ${persistTo} (${persistTo === resolveStateDir() ? 'the one `npm start` uses by default' : `for \`npm start -- --state ${persistTo}\``})`;
  const out = (text: string, json: unknown) => process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : text);
  try {
    switch (command) {
      case 'create': {
        const kind = values.publishable ? 'publishable' : 'secret';
        const limits = {
          ratePerMinute: positiveInt('rate', values.rate),
          maxInFlight: positiveInt('max-in-flight', values['max-in-flight']),
          maxSteps: positiveInt('max-steps', values['max-steps']),
          maxOutputs: positiveInt('max-outputs', values['max-outputs']),
          maxPixels: positiveInt('max-pixels', values['max-pixels']),
          models: values.models
            ?.split(',')
            .map((m) => m.trim())
            .filter(Boolean),
        };
        let created: { key: string; record: KeyRecord };
        try {
          created = await newApiKey({
            kind,
            name: values.name ?? 'unnamed',
            origins: values.origin ?? [],
            ...(values.scopes ? { scopes: parseScopes(values.scopes) } : {}),
            ...(values.expires ? { expiresAt: parseExpiry(values.expires) } : {}),
            limits,
          });
        } catch (err) {
          throw new UsageError(errorMessage(err));
        }
        await saveKeyRecord(store, created.record);
        const view = publicView(created.record);
        out(
          `${created.key}\n\nCreated ${kind} key ${view.id} (${view.name}) in ${where}. This is the only time the key is shown; only its hash is stored.\n` +
            `${JSON.stringify(view, null, 2)}\n`,
          { key: created.key, ...view },
        );
        return;
      }
      case 'list': {
        const records = (await listKeyRecords(store)).map(publicView);
        const rows = records.map((r) => [
          r.id,
          r.kind,
          r.status,
          r.name,
          r.scopes.join(','),
          r.origins.join(',') || '-',
          r.expiresAt ?? '-',
        ]);
        out(`${alignColumns([['id', 'kind', 'status', 'name', 'scopes', 'origins', 'expires'], ...rows])}\n`, records);
        return;
      }
      case 'revoke': {
        const id = rest[0];
        if (!id) throw new UsageError('revoke needs a key id (see `npm run keys -- list`)');
        const before = await getKeyRecord(store, id);
        if (!before) throw new UsageError(`no key with id ${JSON.stringify(id)}`);
        const revoked = (await revokeKeyRecord(store, id))!;
        out(
          before.revokedAt
            ? `Key ${id} was already revoked at ${before.revokedAt}\n`
            : `Revoked key ${id} (${revoked.name}) at ${revoked.revokedAt}\n`,
          publicView(revoked),
        );
        return;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}: expected create, list or revoke`);
    }
  } finally {
    await close();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`keys: ${errorMessage(err)}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`keys: ${errorStack(err)}\n`);
    process.exitCode = 1;
  }
});
