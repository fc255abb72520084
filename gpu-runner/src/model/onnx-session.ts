// The only module that talks to onnxruntime-node: one InferenceSession per graph, its interface read from
// the graph's metadata, execution-provider fallback, and the time spent inside `run` (for the benchmark).
import { errorMessage } from '@sd/shared/error-message';
import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt' | 'dml';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionConfig {
  /** Tried in order, then cpu; default ['cpu']. */
  executionProviders?: readonly ExecutionProvider[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /**
   * Let idle intra-op threads busy-wait for the next parallel section (onnxruntime's default, true). Spinning
   * saves a wake-up per section on a dedicated host; on a shared or oversubscribed machine the spinning threads
   * take cores from the thread that has work, the loop's JavaScript included.
   */
  allowSpinning?: boolean;
  /**
   * Also count process CPU time inside run (runCpuMs). Off by default: the two getrusage calls per run cost a
   * few microseconds, which the benchmark pays to separate CPU time from time stolen by other processes.
   */
  measureCpuTime?: boolean;
  /** Receives warnings such as a provider falling back to cpu. */
  logger?: (level: 'warn' | 'info', message: string) => void;
}

/** Element types this project feeds or reads. */
export type TensorDtype = 'float32' | 'int32' | 'int64' | 'float16';

export interface TensorInfo {
  name: string;
  dtype: string;
  /** Numbers for fixed dims, strings for symbolic ones; empty when the graph does not say. */
  dims: readonly (number | string)[];
}

export type TensorData = Float32Array | Int32Array | BigInt64Array;

export interface Feed {
  data: TensorData;
  dims: readonly number[];
}

export interface FloatOutput {
  data: Float32Array;
  dims: number[];
}

/** Process CPU time (user + system, all threads) in milliseconds. */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * A run with its inputs and outputs bound once: the onnxruntime tensors wrap the caller's arrays, so a loop
 * refills the arrays and calls run() again without building tensors or result objects per call.
 */
export interface BoundRun {
  run(): Promise<unknown>;
}

export const VALID_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'tensorrt', 'dml'];

function sessionOptions(config: SessionConfig, providers: readonly ExecutionProvider[]): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [...providers],
    graphOptimizationLevel: config.graphOptimizationLevel ?? 'all',
    // onnxruntime's defaults, stated so a change of default cannot slow the loop unnoticed: the arena keeps freed
    // blocks for the next run, the memory pattern plans a run's allocations from the previous run of that shape,
    // and sequential execution avoids inter-op thread hand-offs that SD's mostly linear graphs cannot use.
    enableCpuMemArena: true,
    enableMemPattern: true,
    executionMode: 'sequential',
    // onnxruntime's own stderr logging is noisy on a provider failure we already report through the logger.
    logSeverityLevel: 3,
  };
  if (config.intraOpNumThreads !== undefined) options.intraOpNumThreads = config.intraOpNumThreads;
  if (config.interOpNumThreads !== undefined) options.interOpNumThreads = config.interOpNumThreads;
  if (config.allowSpinning !== undefined) {
    const flag = config.allowSpinning ? '1' : '0';
    options.extra = { session: { intra_op: { allow_spinning: flag }, inter_op: { allow_spinning: flag } } };
  }
  return options;
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, dtype: m.type, dims: [...m.shape] } : { name: m.name, dtype: 'non-tensor', dims: [] },
  );
}

