// Structural checks of infra/ without a terraform binary: every .tf file parses as HCL (@cdktf/hcl2json), and the
// module conventions, variable wiring, provider pins and the edge worker's bindings versus edge/wrangler.jsonc hold.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const infra = join(repo, 'infra');

/** hcl2json's output: blocks are arrays of bodies, expressions are "${...}" strings. */
type Body = Record<string, unknown>;
interface ParsedDir {
  dir: string;
  files: Map<string, Body>;
  /** Raw text per .tf file, comments removed (for reference scans). */
  code: Map<string, string>;
}

const REQUIRED_FILES = ['main.tf', 'variables.tf', 'outputs.tf', 'versions.tf', 'README.md'];
const META_ARGS = new Set(['source', 'version', 'providers', 'depends_on', 'count', 'for_each']);
// A variable whose name says it holds a secret must be marked sensitive; ARNs, ids and names of secrets are not secrets.
const SECRET_NAME = /(^|_)(secret|token|password)(_|$)|secret_access_key/;
const NOT_SECRET = /_(arn|name|id|path|days|seconds)$/;

function listDirs(parent: string): string[] {
  return readdirSync(parent)
    .map((d) => join(parent, d))
    .filter((p) => statSync(p).isDirectory());
}

const moduleDirs = listDirs(join(infra, 'modules'));
const exampleDirs = listDirs(join(infra, 'examples'));
const allDirs = [...moduleDirs, ...exampleDirs];

/** Removes # and // line comments and block comments outside strings (enough for HCL and JSONC). */
function stripComments(text: string, lineComment: RegExp = /^(#|\/\/)/): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (ch === '\\') {
        out += text[++i] ?? '';
      } else if (ch === '"') {
        inString = false;
      }
      continue;
    }
    if (ch === '"') {
      inString = true;
      out += ch;
      continue;
    }
    if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
      continue;
    }
    if (lineComment.test(text.slice(i, i + 2))) {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
      continue;
    }
    out += ch;
  }
  return out;
}

const parsed = new Map<string, ParsedDir>();

async function parseDir(dir: string): Promise<ParsedDir> {
  const files = new Map<string, Body>();
  const code = new Map<string, string>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.tf'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    files.set(f, (await parse(f, text)) as Body);
    code.set(f, stripComments(text));
  }
  return { dir, files, code };
}

function blocks(p: ParsedDir, kind: string): Map<string, Body> {
  const out = new Map<string, Body>();
  for (const body of p.files.values()) {
    const group = body[kind] as Record<string, Body[]> | undefined;
    for (const [name, bodies] of Object.entries(group ?? {})) out.set(name, bodies[0]);
  }
  return out;
}

function resources(p: ParsedDir): Array<{ type: string; name: string; body: Body }> {
  const out: Array<{ type: string; name: string; body: Body }> = [];
  for (const body of p.files.values()) {
    for (const kind of ['resource', 'data']) {
      const group = body[kind] as Record<string, Record<string, Body[]>> | undefined;
      for (const [type, named] of Object.entries(group ?? {})) {
        for (const [name, bodies] of Object.entries(named))
          out.push({ type: kind === 'data' ? `data.${type}` : type, name, body: bodies[0] });
      }
    }
  }
  return out;
}

function locals(p: ParsedDir): Body {
  const out: Body = {};
  for (const body of p.files.values()) for (const l of (body.locals as Body[] | undefined) ?? []) Object.assign(out, l);
  return out;
}

function varRefs(text: string): Set<string> {
  return new Set([...text.matchAll(/\bvar\.([A-Za-z_][A-Za-z0-9_-]*)/g)].map((m) => m[1]));
}

const rel = (p: string) => relative(repo, p);

beforeAll(async () => {
  for (const dir of allDirs) parsed.set(dir, await parseDir(dir));
});

describe('infra layout', () => {
  it('has the three modules and the complete example', () => {
    expect(moduleDirs.map((d) => basename(d)).sort()).toEqual(['edge-worker', 'gpu-runner-fleet', 'object-storage']);
    expect(exampleDirs.map((d) => basename(d))).toContain('complete');
  });

  it.each(allDirs.map(rel))('%s has main.tf, variables.tf, outputs.tf, versions.tf and a README', (d) => {
    const present = readdirSync(join(repo, d));
    const missing = REQUIRED_FILES.filter((f) => !present.includes(f));
    expect(missing, `${d} is missing ${missing.join(', ')}`).toEqual([]);
  });

  it('every module has its primary resource named "this"', () => {
    for (const dir of moduleDirs) {
      const names = resources(parsed.get(dir)!)
        .filter((r) => !r.type.startsWith('data.'))
        .map((r) => r.name);
      expect(names, `${rel(dir)} has no resource named this`).toContain('this');
    }
  });
});

