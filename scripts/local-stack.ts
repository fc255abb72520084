// The whole system on loopback, from the project's own parts: s3rver (the bucket), the GPU runner on the embedded model,
// and the edge under workerd (wrangler dev), with the model's tokenizer in the edge's KV and API keys made by the keys CLI.
// Used by `npm start`, `npm run demo` and the end-to-end tests; stop() ends every process it started.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultModel } from '@sd/gpu-runner/default-model/write-model';
import { startProcess } from './stack/child-process.ts';
import { EDGE_CONFIG, type EdgeHandle, startEdge } from './stack/edge-process.ts';
import { freePort } from './stack/free-port.ts';
import { parseJsonc } from './stack/jsonc.ts';
import { REPO_ROOT, type RunnerHandle, startRunner } from './stack/runner-process.ts';
import { type S3rverHandle, startS3rver } from './stack/s3rver-process.ts';
import { type StackKeySpec, savedStackKey, saveStackKey } from './stack/stack-key.ts';

export interface KeySpec {
  /** Also the key's name in `npm run keys -- list`, and its name in LocalStack.keys. */
  name: string;
  publishable?: boolean;
  /** pk_: the page origins it works from (required). */
  origins?: string[];
  ratePerMinute?: number;
  maxInFlight?: number;
  /** The key's pixel budget (width x height of any output). */
  maxPixels?: number;
}

export interface CreatedKey {
  id: string;
  key: string;
}

export interface ModelRef {
  id: string;
  version: string;
  /** "owner/name:version", what `replicate.run` takes. */
  ref: string;
  tokenizer?: string;
}

export interface LocalStackOptions {
  /** Keys to create besides the default secret key (named "local-stack"). */
  keys?: KeySpec[];
  /** Limits of the default secret key. */
  secretKey?: Pick<KeySpec, 'ratePerMinute' | 'maxInFlight'>;
  /** Runner environment on top of the stack's (e.g. SLOTS, PROGRESS_THROTTLE_MS, ORT_INTRA_OP_THREADS). */
  runnerEnv?: Record<string, string>;
  /** How many runner processes to start (default 1); all share the bucket and secrets. */
  runnerCount?: number;
  /** Edge vars on top of the stack's (e.g. LOG_LEVEL, RUNNER_SILENCE_SECONDS). */
  edgeVars?: Record<string, string>;
  /** Edge secrets on top of the stack's (e.g. REPLICATE_API_TOKEN). */
  edgeSecrets?: Record<string, string>;
  /**
   * How the runners get their work. "pull" (default): each runner leases from the edge (EDGE_URL), the model's pool has
   * no push targets. "push": the edge PUTs to the runners' URLs (`runnerPool`), as for a Cog host we do not run.
   */
  dispatch?: 'pull' | 'push';
  /** Pull mode: the edge URL runner `index` is given (default: the edge's own), e.g. a proxy in front of it. */
  runnerEdgeUrl?: (edgeUrl: string, index: number) => string;
  /**
   * Push mode: the model's push targets, given the first runner's URL and all of them (default: all of them); e.g. a
   * proxy in front.
   */
  runnerPool?: (runnerUrl: string, runnerUrls: string[]) => string[];
  /** More MODELS entries after the configured model (e.g. a pool of runners that refuse), given the runners' URLs. */
  extraModels?: (runnerUrls: string[]) => Record<string, unknown>[];
  /**
   * Keep the edge's local state (KV, Durable Objects, cache: `wrangler dev --persist-to` this folder) here between runs;
   * the run's own files (bucket, secrets, lock) go in `<stateDir>/run`, which stop() removes. One stack per folder at a
   * time. Default: a temporary folder stop() removes whole.
   */
  stateDir?: string;
  /** The edge's port (default: a free one). */
  edgePort?: number;
  /** Each output line of the children, as it arrives. */
  onLine?: (source: 'runner' | 'edge' | 's3', line: string) => void;
  /** Start-up progress, for a person watching. */
  onStep?: (message: string) => void;
}

