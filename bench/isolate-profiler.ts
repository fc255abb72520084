// CPU profiles of the edge worker's isolate, recorded through wrangler dev's inspector (Chrome DevTools protocol), and
// the attribution of their samples to what ran: our code, hono, zod, other bundled packages, wrangler's shims, the runtime.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import WebSocket from 'ws';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  /** Self samples per 1-based line of the frame's script. */
  positionTicks?: Array<{ line: number; ticks: number }>;
}

/** Profiler.stop's profile: times in microseconds of CLOCK_MONOTONIC (the clock of Node's process.hrtime). */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Microseconds on the profile's clock (CLOCK_MONOTONIC on Linux, as V8's TimeTicks). */
export const nowMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/** One inspector session on the user worker's isolate (miniflare's inspector proxy allows one client at a time). */
export class IsolateInspector {
  private nextId = 1;
  private readonly pending = new Map<number, (message: Record<string, unknown>) => void>();
  /** Debugger.scriptParsed events seen: script id by url. */
  private readonly scripts = new Map<string, string>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as Record<string, unknown>;
      if (message.method === 'Debugger.scriptParsed') {
        const params = message.params as { scriptId: string; url: string };
        this.scripts.set(params.url, params.scriptId);
      }
      const id = typeof message.id === 'number' ? message.id : undefined;
      // workerd answers some methods it handles itself (Profiler.enable) by echoing the request: any message with our id settles it.
      const settle = id === undefined ? undefined : this.pending.get(id);
      if (settle && id !== undefined) {
        this.pending.delete(id);
        settle(message);
      }
    });
  }

  static async connect(inspectorPort: number): Promise<IsolateInspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{
      webSocketDebuggerUrl: string;
    }>;
    if (targets.length !== 1)
      throw new Error(`inspector on :${inspectorPort} lists ${targets.length} workers, expected the edge alone`);
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new IsolateInspector(ws);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: no answer to ${method} in 30 s`));
      }, 30_000);
      this.pending.set(id, (message) => {
        clearTimeout(timer);
        if (message.error) reject(new Error(`inspector: ${method} failed: ${JSON.stringify(message.error)}`));
        else resolve(message);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The file path of the wrangler dev bundle the isolate loaded (index.js in a dev- folder of edge/.wrangler/tmp). */
  async bundlePath(): Promise<string> {
    const bundle = /^file:\/\/(\/.*\/\.wrangler\/tmp\/dev-[^/]+\/index\.js)$/;
    await this.send('Debugger.enable');
    try {
      for (let i = 0; i < 100; i++) {
        for (const url of this.scripts.keys()) {
          const m = bundle.exec(url);
          if (m) return decodeURIComponent(m[1]);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`inspector: the isolate runs no wrangler dev bundle; its scripts: ${[...this.scripts.keys()].join(', ')}`);
    } finally {
      await this.send('Debugger.disable');
    }
  }

  async start(samplingIntervalUs: number): Promise<void> {
    await this.send('Profiler.enable');
    await this.send('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await this.send('Profiler.start');
  }

  async stop(): Promise<CpuProfile> {
    const answer = await this.send('Profiler.stop');
    const profile = (answer.result as { profile?: CpuProfile } | undefined)?.profile;
    if (!profile) throw new Error(`inspector: Profiler.stop returned no profile: ${JSON.stringify(answer).slice(0, 200)}`);
    return profile;
  }

  close(): void {
    this.ws.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Attribution.

export const CATEGORIES = ['ours', 'hono', 'zod', 'other packages', 'wrangler/miniflare shims', 'runtime'] as const;
export type Category = (typeof CATEGORIES)[number];

/** What one sample's leaf and stack say: where the CPU went, and whether it ran inside a Durable Object or the logger. */
interface SampleClass {
  category: Category | 'idle';
  durableObject: boolean;
  logging: boolean;
  consumer: boolean;
  /** The share of the leaf's own time spent on statements that call a Durable Object stub (0..1). */
  doCallShare: number;
}

/** Source files (as the bundle's source map names them) of the Durable Object classes and of dispatch (the line). */
const DO_SOURCES =
  /edge\/src\/(predictions\/prediction-object|predictions\/prediction-index|predictions\/chunked-storage|limits\/key-limiter|dispatch\/model-queue)\.ts$/;
/**
 * A statement that calls a method of a Durable Object stub (how our code names stubs: predictionStub(...), queueStub(...),
 * indexStub(...), limiterFor(...), or a variable stub / queue / index holding one).
 */
const DO_CALL =
  /(?:\b(?:predictionStub|queueStub|indexStub|limiterFor)\((?:[^()]|\([^()]*\))*\)|\b(?:stub|queue|index)\b)\s*\.\s*[a-zA-Z]+\s*\(/;
const CONSUMER_SOURCES = /edge\/src\/dispatch\//;
const CONSUMER_FUNCTIONS = new Set(['pump', 'push', 'pushToTarget', 'handOut', 'takeNext', 'claimLease', 'runnerInput']);
/**
 * Functions only dispatch calls, outside edge/src/dispatch/: after an await, a V8 stack holds only the resumed
 * function, so the embedding read of a push (EmbeddingCache.get/getPair, and the base64 of both tensors) shows no
 * dispatch frame. The create path only asks hit or miss (has/hasPair) and never encodes a tensor.
 */
const CONSUMER_ONLY: Array<{ source: RegExp; functions: Set<string> }> = [
  { source: /edge\/src\/embeddings\/embedding-cache\.ts$/, functions: new Set(['get', 'getPair', 'encodeFound']) },
  { source: /shared\/src\/tensor-format\.ts$/, functions: new Set(['encodeTensor']) },
];
const LOG_SOURCE = /edge\/src\/log\.ts$/;
const OUR_SOURCES = /\/(edge|shared)\/src\/.*\.ts$/;

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The source file and line of a generated position, from a source map v3 (only `sources` and `mappings` are read).
 */
export class SourceFileMap {
  /** Per generated line: segment start columns, their source index and original line (0-based), ascending. */
  private readonly lines: Array<{ columns: Int32Array; sources: Int32Array; originalLines: Int32Array }> = [];
  readonly sources: string[];

  constructor(json: string) {
    const map = JSON.parse(json) as { sources: string[]; mappings: string };
    this.sources = map.sources;
    const digit = new Int8Array(128).fill(-1);
    for (let i = 0; i < BASE64.length; i++) digit[BASE64.charCodeAt(i)] = i;
    let source = 0;
    let originalLine = 0;
    for (const line of map.mappings.split(';')) {
      const columns: number[] = [];
      const sources: number[] = [];
      const originalLines: number[] = [];
      let column = 0;
      for (const segment of line.split(',')) {
        if (segment === '') continue;
        // Base64 VLQ fields: generated column, source index, original line, original column[, name], all deltas.
        const fields: number[] = [];
        let value = 0;
        let shift = 0;
        for (let i = 0; i < segment.length; i++) {
          const d = digit[segment.charCodeAt(i)];
          value += (d & 31) << shift;
          if (d & 32) {
            shift += 5;
            continue;
          }
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
        column += fields[0];
        if (fields.length < 4) continue;
        source += fields[1];
        originalLine += fields[2];
        columns.push(column);
        sources.push(source);
        originalLines.push(originalLine);
      }
      this.lines.push({
        columns: Int32Array.from(columns),
        sources: Int32Array.from(sources),
        originalLines: Int32Array.from(originalLines),
      });
    }
  }

  /** The source of the segment covering 0-based (line, column), or null. */
  sourceAt(line: number, column: number): string | null {
    return this.originalAt(line, column)?.source ?? null;
  }

  /** The source file and 0-based original line of the segment covering 0-based (line, column), or null. */
  originalAt(line: number, column: number): { source: string; line: number } | null {
    const l = this.lines[line];
    if (!l || l.columns.length === 0) return null;
    let lo = 0;
    let hi = l.columns.length - 1;
    if (column >= l.columns[0]) {
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (l.columns[mid] <= column) lo = mid;
        else hi = mid - 1;
      }
    }
    const source = this.sources[l.sources[lo]];
    return source === undefined ? null : { source, line: l.originalLines[lo] };
  }
}

/**
 * The source map beside a wrangler dev bundle (index.js.map), its sources made absolute against `bundleDir` (the
 * bundle's folder when it was built; a copy of the bundle elsewhere names it).
 */
export function bundleMap(bundlePath: string, bundleDir = dirname(bundlePath)): SourceFileMap {
  const dir = bundleDir;
  const map = new SourceFileMap(readFileSync(`${bundlePath}.map`, 'utf8'));
  map.sources.forEach((s, i) => {
    if (!s.includes(':')) map.sources[i] = resolve(dir, s);
  });
  return map;
}

/** The bundle's frames: workerd names the main module 'index.js' in profiles (file:// URL in Debugger events). */
const isBundle = (url: string): boolean => url === 'index.js' || /\/\.wrangler\/tmp\/dev-[^/]+\/index\.js$/.test(url);

export class ProfileAttributor {
  /** Source file by frame position (url:line:column): node ids are per profile, positions are per bundle. */
  private readonly sourceOf = new Map<string, string | null>();
  /** Whether a bundle line (1-based) is part of a statement that calls a Durable Object stub. */
  private readonly doCallLine = new Map<number, boolean>();
  private readonly sourceLines = new Map<string, string[] | null>();

  constructor(private readonly map: SourceFileMap) {}

  /** The original source file of a bundle frame, or null for frames outside the bundle. */
  private source(node: ProfileNode): string | null {
    const f = node.callFrame;
    const at = `${f.url}:${f.lineNumber}:${f.columnNumber}`;
    let s = this.sourceOf.get(at);
    if (s !== undefined) return s;
    s = null;
    if (isBundle(f.url) && f.lineNumber >= 0) {
      // CDP positions, like source map segments, are 0-based lines and columns.
      s = this.map.sourceAt(f.lineNumber, f.columnNumber) ?? 'index.js (unmapped)';
    }
    this.sourceOf.set(at, s);
    return s;
  }

  private leafCategory(node: ProfileNode): Category | 'idle' {
    const f = node.callFrame;
    if (f.functionName === '(idle)') return 'idle';
    if (isBundle(f.url)) {
      const s = this.source(node) ?? '';
      if (s.includes('node_modules/hono/')) return 'hono';
      if (s.includes('node_modules/zod/')) return 'zod';
      if (s.includes('node_modules/wrangler/') || s.includes('miniflare') || s.startsWith('wrangler-')) {
        return 'wrangler/miniflare shims';
      }
      if (s.includes('node_modules/')) return 'other packages';
      if (OUR_SOURCES.test(s)) return 'ours';
      return 'wrangler/miniflare shims'; // the bundle's own glue (esbuild helpers, the facade wrangler adds)
    }
    if (f.url.startsWith('__mf_') || f.url.includes('miniflare')) return 'wrangler/miniflare shims';
    // '' (natives, GC, program), node-internal:*, cloudflare-internal:*: workerd and V8.
    return 'runtime';
  }

  private linesOf(source: string): string[] | null {
    let lines = this.sourceLines.get(source);
    if (lines === undefined) {
      lines = existsSync(source) ? readFileSync(source, 'utf8').split('\n') : null;
      this.sourceLines.set(source, lines);
    }
    return lines;
  }

  /**
   * Whether bundle line `line` (1-based, as positionTicks give it) belongs to a statement of our code that calls a
   * Durable Object stub: the statement is read from the original source, from the end of the previous statement to
   * the end of this one (a call spread over lines is reported at any of them).
   */
  private isDoCallLine(line: number): boolean {
    let known = this.doCallLine.get(line);
    if (known !== undefined) return known;
    known = false;
    const at = this.map.originalAt(line - 1, 0);
    const lines = at && OUR_SOURCES.test(at.source) ? this.linesOf(at.source) : null;
    if (at && lines) {
      const ends = (l: string | undefined) => l === undefined || /[;{}]\s*(\/\/.*)?$/.test(l);
      let first = at.line;
      while (first > 0 && at.line - first < 6 && !ends(lines[first - 1])) first--;
      let last = at.line;
      while (last < lines.length - 1 && last - at.line < 6 && !ends(lines[last])) last++;
      known = DO_CALL.test(lines.slice(first, last + 1).join(' '));
    }
    this.doCallLine.set(line, known);
    return known;
  }

  /** The share of a node's self samples on statements that call a Durable Object stub (from its positionTicks). */
  private doCallShare(node: ProfileNode): number {
    if (!isBundle(node.callFrame.url) || !node.positionTicks?.length) return 0;
    let all = 0;
    let calls = 0;
    for (const { line, ticks } of node.positionTicks) {
      all += ticks;
      if (this.isDoCallLine(line)) calls += ticks;
    }
    return all > 0 ? calls / all : 0;
  }

  /** Where a frame is, for a person reading a profile: its source file (relative to the repo) or its url. */
  where(node: ProfileNode): string {
    const s = this.source(node);
    const f = node.callFrame;
    return s ? s.replace(/^.*\/(node_modules|edge|shared)\//, '$1/') : f.url || '(native)';
  }

  /** Classes of every sample, given parent links. */
  classify(profile: CpuProfile): SampleClass[] {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const memo = new Map<number, SampleClass>();
    const classOf = (id: number): SampleClass => {
      const known = memo.get(id);
      if (known) return known;
      const leaf = byId.get(id) as ProfileNode;
      const cls: SampleClass = {
        category: this.leafCategory(leaf),
        durableObject: false,
        logging: false,
        consumer: false,
        doCallShare: this.doCallShare(leaf),
      };
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const node = byId.get(at) as ProfileNode;
        const url = node.callFrame.url;
        if (url.startsWith('__mf_do_wrapper')) cls.durableObject = true;
        if (!isBundle(url)) continue;
        const s = this.source(node) ?? '';
        if (DO_SOURCES.test(s)) cls.durableObject = true;
        if (LOG_SOURCE.test(s)) cls.logging = true;
        const name = node.callFrame.functionName;
        if (CONSUMER_SOURCES.test(s) || CONSUMER_FUNCTIONS.has(name)) cls.consumer = true;
        if (CONSUMER_ONLY.some((c) => c.source.test(s) && c.functions.has(name))) cls.consumer = true;
      }
      memo.set(id, cls);
      return cls;
    };
    return profile.samples.map(classOf);
  }
}

/** CPU of a set of samples, in ms: by category, inside Durable Objects, in the logger. */
export interface CpuSplit {
  totalMs: number;
  byCategory: Record<Category, number>;
  durableObjectMs: number;
  loggingMs: number;
  /**
   * Outside Durable Objects, the caller's own time in statements that call a Durable Object stub. Locally that is
   * mostly workerd starting a new object (its SQLite storage) inside the caller's call; deployed, the object starts in
   * its own isolate, and the caller only serializes the arguments.
   */
  doCallMs: number;
}

export const emptySplit = (): CpuSplit => ({
  totalMs: 0,
  byCategory: Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>,
  durableObjectMs: 0,
  loggingMs: 0,
  doCallMs: 0,
});

export interface WindowedSplit {
  /** Samples inside the request windows, less the queue consumer's (recognised by its stack). */
  inRequests: CpuSplit;
  /** Everything else the isolate ran during the profile: queue consumer, alarms, work after the response. */
  background: CpuSplit;
  /** The profile's sampling interval as observed (median gap between samples), µs. */
  intervalUs: number;
  /** Each window's own CPU (ms), as inRequests counts it: its median resists the machine's other load. */
  perWindowMs: number[];
  /** Each window's CPU outside Durable Objects: what the request's own CPU limit counts. */
  perWindowWorkerMs: number[];
  /** The same less the caller's time in Durable Object calls (CpuSplit.doCallMs): what a deployed request pays. */
  perWindowDeployedMs: number[];
}

function add(split: CpuSplit, cls: SampleClass, ms: number): void {
  if (cls.category === 'idle') return;
  split.totalMs += ms;
  split.byCategory[cls.category] += ms;
  if (cls.durableObject) split.durableObjectMs += ms;
  else split.doCallMs += ms * cls.doCallShare;
  if (cls.logging) split.loggingMs += ms;
}

/** Gaps longer than this are pauses of the isolate (idle between requests), not its sampling period. */
const MAX_SAMPLING_GAP_US = 2000;

/**
 * The sampling period while the isolate runs: the median gap between samples, pauses left out (a profile of short
 * requests is mostly idle, and the median of all its gaps would be the idle time between them).
 */
export function samplingIntervalUs(profile: CpuProfile): number {
  const all = profile.timeDeltas.filter((d) => d > 0).sort((a, b) => a - b);
  const running = all.filter((d) => d <= MAX_SAMPLING_GAP_US);
  const gaps = running.length > 0 ? running : all;
  return gaps[Math.floor(gaps.length / 2)] ?? 0;
}

/**
 * Splits a profile's CPU between the request windows [start, end] (µs, same clock) and the rest. Each sample weighs
 * the gap since the previous one, capped at the sampling period (samplingIntervalUs): workerd takes no samples while the isolate is not running,
 * so a sample after a pause stands for one interval, not for the pause.
 */
export function splitByWindows(
  attributor: ProfileAttributor,
  profile: CpuProfile,
  windows: Array<{ start: number; end: number }>,
): WindowedSplit {
  const classes = attributor.classify(profile);
  const intervalUs = samplingIntervalUs(profile);
  const sorted = [...windows].sort((a, b) => a.start - b.start);
  const inRequests = emptySplit();
  const background = emptySplit();
  const perWindowMs = new Array<number>(sorted.length).fill(0);
  const perWindowWorkerMs = new Array<number>(sorted.length).fill(0);
  const perWindowDeployedMs = new Array<number>(sorted.length).fill(0);
  let t = profile.startTime;
  let w = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    while (w < sorted.length && sorted[w].end < t) w++;
    const inside = w < sorted.length && sorted[w].start <= t;
    const cls = classes[i];
    const ms = Math.min(Math.max(delta, 0), intervalUs) / 1000;
    const counted = inside && !cls.consumer;
    add(counted ? inRequests : background, cls, ms);
    if (counted && cls.category !== 'idle') {
      perWindowMs[w] += ms;
      if (!cls.durableObject) {
        perWindowWorkerMs[w] += ms;
        perWindowDeployedMs[w] += ms * (1 - cls.doCallShare);
      }
    }
  }
  return { inRequests, background, intervalUs, perWindowMs, perWindowWorkerMs, perWindowDeployedMs };
}

/**
 * The functions that spent a window's CPU, self time and total (inclusive) time in ms, heaviest first: what a person
 * reads to find where a request's time goes (EDGE_CPU_DUMP writes it beside each profile).
 */
export function topFunctions(
  attributor: ProfileAttributor,
  profile: CpuProfile,
  windows: Array<{ start: number; end: number }>,
  { limit = 60, durableObjects = false }: { limit?: number; durableObjects?: boolean } = {},
): string {
  const classes = attributor.classify(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const intervalUs = samplingIntervalUs(profile);
  const sorted = [...windows].sort((a, b) => a.start - b.start);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let t = profile.startTime;
  let w = 0;
  let all = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    while (w < sorted.length && sorted[w].end < t) w++;
    const cls = classes[i];
    if (!(w < sorted.length && sorted[w].start <= t) || cls.consumer || cls.category === 'idle') continue;
    if (cls.durableObject !== durableObjects) continue;
    const ms = Math.min(Math.max(delta, 0), intervalUs) / 1000;
    all += ms;
    const seen = new Set<string>();
    for (let at: number | undefined = profile.samples[i]; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at) as ProfileNode;
      const name = `${node.callFrame.functionName || '(anonymous)'} ${attributor.where(node)}`;
      if (at === profile.samples[i]) self.set(name, (self.get(name) ?? 0) + ms);
      if (!seen.has(name)) total.set(name, (total.get(name) ?? 0) + ms);
      seen.add(name);
    }
  }
  const rows = [...total.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit);
  const lines = [`${durableObjects ? 'in DOs' : 'worker (not DO)'}: ${all.toFixed(2)} ms over ${windows.length} windows`];
  for (const [name, ms] of rows)
    lines.push(`${ms.toFixed(2).padStart(8)} total ${(self.get(name) ?? 0).toFixed(2).padStart(8)} self  ${name}`);
  return lines.join('\n');
}
