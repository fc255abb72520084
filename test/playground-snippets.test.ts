// The playground's snippets as the tools that would run them read them: bash and Python parse them, node checks the
// JavaScript, and the JSON body inside each is the body given (quotes and non-ASCII text included).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CreateBody, pythonLiteral, snippet } from '../edge/web/playground/snippets.ts';

const PYTHON = '/usr/bin/python3';
const body: CreateBody = {
  version: 'sd/embedded:embedded-v5',
  input: {
    prompt: `it's a "red" circle — naïve 🎨`,
    negative_prompt: 'green\nblue',
    num_inference_steps: 6,
    guidance_scale: 6.5,
  },
};
const dir = mkdtempSync(join(tmpdir(), 'snippets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('playground snippets', () => {
  it('curl: bash parses it, and the -d argument it would send is the JSON body', () => {
    const text = snippet('curl', 'http://127.0.0.1:8787', body);
    // Replace curl with a printer of its last argument: what bash would hand curl as the body.
    const script = `curl() { printf '%s' "\${@: -1}"; }\n${text}`;
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(body);
    expect(text).toContain('-X POST http://127.0.0.1:8787/v1/predictions');
  });

  it('fetch: node accepts it as a module', () => {
    const file = join(dir, 'fetch.mjs');
    writeFileSync(file, snippet('fetch', 'http://127.0.0.1:8787', body));
    const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('replicate: node accepts it as a module, with the version and the input', () => {
    const text = snippet('replicate', 'http://127.0.0.1:8787', body);
    const file = join(dir, 'replicate.mjs');
    writeFileSync(file, text);
    expect(spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' }).status).toBe(0);
    expect(text).toContain('replicate.run("sd/embedded:embedded-v5"');
    expect(text).toContain('baseUrl: "http://127.0.0.1:8787/v1"');
  });

  // /usr/bin/python3 is on every machine that runs the tests (.ci/run installs Debian's Python for the trainer).
  it('python: Python evaluates its json= argument to the body', () => {
    const text = snippet('python', 'http://127.0.0.1:8787', body);
    // Python's own parser: the whole snippet compiles, and the literal evaluates to the body.
    const check = [
      'import ast, json, sys',
      'src = sys.stdin.read()',
      'compile(src, "snippet.py", "exec")',
      'call = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call) and any(k.arg == "json" for k in n.keywords))',
      'print(json.dumps(ast.literal_eval(next(k.value for k in call.keywords if k.arg == "json"))))',
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', check], { input: text, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(body);
  });

  it('pythonLiteral writes true, false and null as Python does', () => {
    expect(pythonLiteral({ a: true, b: false, c: null, d: [1, 'x'] })).toBe(
      '{\n    "a": True,\n    "b": False,\n    "c": None,\n    "d": [1, "x"],\n}',
    );
  });

  it('pythonLiteral writes a number JSON cannot hold (NaN from a half-typed field) as None, as JSON writes null', () => {
    expect(pythonLiteral({ seed: Number.NaN, guidance_scale: Number.POSITIVE_INFINITY })).toBe(
      '{\n    "seed": None,\n    "guidance_scale": None,\n}',
    );
    expect(JSON.stringify({ seed: Number.NaN })).toBe('{"seed":null}');
  });

  it('never contains a key: every snippet reads SD_API_KEY from the environment', () => {
    for (const lang of ['curl', 'fetch', 'replicate', 'python'] as const) {
      expect(snippet(lang, 'http://127.0.0.1:8787', body), lang).toMatch(/SD_API_KEY/);
    }
  });
});