export interface LocalStack {
  edgeUrl: string;
  /** The first runner's URL (runnerUrls[0]). */
  runnerUrl: string;
  runnerUrls: string[];
  model: ModelRef;
  /** The default secret key (sk_...). */
  apiKey: string;
  keys: Record<string, CreatedKey>;
  /** Signs the edge's client webhooks (verify with @sd/shared/webhook-signature verifyWebhook). */
  clientWebhookSecret: string;
  runnerToken: string;
  /** The runners' WEBHOOK_SIGNING_SECRET, which the edge verifies runner webhooks with. */
  runnerWebhookSecret: string;
  s3: S3rverHandle;
  /** The first runner (runners[0]). */
  runner: RunnerHandle;
  runners: RunnerHandle[];
  edge: EdgeHandle;
  stateDir: string;
  stop(): Promise<void>;
  /** Stops the edge and starts it again on the same port and state (its Durable Objects' storage persists). */
  restartEdge(): Promise<void>;
}

const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** Runs one of the project's CLI scripts to completion; its stdout, or an error with its output. */
async function runScript(name: string, script: string, args: string[]): Promise<string> {
  const proc = startProcess(process.execPath, [TSX, script, ...args], {
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', FORCE_COLOR: '0', CI: '1' },
    cwd: REPO_ROOT,
    name,
    // Its own group: wrangler and Miniflare start workerd below it, which an interrupted run must not leave behind.
    group: true,
  });
  const { code } = await proc.exited;
  if (code !== 0) throw new Error(`${name} exited with ${code}:\n${proc.lines.slice(-20).join('\n')}`);
  return proc.lines.join('\n');
}

async function createKey(persistTo: string, spec: KeySpec): Promise<CreatedKey> {
  const args = ['create', '--json', '--persist-to', persistTo, '--name', spec.name];
  if (spec.publishable) args.push('--publishable');
  for (const origin of spec.origins ?? []) args.push('--origin', origin);
  if (spec.ratePerMinute) args.push('--rate', String(spec.ratePerMinute));
  if (spec.maxInFlight) args.push('--max-in-flight', String(spec.maxInFlight));
  if (spec.maxPixels) args.push('--max-pixels', String(spec.maxPixels));
  const out = await runScript(`keys create ${spec.name}`, join(REPO_ROOT, 'edge', 'scripts', 'keys.ts'), args);
  const created = JSON.parse(out.slice(out.indexOf('{'))) as { id: string; key: string };
  return { id: created.id, key: created.key };
}

