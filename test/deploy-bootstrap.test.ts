// The first-deployment path from Terraform's outputs to the first key and the tokenizer, run here against local KV:
// `npm run bootstrap` with a `terraform output -json` document writes into the namespaces named by its ids (not
// edge/wrangler.jsonc's placeholder ids), and `npm run keys -- --namespace-id` reads the same namespace back.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOutputs } from '../scripts/bootstrap-deployment.ts';
import { referenceDir, referencePath, referenceSkipReason } from './support/reference.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');

// Ids shaped like Cloudflare's (32 hex), as `terraform output -json` prints them for infra/examples/complete.
const KEYS_ID = '0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const TOKENIZERS_ID = 'f9e8d7c6b5a4938271605f4e3d2c1b0a';
const outputs = {
  edge_url: { sensitive: false, type: 'string', value: 'https://sd-edge.my-team.workers.dev' },
  kv_namespace_ids: {
    sensitive: false,
    type: ['object', { EMBEDDINGS: 'string', KEYS: 'string', TOKENIZERS: 'string' }],
    value: { EMBEDDINGS: '00000000000000000000000000000000', KEYS: KEYS_ID, TOKENIZERS: TOKENIZERS_ID },
  },
  model: { sensitive: false, type: 'string', value: 'sd/default:default-v1' },
  tokenizer: { sensitive: false, type: 'string', value: 'default-v1' },
  cloudflare_account_id: { sensitive: false, type: 'string', value: '0123456789abcdef0123456789abcdef' },
  operator_token: { sensitive: true, type: 'string', value: 'x'.repeat(48) },
};

async function script(file: string, ...args: string[]) {
  return run(process.execPath, [TSX, path.join(ROOT, file), ...args], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
  });
}
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the command to fail');
    },
    (e: { code: number; stderr: string }) => e,
  );

describe('parseOutputs', () => {
  it('reads what the bootstrap needs from terraform output -json', () => {
    expect(parseOutputs(JSON.stringify(outputs))).toEqual({
      edgeUrl: 'https://sd-edge.my-team.workers.dev',
      keysNamespaceId: KEYS_ID,
      tokenizersNamespaceId: TOKENIZERS_ID,
      model: 'sd/default:default-v1',
      tokenizer: 'default-v1',
      accountId: '0123456789abcdef0123456789abcdef',
    });
  });

  it('names the missing or malformed output', () => {
    const { model: _m, ...noModel } = outputs;
    expect(() => parseOutputs(JSON.stringify(noModel))).toThrow('terraform output model is missing');
    const noKeys = { ...outputs, kv_namespace_ids: { ...outputs.kv_namespace_ids, value: { TOKENIZERS: 'a' } } };
    expect(() => parseOutputs(JSON.stringify(noKeys))).toThrow('kv_namespace_ids.KEYS must be a non-empty string');
    const badUrl = { ...outputs, edge_url: { ...outputs.edge_url, value: 'sd-edge.workers.dev' } };
    expect(() => parseOutputs(JSON.stringify(badUrl))).toThrow('edge_url must be a base URL');
    expect(() => parseOutputs('not json')).toThrow('expected `terraform output -json`');
  });
});

describe.skipIf(!referenceDir)(`npm run bootstrap against local KV${referenceSkipReason}`, () => {
  let dir: string;
  let persist: string;
  let outputsFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bootstrap-'));
    persist = path.join(dir, 'state');
    outputsFile = path.join(dir, 'outputs.json');
    await writeFile(outputsFile, JSON.stringify(outputs));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('uploads the tokenizer and creates the first key in the namespaces of the outputs', async () => {
    const tokenizerDir = referencePath('tokenizer');
    const { stdout } = await script(
      'scripts/bootstrap-deployment.ts',
      '--outputs',
      outputsFile,
      '--tokenizer-dir',
      tokenizerDir,
      '--key-name',
      'launch',
      '--local',
      '--persist-to',
      persist,
    );
    const key = /\b(sk_[a-z0-9]{12}_[A-Za-z0-9]{32})\b/.exec(stdout)?.[1];
    expect(key, stdout).toBeDefined();
    expect(stdout).toContain(`TOKENIZERS ${TOKENIZERS_ID}`);
    expect(stdout).toContain(`KEYS ${KEYS_ID}`);

    // The key is listed by the keys CLI in that namespace (through wrangler, the --remote code path), and only there.
    const inNamespace = JSON.parse(
      (await script('edge/scripts/keys.ts', 'list', '--namespace-id', KEYS_ID, '--wrangler', '--persist-to', persist, '--json'))
        .stdout,
    ) as Array<{ id: string; name: string; status: string }>;
    expect(inNamespace).toEqual([expect.objectContaining({ id: key!.split('_')[1], name: 'launch', status: 'active' })]);
    const placeholder = JSON.parse((await script('edge/scripts/keys.ts', 'list', '--persist-to', persist, '--json')).stdout);
    expect(placeholder).toEqual([]);

    // The tokenizer files are where the edge's tokenizer-store reads them: <name>/<file> in TOKENIZERS.
    const mf = new Miniflare({
      modules: true,
      script: 'export default { fetch() { return new Response(null, { status: 404 }); } }',
      kvNamespaces: { TOKENIZERS: TOKENIZERS_ID, PLACEHOLDER: 'sd-edge-tokenizers-local' },
      defaultPersistRoot: path.join(persist, 'v3'),
    });
    try {
      const kv = await mf.getKVNamespace('TOKENIZERS');
      expect(await kv.get('default-v1/vocab.json')).toBe(await readFile(path.join(tokenizerDir, 'vocab.json'), 'utf8'));
      expect(await kv.get('default-v1/merges.txt')).toBe(await readFile(path.join(tokenizerDir, 'merges.txt'), 'utf8'));
      const other = await mf.getKVNamespace('PLACEHOLDER');
      expect((await other.list()).keys).toEqual([]);
    } finally {
      await mf.dispose();
    }
  });

  it('refuses bad options with exit code 2 and a message naming them', async () => {
    const noDir = await failure(script('scripts/bootstrap-deployment.ts', '--outputs', outputsFile, '--local'));
    expect(noDir).toMatchObject({ code: 2 });
    expect(noDir.stderr).toContain('--tokenizer-dir is required');
    const badKey = await failure(
      script('scripts/bootstrap-deployment.ts', '--outputs', outputsFile, '--skip-tokenizer', '--key', 'pk_x', '--local'),
    );
    expect(badKey.stderr).toContain('--key must be an sk_ secret key');
    const remoteId = await failure(script('edge/scripts/keys.ts', 'list', '--remote', '--namespace-id', 'sd-edge-keys-local'));
    expect(remoteId).toMatchObject({ code: 2 });
    expect(remoteId.stderr).toContain('--namespace-id with --remote must be a 32-character hex KV namespace id');
    const tokenizerRemote = await failure(
      script('edge/scripts/upload-tokenizer.ts', '--name', 'x', '--dir', dir, '--namespace-id', 'not-hex'),
    );
    expect(tokenizerRemote.stderr).toContain('--namespace-id of a deployed namespace must be 32 hex characters');
  });
});
