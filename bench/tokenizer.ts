// Bench: our CLIP tokenizer against @huggingface/transformers' AutoTokenizer on the reference prompts, in
// one process: agreement of ids first, then load time, cold and warm throughput (prompts/s).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { ClipTokenizer } from '../shared/src/tokenizer/index.ts';
import { referenceDir } from '../test/support/reference.ts';

interface TokenizerCase {
  prompt: string;
  ids: number[];
  raw_bpe: number[];
}

/** The slice of transformers.js' tokenizer we call; its published types are looser than this. */
interface HfTokenizer {
  (
    text: string,
    options: { padding: 'max_length'; max_length: number; truncation: boolean },
  ): {
    input_ids: { data: ArrayLike<bigint | number> };
  };
  encode(text: string): number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');

/** Milliseconds of CPU this process used (user + system): steadier than wall time on a shared machine. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Prompts per CPU-second of `fn` over `prompts`, repeated until `ms` of CPU have been used. */
function throughput(prompts: readonly string[], fn: (p: string) => unknown, ms: number): number {
  let n = 0;
  const start = cpuMs();
  let elapsed = 0;
  do {
    for (const p of prompts) fn(p);
    n += prompts.length;
    elapsed = cpuMs() - start;
  } while (elapsed < ms);
  return (n / elapsed) * 1000;
}

function timeOnce(fn: () => void): number {
  const start = cpuMs();
  fn();
  return cpuMs() - start;
}

async function loadHf(dir: string): Promise<HfTokenizer> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(dir)}/`;
  // transformers.js returns a callable class instance; only the two members above are used.
  return (await AutoTokenizer.from_pretrained(dir.split('/').pop() as string)) as unknown as HfTokenizer;
}

function classify(c: TokenizerCase): string {
  if (c.prompt.includes('&')) return 'HTML entity (transformers.js does not unescape)';
  if (c.prompt.normalize('NFC') !== c.prompt) return 'not NFC (transformers.js normalizes)';
  if (c.raw_bpe.length > 75) return 'more than 75 BPE tokens (transformers.js truncates after adding EOS)';
  return 'other';
}

export async function run(): Promise<{ title: string; markdown: string }> {
  const title = 'CLIP tokenizer: ours vs @huggingface/transformers';
  if (!referenceDir) return { title, markdown: 'Skipped: ../shared/reference not found (set SD_REFERENCE_DIR).' };
  const dir = join(referenceDir, 'tokenizer');
  const cases = readFileSync(join(referenceDir, 'tokenizer_cases.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TokenizerCase);
  const prompts = cases.map((c) => c.prompt);
  const readFiles = () => ({
    vocab: readFileSync(join(dir, 'vocab.json'), 'utf8'),
    merges: readFileSync(join(dir, 'merges.txt'), 'utf8'),
    tokenizerConfig: readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'),
  });
  const files = readFiles();
  const hfOptions = { padding: 'max_length', max_length: 77, truncation: true } as const;

  // 1. Agreement: both against the goldens and against each other, on the 77-id window.
  const ours = ClipTokenizer.fromFiles(files);
  const hf = await loadHf(dir);
  const oursIds = (p: string) => ours.tokenizePrompt(p, { mode: 'truncate', weighting: false }).ids[0];
  const hfIds = (p: string) => Array.from(hf(p, hfOptions).input_ids.data, Number);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  let oursGolden = 0;
  let hfGolden = 0;
  const differing: TokenizerCase[] = [];
  for (const c of cases) {
    const o = oursIds(c.prompt);
    const h = hfIds(c.prompt);
    if (same(o, c.ids)) oursGolden++;
    if (same(h, c.ids)) hfGolden++;
    if (!same(o, h)) differing.push(c);
  }
  const agreeing = cases.filter((c) => !differing.includes(c)).map((c) => c.prompt);
  const kinds = new Map<string, number>();
  for (const c of differing) kinds.set(classify(c), (kinds.get(classify(c)) ?? 0) + 1);
  process.stdout.write(`  agreement: ours ${oursGolden}/${cases.length} golden, transformers.js ${hfGolden}/${cases.length}\n`);

  // 2. Load: read the files and build the tokenizer (transformers.js reads tokenizer.json itself).
  const loadOurs: number[] = [];
  const loadHfMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    loadOurs.push(timeOnce(() => ClipTokenizer.fromFiles(readFiles())));
    const start = cpuMs();
    await loadHf(dir);
    loadHfMs.push(cpuMs() - start);
  }

  // 3. Cold: a fresh tokenizer (empty word cache), one pass over the prompts; median of 5 fresh instances.
  const coldOurs: number[] = [];
  const coldHf: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = ClipTokenizer.fromFiles(files);
    const oursMs = timeOnce(() => {
      for (const p of prompts) t.tokenizePrompt(p, { mode: 'truncate', weighting: false });
    });
    coldOurs.push((prompts.length / oursMs) * 1000);
    const h = await loadHf(dir);
    const hfMs = timeOnce(() => {
      for (const p of prompts) h(p, hfOptions);
    });
    coldHf.push((prompts.length / hfMs) * 1000);
  }

  process.stdout.write(`  cold prompts/s ours ${coldOurs.map(fmt).join(' ')}; transformers.js ${coldHf.map(fmt).join(' ')}\n`);

  // 4. Warm: repeated passes; the two run alternately in rounds so machine noise hits both alike.
  const rows: Array<{ label: string; ours: (p: string) => unknown; hf: (p: string) => unknown; set: readonly string[] }> = [
    { label: '77-id window, all 158 prompts', ours: oursIds, hf: (p) => hf(p, hfOptions), set: prompts },
    {
      label: `77-id window, the ${agreeing.length} prompts with identical ids`,
      ours: oursIds,
      hf: (p) => hf(p, hfOptions),
      set: agreeing,
    },
    {
      label: 'raw BPE ids (no specials, no padding), all 158',
      ours: (p) => ours.encodeBpe(p),
      hf: (p) => hf.encode(p),
      set: prompts,
    },
  ];
  const warm: string[] = [];
  let headline = 0;
  for (const row of rows) {
    const o: number[] = [];
    const h: number[] = [];
    for (let round = 0; round < 7; round++) {
      o.push(throughput(row.set, row.ours, 250));
      h.push(throughput(row.set, row.hf, 250));
    }
    const ratio = median(o) / median(h);
    if (headline === 0) headline = ratio;
    warm.push(`| ${row.label} | ${fmt(median(o))} | ${fmt(median(h))} | ${ratio.toFixed(1)}x |`);
    process.stdout.write(`  warm ${row.label}: ${fmt(median(o))} vs ${fmt(median(h))} prompts/s\n`);
  }
  const weighted = median(
    Array.from({ length: 5 }, () => throughput(prompts, (p) => ours.tokenizePrompt(p, { mode: 'truncate' }), 250)),
  );
  const chunked = median(
    Array.from({ length: 5 }, () => throughput(prompts, (p) => ours.tokenizePrompt(p, { mode: 'chunk' }), 250)),
  );

  const markdown = [
    `Prompts: the ${cases.length} prompts of \`tokenizer_cases.jsonl\` (58 hand-written tricky cases + 100 PartiPrompts).`,
    `Peer: \`@huggingface/transformers\` ${env.version} \`AutoTokenizer\` from the reference \`tokenizer/tokenizer.json\`,`,
    "called as `tok(prompt, { padding: 'max_length', max_length: 77, truncation: true })`; ours is",
    "`tokenizePrompt(prompt, { mode: 'truncate', weighting: false })`, both giving one 77-id window.",
    '',
    '### Agreement (checked before timing)',
    '',
    `- ours = golden ids on ${oursGolden}/${cases.length} prompts; transformers.js = golden on ${hfGolden}/${cases.length}.`,
    `- ours = transformers.js on ${cases.length - differing.length}/${cases.length}; the ${differing.length} that differ, by kind:`,
    ...[...kinds].map(([k, n]) => `  - ${k}: ${n}`),
    '',
    '### Throughput (prompts per CPU-second, median of rounds; higher is better)',
    '',
    'Time is the process CPU time (user + system, all threads), not wall time, so other jobs on a shared',
    'machine disturb the numbers less; the two tokenizers run alternately, 7 rounds of 250 ms each.',
    '',
    '| workload | ours | transformers.js | ours / theirs |',
    '| --- | ---: | ---: | ---: |',
    `| cold: fresh tokenizer, empty cache, one pass (median of 5) | ${fmt(median(coldOurs))} | ${fmt(median(coldHf))} | ${(median(coldOurs) / median(coldHf)).toFixed(1)}x |`,
    ...warm.map((r) => r.replace(/^\| /, '| warm: ')),
    '',
    `Cold, each fresh instance in run order: ours ${coldOurs.map(fmt).join(', ')}; transformers.js ${coldHf.map(fmt).join(', ')}.`,
    `Load (read the files + build, CPU ms, median of 5): ours ${median(loadOurs).toFixed(0)} ms, transformers.js ${median(loadHfMs).toFixed(0)} ms.`,
    `Ours with A1111 weighting on (the default API path): ${fmt(weighted)} prompts/s warm; chunk mode: ${fmt(chunked)} prompts/s warm.`,
    `Target (issue 2): at least 3x transformers.js warm throughput with identical output: ${headline >= 3 ? 'met' : 'NOT met'} (${headline.toFixed(1)}x).`,
    'Both tokenizers cache BPE per word and nothing per prompt, so warm numbers measure the full path minus BPE merging.',
  ].join('\n');
  return { title, markdown };
}