/** Runs `start`; when it throws, `stop` ends whatever it had started before the error goes on. */
async function startOrStop<T>(stop: () => Promise<void>, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A new "local-stack" key, saved in `keepDir` (a persistent state folder) for the next start. */
async function newStackKey(persistTo: string, spec: StackKeySpec, keepDir: string | undefined): Promise<CreatedKey> {
  const created = await createKey(persistTo, { name: 'local-stack', ...spec });
  if (keepDir) await saveStackKey(keepDir, { ...created, spec });
  return created;
}

/**
 * The keys a stack starts with: its secret key "local-stack" (with `secretKey`'s limits) and `keys`. In a persistent
 * state folder (`keepDir`) the secret key an earlier start saved there is given again (one saved with other limits is
 * revoked and replaced), so starts do not pile up keys; startReadyEdge replaces it too when the edge refuses it.
 */
async function createKeys(
  persistTo: string,
  options: Pick<LocalStackOptions, 'secretKey' | 'keys'>,
  keepDir?: string,
): Promise<Record<string, CreatedKey>> {
  const spec: StackKeySpec = { ...options.secretKey };
  const saved = keepDir ? await savedStackKey(keepDir, spec) : null;
  if (saved?.kind === 'replace') {
    await runScript('keys revoke', join(REPO_ROOT, 'edge', 'scripts', 'keys.ts'), [
      'revoke',
      saved.id,
      '--persist-to',
      persistTo,
    ]).catch(() => undefined); // already gone with a wiped KV: nothing to revoke
  }
  const keys: Record<string, CreatedKey> = {
    'local-stack':
      saved?.kind === 'reuse' ? { id: saved.key.id, key: saved.key.key } : await newStackKey(persistTo, spec, keepDir),
  };
  for (const keySpec of options.keys ?? []) keys[keySpec.name] = await createKey(persistTo, keySpec);
  return keys;
}

/**
 * wrangler dev on a free port with `models` as MODELS and the options' vars and secrets on top. Ready = the configuration
 * parses and the "local-stack" key is accepted, not just "listening"; an edge that is not ready is stopped. A saved key
 * the edge refuses (revoked since, or a wiped KV) is replaced through `renewStackKey`, in `keys` too.
 */
async function startReadyEdge(
  persistTo: string,
  keys: Record<string, CreatedKey>,
  options: Pick<LocalStackOptions, 'edgeVars' | 'edgeSecrets'>,
  edge: {
    port?: number;
    models: unknown[];
    secrets: Record<string, string>;
    onLine?: (line: string) => void;
    secretsDir?: string;
    renewStackKey?: () => Promise<CreatedKey>;
  },
): Promise<{ edge: EdgeHandle; edgeUrl: string }> {
  const port = edge.port ?? (await freePort());
  const edgeUrl = `http://127.0.0.1:${port}`;
  const handle = await startEdge({
    port,
    persistTo,
    vars: {
      MODELS: JSON.stringify(edge.models),
      PUBLIC_BASE_URL: edgeUrl,
      // The tests' webhook receivers listen on 127.0.0.1: a local stack opts out of the webhook address policy.
      WEBHOOK_ALLOW_PRIVATE: 'true',
      // Its runner's outputs are http URLs of its bucket on loopback, which the runner reads back as inputs.
      IMAGE_URLS_ALLOW_PRIVATE: 'true',
      ...options.edgeVars,
    },
    secrets: { ...edge.secrets, ...options.edgeSecrets },
    secretsDir: edge.secretsDir,
    timeoutMs: 120_000,
    processOptions: { onLine: edge.onLine },
  });
  const accepts = () => fetch(`${edgeUrl}/v1/predictions`, { headers: { authorization: `Bearer ${keys['local-stack'].key}` } });
  let probe = await accepts();
  if (probe.status === 401 && edge.renewStackKey) {
    await probe.body?.cancel();
    // A key made now is seen at once: the edge reads the same local KV, and it never looked this id up.
    keys['local-stack'] = await edge.renewStackKey();
    probe = await accepts();
  }
  if (probe.status !== 200) {
    const text = await probe.text();
    await handle.stop();
    throw new Error(`the edge answered GET /v1/predictions with ${probe.status}: ${text}`);
  }
  return { edge: handle, edgeUrl };
}

/** The first model wrangler.jsonc configures (MODELS var); the stack points its runner pool at the local runner. */
async function configuredModel(): Promise<Record<string, unknown> & ModelRef> {
  // Read as JSONC, not through wrangler: importing wrangler installs signal handlers that exit the process at once.
  const config = parseJsonc(await readFile(EDGE_CONFIG, 'utf8')) as { vars?: Record<string, unknown> };
  config.vars ??= {};
  const models = JSON.parse(String(config.vars.MODELS ?? '[]')) as Array<Record<string, unknown>>;
  const first = models[0];
  if (typeof first?.id !== 'string' || typeof first.version !== 'string') {
    throw new Error(`${EDGE_CONFIG}: vars.MODELS must list a model with id and version, got ${String(config.vars.MODELS)}`);
  }
  const tokenizer = typeof first.tokenizer === 'string' ? first.tokenizer : undefined;
  return { ...first, id: first.id, version: first.version, ref: `${first.id}:${first.version}`, tokenizer };
}

const whsec = () => `whsec_${randomBytes(32).toString('base64')}`;

/**
 * Folders a stack made for one run, removed by stop(); and on an exit without it (Ctrl-C while starting, an uncaught
 * error), after child-process.ts's own exit hook (registered first, so run first) has killed the processes using them.
 */
const runFolders = new Set<string>();
process.once('exit', () => {
  for (const dir of runFolders) rmSync(dir, { recursive: true, force: true });
});

/** What `<stateDir>/run/stack.json` says of the stack using a state folder. */
interface RunLock {
  pid: number;
  edgeUrl?: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims a persistent state folder for this process: two edges on one folder would run the same Durable Objects twice.
 * The lock file is created exclusively (two starts at once cannot both win); one left by a process that is gone
 * (killed) is taken over, and so are its run files.
 */
async function claimStateDir(stateDir: string, runDir: string): Promise<void> {
  const lockFile = join(runDir, 'stack.json');
  await mkdir(runDir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lockFile, JSON.stringify({ pid: process.pid } satisfies RunLock), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let lock: RunLock | undefined;
    try {
      lock = JSON.parse(await readFile(lockFile, 'utf8')) as RunLock;
    } catch {
      // a torn lock: its writer died mid-write
    }
    if (lock && isAlive(lock.pid)) {
      throw new Error(
        `the state folder ${stateDir} is in use by another local stack (pid ${lock.pid}${lock.edgeUrl ? `, edge ${lock.edgeUrl}` : ''}); ` +
          'stop it, or pass --state DIR (or SD_STATE_DIR) for a folder of its own',
      );
    }
    await rm(lockFile, { force: true });
  }
  // What an earlier run that was killed left (its bucket, its secrets file) goes; the lock is now ours.
  for (const entry of await readdir(runDir)) {
    if (entry !== 'stack.json') await rm(join(runDir, entry), { recursive: true, force: true });
  }
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const step = options.onStep ?? (() => {});
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'sd-local-stack-')));
  const persistTo = stateDir;
  const runDir = join(stateDir, 'run');
  if (options.stateDir) await claimStateDir(stateDir, runDir);
  const runFolder = options.stateDir ? runDir : stateDir;
  /** Where the stack's own secret key is kept between starts: a persistent state folder only. */
  const keepDir = options.stateDir ? stateDir : undefined;
  runFolders.add(runFolder);
  const runnerToken = randomBytes(24).toString('hex');
  const runnerWebhookSecret = whsec();
  const clientWebhookSecret = whsec();
  const tokenSigningSecret = randomBytes(32).toString('base64url');

  // The edge's port is chosen first: pull runners need its URL, and they start before it (they retry until it is up).
  const edgePort = options.edgePort ?? (await freePort());
  let s3: S3rverHandle | undefined;
  const runners: RunnerHandle[] = [];
  let edge: EdgeHandle | undefined;
  const stop = async () => {
    // Edge first (no new dispatches), then the runners (their final webhooks may fail: the edge is gone), then storage.
    await edge?.stop();
    await Promise.all(runners.map((r) => r.stop()));
    await s3?.stop();
    await rm(runFolder, { recursive: true, force: true });
    runFolders.delete(runFolder);
  };

  return startOrStop(stop, async () => {
    // Storage + runner, and (meanwhile) the edge's KV: tokenizer files and keys. KV writes are sequential: one
    // persistence folder, one writer at a time, and all before wrangler dev opens it.
    const backend = (async () => {
      step('starting s3rver');
      s3 = await startS3rver('outputs', { group: true, onLine: (l) => options.onLine?.('s3', l) }, join(runDir, 's3rver'));
      const count = options.runnerCount ?? 1;
      if (!Number.isInteger(count) || count < 1) throw new Error(`runnerCount must be a positive integer, got ${count}`);
      step(`starting ${count === 1 ? 'the runner' : `${count} runners`} (embedded model)`);
      const model = await configuredModel();
      const pull: Record<string, string> =
        (options.dispatch ?? 'pull') === 'pull'
          ? { EDGE_URL: `http://127.0.0.1:${edgePort}`, EDGE_RUNNER_TOKEN: runnerToken, EDGE_MODEL: model.ref }
          : {};
      const env = {
        ...pull,
        API_TOKEN: runnerToken,
        WEBHOOK_SIGNING_SECRET: runnerWebhookSecret,
        // Push mode: our runners' webhooks carry the runner credential, so the edge reads big ones (embeddings).
        WEBHOOK_TOKEN: runnerToken,
        S3_ENDPOINT: s3.endpoint,
        S3_REGION: 'us-east-1',
        S3_BUCKET: s3.bucket,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        S3_PRESIGN_EXPIRES_SECONDS: '3600',
        S3_TIMEOUT_MS: '10000',
        // Each runner gets one onnxruntime thread on a 2-core machine (two were slower at every size measured here).
        ORT_INTRA_OP_THREADS: String(availableParallelism() <= 2 ? 1 : Math.min(availableParallelism(), 4)),
        ...options.runnerEnv,
      };
      // allSettled, then push each: a runner that started is stopped by stop() even when its sibling failed.
      const byIndex: RunnerHandle[] = [];
      const started = await Promise.allSettled(
        Array.from({ length: count }, (_, i) => {
          // Pull mode: runner i may reach the edge another way (e.g. through a proxy a test can cut).
          const edgeUrl: Record<string, string> =
            pull.EDGE_URL && options.runnerEdgeUrl ? { EDGE_URL: options.runnerEdgeUrl(pull.EDGE_URL, i) } : {};
          return startRunner(
            { ...env, ...edgeUrl },
            { timeoutMs: 180_000, processOptions: { group: true, onLine: (l) => options.onLine?.('runner', l) } },
          ).then((r) => {
            runners.push(r);
            byIndex[i] = r;
            return r;
          });
        }),
      );
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      // In the order asked for, not the order they became ready.
      runners.splice(0, runners.length, ...byIndex);
    })();
    const kv = (async () => {
      const [model, modelDir] = await Promise.all([configuredModel(), ensureDefaultModel()]);
      if (model.tokenizer) {
        step(`uploading tokenizer ${model.tokenizer} to the edge's local KV`);
        await runScript('tokenizer:upload', join(REPO_ROOT, 'edge', 'scripts', 'upload-tokenizer.ts'), [
          '--name',
          model.tokenizer,
          '--dir',
          join(modelDir, 'tokenizer'),
          '--local',
          '--persist-to',
          persistTo,
        ]);
      }
      step('creating API keys');
      const keys = await createKeys(persistTo, options, keepDir);
      return { model, keys };
    })();
    // allSettled: a failure on one side must not leave the other side's processes starting unseen by stop().
    const [started, prepared] = await Promise.allSettled([backend, kv]);
    if (started.status === 'rejected') throw started.reason;
    if (prepared.status === 'rejected') throw prepared.reason;
    const { model, keys } = prepared.value;
    const runner = runners[0];
    if (!runner) throw new Error('unreachable: the runner did not start');
    const runnerUrls = runners.map((r) => r.url);

    step('starting the edge (wrangler dev)');
    const { ref: _ref, ...modelEntry } = model;
    let edgeUrl: string;
    const edgeSpec = {
      port: edgePort,
      models: [
        {
          ...modelEntry,
          runners: (options.dispatch ?? 'pull') === 'pull' ? [] : (options.runnerPool?.(runner.url, runnerUrls) ?? runnerUrls),
        },
        ...(options.extraModels?.(runnerUrls) ?? []),
      ],
      secrets: {
        RUNNER_TOKEN: runnerToken,
        // Push mode's targets are this stack's own runners, whose API_TOKEN is the runner token.
        PUSH_TARGET_TOKEN: runnerToken,
        RUNNER_WEBHOOK_SECRET: runnerWebhookSecret,
        WEBHOOK_SIGNING_SECRET: clientWebhookSecret,
        TOKEN_SIGNING_SECRET: tokenSigningSecret,
      },
      onLine: (l: string) => options.onLine?.('edge', l),
      secretsDir: join(runDir, 'edge-secrets'),
      renewStackKey: keepDir ? () => newStackKey(persistTo, { ...options.secretKey }, keepDir) : undefined,
    };
    ({ edge, edgeUrl } = await startReadyEdge(persistTo, keys, options, edgeSpec));
    if (options.stateDir) {
      await writeFile(join(runDir, 'stack.json'), JSON.stringify({ pid: process.pid, edgeUrl } satisfies RunLock));
    }

    const stack: LocalStack = {
      edgeUrl,
      runnerUrl: runner.url,
      runnerUrls,
      model: { id: model.id, version: model.version, ref: model.ref, tokenizer: model.tokenizer },
      apiKey: keys['local-stack'].key,
      keys,
      clientWebhookSecret,
      runnerToken,
      runnerWebhookSecret,
      s3: s3 as S3rverHandle,
      runner,
      runners,
      edge,
      stateDir,
      stop,
      async restartEdge() {
        await edge?.stop();
        edge = undefined;
        ({ edge } = await startReadyEdge(persistTo, keys, options, edgeSpec));
        stack.edge = edge;
      },
    };
    return stack;
  });
}