describe('variables and outputs', () => {
  it('every variable has a type and a description', () => {
    const bad: string[] = [];
    for (const p of parsed.values()) {
      for (const [name, v] of blocks(p, 'variable')) {
        if (typeof v.type !== 'string') bad.push(`${rel(p.dir)}: var.${name} has no type`);
        if (typeof v.description !== 'string' || v.description.trim().length < 10)
          bad.push(`${rel(p.dir)}: var.${name} has no description`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('variables are declared in variables.tf only', () => {
    for (const p of parsed.values()) {
      for (const [file, body] of p.files) {
        if (file !== 'variables.tf') expect(body.variable, `${rel(p.dir)}/${file} declares variables`).toBeUndefined();
      }
    }
  });

  it('every var.X used is declared, and every declared variable is used outside variables.tf', () => {
    const bad: string[] = [];
    for (const p of parsed.values()) {
      const declared = new Set(blocks(p, 'variable').keys());
      const usedAnywhere = new Set<string>();
      const usedOutside = new Set<string>();
      for (const [file, text] of p.code) {
        for (const v of varRefs(text)) {
          usedAnywhere.add(v);
          if (file !== 'variables.tf') usedOutside.add(v);
        }
      }
      for (const v of usedAnywhere) if (!declared.has(v)) bad.push(`${rel(p.dir)}: var.${v} is used but not declared`);
      for (const v of declared) if (!usedOutside.has(v)) bad.push(`${rel(p.dir)}: var.${v} is declared but never used`);
    }
    expect(bad).toEqual([]);
  });

  it('validation blocks only reference their own variable and carry an error message', () => {
    const bad: string[] = [];
    for (const p of parsed.values()) {
      for (const [name, v] of blocks(p, 'variable')) {
        for (const val of (v.validation as Body[] | undefined) ?? []) {
          const others = [...varRefs(String(val.condition))].filter((r) => r !== name);
          if (others.length) bad.push(`${rel(p.dir)}: var.${name} validation references ${others.join(', ')}`);
          if (typeof val.error_message !== 'string' || !/[.]$/.test(val.error_message)) {
            bad.push(`${rel(p.dir)}: var.${name} validation needs an error_message sentence`);
          }
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('every variable named like a secret is marked sensitive', () => {
    const bad: string[] = [];
    let secrets = 0;
    for (const p of parsed.values()) {
      for (const [name, v] of blocks(p, 'variable')) {
        if (!SECRET_NAME.test(name) || NOT_SECRET.test(name)) continue;
        secrets++;
        if (v.sensitive !== true) bad.push(`${rel(p.dir)}: var.${name} must be sensitive = true`);
      }
    }
    expect(bad).toEqual([]);
    expect(secrets).toBeGreaterThanOrEqual(6);
  });

  it('every output has a description, and outputs of secrets are sensitive', () => {
    const bad: string[] = [];
    for (const p of parsed.values()) {
      for (const [name, o] of blocks(p, 'output')) {
        if (typeof o.description !== 'string' || o.description.trim().length < 10)
          bad.push(`${rel(p.dir)}: output ${name} has no description`);
        if (SECRET_NAME.test(name) && !NOT_SECRET.test(name) && o.sensitive !== true)
          bad.push(`${rel(p.dir)}: output ${name} must be sensitive`);
        if (/access_key_id/.test(name) && o.sensitive !== true) bad.push(`${rel(p.dir)}: output ${name} must be sensitive`);
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('providers', () => {
  it('every directory pins terraform and each provider with a source and a version constraint', () => {
    const bad: string[] = [];
    for (const p of parsed.values()) {
      const versions = p.files.get('versions.tf');
      const tf = (versions?.terraform as Body[] | undefined)?.[0];
      if (!tf || typeof tf.required_version !== 'string') bad.push(`${rel(p.dir)}: no terraform.required_version`);
      const providers = Object.assign({}, ...(((tf?.required_providers as Body[] | undefined) ?? []) as Body[])) as Record<
        string,
        { source?: string; version?: string }
      >;
      if (Object.keys(providers).length === 0) bad.push(`${rel(p.dir)}: no required_providers`);
      for (const [name, spec] of Object.entries(providers)) {
        if (!spec.source || !/^[a-z0-9-]+\/[a-z0-9-]+$/.test(spec.source))
          bad.push(`${rel(p.dir)}: provider ${name} has no source`);
        if (!spec.version || !/^(~>|>=|=)\s*\d+\.\d+/.test(spec.version))
          bad.push(`${rel(p.dir)}: provider ${name} is not pinned`);
      }
      // Every resource type's provider prefix must be required here (modules must not rely on implicit providers).
      for (const r of resources(p)) {
        const prefix = r.type.replace(/^data\./, '').split('_')[0];
        if (!(prefix in providers))
          bad.push(`${rel(p.dir)}: ${r.type}.${r.name} uses provider ${prefix}, not in required_providers`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the Cloudflare provider is v5 everywhere it is used', () => {
    for (const p of parsed.values()) {
      const tf = ((p.files.get('versions.tf')?.terraform as Body[] | undefined) ?? [{}])[0];
      const providers = Object.assign({}, ...((tf.required_providers as Body[] | undefined) ?? [])) as Record<
        string,
        { version: string }
      >;
      if (providers.cloudflare) expect(providers.cloudflare.version).toBe('~> 5.0');
    }
  });

  it('reusable modules configure no provider blocks (the caller does)', () => {
    for (const dir of moduleDirs) {
      for (const body of parsed.get(dir)!.files.values())
        expect(body.provider, `${rel(dir)} configures a provider`).toBeUndefined();
    }
  });
});

describe('examples', () => {
  it('every module call passes all required variables of the module and no unknown ones', async () => {
    const bad: string[] = [];
    let calls = 0;
    for (const dir of exampleDirs) {
      for (const [name, call] of blocks(parsed.get(dir)!, 'module')) {
        calls++;
        const target = resolve(dir, String(call.source));
        const mod = parsed.get(target) ?? (await parseDir(target));
        const vars = blocks(mod, 'variable');
        const required = [...vars].filter(([, v]) => !('default' in v)).map(([n]) => n);
        const passed = Object.keys(call).filter((k) => !META_ARGS.has(k));
        for (const r of required) if (!passed.includes(r)) bad.push(`${rel(dir)}: module.${name} misses required ${r}`);
        for (const k of passed) if (!vars.has(k)) bad.push(`${rel(dir)}: module.${name} passes unknown ${k}`);
      }
    }
    expect(bad).toEqual([]);
    expect(calls).toBeGreaterThanOrEqual(3);
  });

  it('every module.X.Y output referenced by an example exists in that module', async () => {
    const bad: string[] = [];
    for (const dir of exampleDirs) {
      const p = parsed.get(dir)!;
      const calls = blocks(p, 'module');
      for (const text of p.code.values()) {
        for (const m of text.matchAll(/\bmodule\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)/g)) {
          const call = calls.get(m[1]);
          if (!call) {
            bad.push(`${rel(dir)}: module.${m[1]} is not declared`);
            continue;
          }
          const target = resolve(dir, String(call.source));
          const mod = parsed.get(target) ?? (await parseDir(target));
          if (!blocks(mod, 'output').has(m[2])) bad.push(`${rel(dir)}: module.${m[1]} has no output ${m[2]}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('the complete example outputs the edge URL, the bucket and the runner pool', () => {
    const outputs = blocks(parsed.get(join(infra, 'examples', 'complete'))!, 'output');
    for (const o of ['edge_url', 'bucket', 'runner_pool']) expect(outputs.has(o), `missing output ${o}`).toBe(true);
  });
});

describe('edge-worker module versus edge/wrangler.jsonc', () => {
  const wranglerText = readFileSync(join(repo, 'edge', 'wrangler.jsonc'), 'utf8');
  // JSONC: comments out, trailing commas out. Strings such as "http://..." survive because stripComments skips strings.
  const wrangler = JSON.parse(stripComments(wranglerText, /^\/\//).replace(/,(\s*[}\]])/g, '$1')) as {
    compatibility_date: string;
    compatibility_flags?: string[];
    kv_namespaces?: Array<{ binding: string }>;
    durable_objects?: { bindings: Array<{ name: string; class_name: string }> };
    migrations?: Array<{ tag: string; new_sqlite_classes?: string[]; new_classes?: string[] }>;
    queues?: {
      producers?: Array<{ binding: string; queue: string }>;
      consumers?: Array<{ queue: string; max_retries?: number; max_batch_size?: number; dead_letter_queue?: string }>;
    };
    vars?: Record<string, string>;
  };
  // Secrets are not in the JSON: wrangler.jsonc lists them in its "// Secrets ..." comment lines, and
  // edge/src/env-secrets.d.ts declares them for the types. Both sources count.
  const secretComment: string[] = [];
  const lines = wranglerText.split('\n');
  const start = lines.findIndex((l) => /^\s*\/\/\s*Secrets\b/.test(l));
  for (let i = start; start >= 0 && i < lines.length && /^\s*\/\//.test(lines[i]); i++) secretComment.push(lines[i]);
  const envSecretsPath = join(repo, 'edge', 'src', 'env-secrets.d.ts');
  const envSecrets = statSync(envSecretsPath, { throwIfNoEntry: false })
    ? [...readFileSync(envSecretsPath, 'utf8').matchAll(/^\s*([A-Z][A-Z0-9_]+)\??:\s*string/gm)].map((m) => m[1])
    : [];
  const wranglerSecrets = [
    ...new Set([...[...secretComment.join(' ').matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g)].map((m) => m[0]), ...envSecrets]),
  ];

  const edge = () => parsed.get(join(infra, 'modules', 'edge-worker'))!;
  const mapKeys = (l: Body, key: string) => Object.keys((l[key] as Body | undefined) ?? {});

  it('wrangler.jsonc parses and names its secrets', () => {
    expect(wrangler.kv_namespaces?.length).toBeGreaterThan(0);
    expect(wranglerSecrets).toEqual(expect.arrayContaining(['RUNNER_WEBHOOK_SECRET', 'RUNNER_TOKEN']));
  });

  it('the worker script takes its bindings from local.bindings, which assembles every binding map', () => {
    const script = resources(edge()).find((r) => r.type === 'cloudflare_workers_script' && r.name === 'this');
    expect(script).toBeDefined();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: hcl2json renders an HCL expression as a literal "${...}" string.
    expect(script!.body.bindings).toBe('${local.bindings}');
    const assembled = String(locals(edge()).bindings);
    for (const m of [
      'kv_bindings',
      'durable_object_bindings',
      'queue_producer_bindings',
      'plain_text_bindings',
      'secret_text_bindings',
    ]) {
      expect(assembled, `local.bindings does not use local.${m}`).toContain(`local.${m}`);
    }
  });

  it('covers every KV, Durable Object, queue, var and secret binding of wrangler.jsonc', () => {
    const l = locals(edge());
    const tfNames = new Set([
      ...mapKeys(l, 'kv_bindings'),
      ...mapKeys(l, 'durable_object_bindings'),
      ...mapKeys(l, 'queue_producer_bindings'),
      ...mapKeys(l, 'plain_text_bindings'),
      ...mapKeys(l, 'secret_text_bindings'),
    ]);
    const wranglerNames = [
      ...(wrangler.kv_namespaces ?? []).map((k) => k.binding),
      ...(wrangler.durable_objects?.bindings ?? []).map((b) => b.name),
      ...(wrangler.queues?.producers ?? []).map((p) => p.binding),
      ...Object.keys(wrangler.vars ?? {}),
      ...wranglerSecrets,
    ];
    const missing = wranglerNames.filter((n) => !tfNames.has(n));
    expect(missing, `edge-worker lacks bindings ${missing.join(', ')}`).toEqual([]);
    // Each binding kind matches too: a KV binding in wrangler is a KV binding here.
    expect(mapKeys(l, 'kv_bindings')).toEqual(expect.arrayContaining((wrangler.kv_namespaces ?? []).map((k) => k.binding)));
    expect(mapKeys(l, 'secret_text_bindings')).toEqual(expect.arrayContaining(wranglerSecrets));
  });

  it('binds the same Durable Object classes and migrations as wrangler.jsonc', () => {
    const l = locals(edge());
    const doMap = l.durable_object_bindings as Record<string, string>;
    for (const b of wrangler.durable_objects?.bindings ?? []) expect(doMap[b.name]).toBe(b.class_name);
    const tfMigrations = l.durable_object_migrations as Array<{ tag: string; new_sqlite_classes?: string[] }>;
    expect(tfMigrations.map((m) => m.tag)).toEqual((wrangler.migrations ?? []).map((m) => m.tag));
    expect(tfMigrations.map((m) => [...(m.new_sqlite_classes ?? [])].sort())).toEqual(
      (wrangler.migrations ?? []).map((m) => [...(m.new_sqlite_classes ?? [])].sort()),
    );
  });

  it('deploys with the compatibility date and flags of wrangler.jsonc by default', () => {
    const vars = blocks(edge(), 'variable');
    expect(vars.get('compatibility_date')?.default).toBe(wrangler.compatibility_date);
    expect(vars.get('compatibility_flags')?.default).toEqual(wrangler.compatibility_flags ?? []);
  });

  it('the job queue consumer defaults match wrangler.jsonc (batch of one, same retry budget, a dead-letter queue)', () => {
    const jobs = (wrangler.queues?.consumers ?? []).find((c) => c.dead_letter_queue);
    expect(jobs).toBeDefined();
    const consumerVar = blocks(edge(), 'variable').get('queue_consumer')!;
    const type = String(consumerVar.type);
    expect(type.replace(/\s+/g, ' ')).toContain(`max_retries = optional(number, ${jobs!.max_retries})`);
    expect(type.replace(/\s+/g, ' ')).toContain(`batch_size = optional(number, ${jobs!.max_batch_size})`);
    const consumer = resources(edge()).find((r) => r.type === 'cloudflare_queue_consumer' && r.name === 'jobs');
    expect(String(consumer?.body.dead_letter_queue)).toContain('cloudflare_queue.dead_letter');
  });
});

describe('gpu-runner-fleet module', () => {
  const fleet = () => parsed.get(join(infra, 'modules', 'gpu-runner-fleet'))!;

  it('sets the runner environment of the contract and takes secrets from Secrets Manager, not user data', () => {
    const env = String((locals(fleet()).environment as string | undefined) ?? '');
    for (const k of [
      'PORT',
      'HOST',
      'ORT_PROVIDERS',
      'S3_BUCKET',
      'S3_REGION',
      'S3_ENDPOINT',
      'S3_FORCE_PATH_STYLE',
      'S3_PUBLIC_BASE_URL',
    ]) {
      expect(env, `runner environment lacks ${k}`).toContain(k);
    }
    const secrets = String(locals(fleet()).secrets);
    for (const k of ['API_TOKEN', 'WEBHOOK_SIGNING_SECRET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
      expect(secrets).toContain(k);
    expect(env).not.toMatch(/API_TOKEN|WEBHOOK_SIGNING_SECRET|SECRET_ACCESS_KEY/);
    const template = readFileSync(join(fleet().dir, 'user-data.sh.tftpl'), 'utf8');
    expect(template).toContain('secretsmanager get-secret-value');
    expect(template).toContain('--gpus all');
    expect(template).toContain('-p 5000:5000');
  });

  it('opens port 5000 only to the load balancer or the Cloudflare ranges variable', () => {
    const rules = resources(fleet()).filter((r) => r.type === 'aws_vpc_security_group_ingress_rule');
    expect(rules.length).toBeGreaterThan(0);
    for (const r of rules) {
      const source =
        String(r.body.cidr_ipv4 ?? '') + String(r.body.referenced_security_group_id ?? '') + String(r.body.for_each ?? '');
      expect(source, `${r.name} is open to something other than Cloudflare or the ALB`).toMatch(
        /cloudflare_ip_ranges|aws_security_group\.alb/,
      );
      expect(source).not.toContain('0.0.0.0/0');
    }
  });

  it('scales on the queue-depth metric and wakes an empty fleet', () => {
    const rs = resources(fleet());
    const tracking = rs.find((r) => r.type === 'aws_autoscaling_policy' && r.body.policy_type === 'TargetTrackingScaling');
    expect(JSON.stringify(tracking?.body)).toContain('var.scaling.metric_name');
    const alarm = rs.find((r) => r.type === 'aws_cloudwatch_metric_alarm');
    expect(JSON.stringify(alarm?.body)).toContain('aws_autoscaling_policy.wake.arn');
  });
});