/** One ONNX graph with a live session, reused for every call. */
export class OnnxGraph {
  /** Total wall milliseconds spent inside session.run since load (or the last resetStats). */
  runMs = 0;
  /** Total process CPU milliseconds (all threads) over the same spans, when measureCpuTime is on; else 0. */
  runCpuMs = 0;
  runCount = 0;
  measureCpuTime = false;

  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
    readonly provider: ExecutionProvider,
    readonly inputs: readonly TensorInfo[],
    readonly outputs: readonly TensorInfo[],
  ) {}

  /**
   * Creates the session. A requested GPU provider that this onnxruntime build cannot load is reported through
   * `config.logger` and replaced by cpu, so one config works on GPU hosts and on CPU-only machines.
   */
  static async load(path: string, config: SessionConfig = {}): Promise<OnnxGraph> {
    const requested = (config.executionProviders ?? ['cpu']).filter((p) => p !== 'cpu');
    for (const provider of requested) {
      try {
        const session = await ort.InferenceSession.create(path, sessionOptions(config, [provider, 'cpu']));
        return OnnxGraph.wrap(path, session, provider, config);
      } catch (err) {
        config.logger?.('warn', `execution provider ${provider} unavailable for ${path} (${firstLine(err)}); falling back`);
      }
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, sessionOptions(config, ['cpu']));
    } catch (err) {
      throw new Error(`cannot load ONNX graph ${path}: ${firstLine(err)}`);
    }
    return OnnxGraph.wrap(path, session, 'cpu', config);
  }

  private static wrap(
    path: string,
    session: ort.InferenceSession,
    provider: ExecutionProvider,
    config: SessionConfig,
  ): OnnxGraph {
    const graph = new OnnxGraph(path, session, provider, describe(session.inputMetadata), describe(session.outputMetadata));
    graph.measureCpuTime = config.measureCpuTime ?? false;
    return graph;
  }

  input(name: string): TensorInfo | undefined {
    return this.inputs.find((i) => i.name === name);
  }

  output(name: string): TensorInfo | undefined {
    return this.outputs.find((o) => o.name === name);
  }

  /**
   * Runs the graph; every requested output must be a float32 tensor. Inputs are wrapped, not copied.
   * `into` gives preallocated output buffers (onnxruntime writes into them), so a loop allocates nothing per call.
   */
  async run(
    feeds: Record<string, Feed>,
    outputNames: readonly string[],
    into?: Record<string, FloatOutput>,
  ): Promise<Record<string, FloatOutput>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(feed.data, feed.dims as number[]);
    let fetches: string[] | Record<string, ort.Tensor> = outputNames as string[];
    if (into) {
      fetches = {};
      for (const name of outputNames) fetches[name] = new ort.Tensor('float32', into[name].data, into[name].dims);
    }
    const results = await this.timedRun(ortFeeds, fetches);
    const out: Record<string, FloatOutput> = {};
    for (const name of outputNames) {
      const tensor = results[name] as ort.Tensor | undefined;
      if (!tensor) throw new Error(`${this.path}: output ${name} missing from run results`);
      if (tensor.type !== 'float32')
        throw new Error(`${this.path}: output ${name} is ${tensor.type}, only float32 outputs are supported`);
      out[name] = into ? into[name] : { data: tensor.data as Float32Array, dims: [...tensor.dims] };
    }
    return out;
  }

  /**
   * Binds feeds and preallocated float32 outputs for repeated runs (the denoising loop). The arrays are wrapped,
   * not copied: change their contents between runs, never their length.
   */
  bind(feeds: Record<string, Feed>, outputs: Record<string, FloatOutput>): BoundRun {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(feed.data, feed.dims as number[]);
    const fetches: Record<string, ort.Tensor> = {};
    for (const [name, out] of Object.entries(outputs)) fetches[name] = new ort.Tensor('float32', out.data, out.dims);
    // No async wrapper of our own: each promise layer adds a microtask hop to every step.
    return { run: () => this.timedRun(ortFeeds, fetches) };
  }

  private async timedRun(
    feeds: Record<string, ort.Tensor>,
    fetches: string[] | Record<string, ort.Tensor>,
  ): Promise<ort.InferenceSession.ReturnType> {
    const c0 = this.measureCpuTime ? processCpuMs() : 0;
    const t0 = performance.now();
    const results = await this.session.run(feeds, fetches);
    this.runMs += performance.now() - t0;
    if (this.measureCpuTime) this.runCpuMs += processCpuMs() - c0;
    this.runCount++;
    return results;
  }

  resetStats(): void {
    this.runMs = 0;
    this.runCpuMs = 0;
    this.runCount = 0;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function firstLine(err: unknown): string {
  const message = errorMessage(err);
  return message.split('\n')[0];
}