export interface EdgeStackOptions {
  /** This edge's MODELS entries (e.g. backend "replicate" pointing at another edge's /v1). No tokenizers are uploaded. */
  models: Record<string, unknown>[];
  keys?: KeySpec[];
  secretKey?: Pick<KeySpec, 'ratePerMinute' | 'maxInFlight'>;
  edgeVars?: Record<string, string>;
  edgeSecrets?: Record<string, string>;
  onLine?: (line: string) => void;
  onStep?: (message: string) => void;
}

export type EdgeStack = Pick<
  LocalStack,
  'edgeUrl' | 'apiKey' | 'keys' | 'clientWebhookSecret' | 'runnerToken' | 'runnerWebhookSecret' | 'edge' | 'stateDir' | 'stop'
>;

/**
 * One more edge with its own state (persist folder, keys, secrets, ports) and no runners or storage of its own: in front
 * of whatever its MODELS name, e.g. another edge through the `replicate` backend. stop() ends it and removes its state.
 */
export async function startEdgeStack(options: EdgeStackOptions): Promise<EdgeStack> {
  const step = options.onStep ?? (() => {});
  const stateDir = await mkdtemp(join(tmpdir(), 'sd-edge-stack-'));
  const persistTo = join(stateDir, 'wrangler-state');
  const secrets = {
    RUNNER_TOKEN: randomBytes(24).toString('hex'),
    RUNNER_WEBHOOK_SECRET: whsec(),
    WEBHOOK_SIGNING_SECRET: whsec(),
    TOKEN_SIGNING_SECRET: randomBytes(32).toString('base64url'),
  };
  let edge: EdgeHandle | undefined;
  const stop = async () => {
    await edge?.stop();
    await rm(stateDir, { recursive: true, force: true });
  };
  return startOrStop(stop, async () => {
    step('creating API keys');
    const keys = await createKeys(persistTo, options);
    step('starting the edge (wrangler dev)');
    let edgeUrl: string;
    ({ edge, edgeUrl } = await startReadyEdge(persistTo, keys, options, {
      models: options.models,
      secrets,
      onLine: options.onLine,
    }));
    return {
      edgeUrl,
      apiKey: keys['local-stack'].key,
      keys,
      clientWebhookSecret: secrets.WEBHOOK_SIGNING_SECRET,
      runnerToken: secrets.RUNNER_TOKEN,
      runnerWebhookSecret: secrets.RUNNER_WEBHOOK_SECRET,
      edge,
      stateDir,
      stop,
    };
  });
}
