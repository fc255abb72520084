import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ElemType, GraphBuilder } from '../default-model/graph-builder.ts';
import { OnnxGraph } from './onnx-session.ts';

/** y = 2x + b: small enough to build here, with two inputs so a bound run must see both refilled. */
function writeAffineGraph(path: string): void {
  const b = new GraphBuilder('affine');
  const x = b.input('x', ElemType.float32, ['n']);
  const bias = b.input('bias', ElemType.float32, ['n']);
  b.op('Add', [b.op('Mul', [x, b.floats([2], [])]), bias], {}, 'out', 'y');
  b.output('y', ElemType.float32, ['n']);
  writeFileSync(path, b.toBytes({ opset: 17, irVersion: 8, producerName: 'test', producerVersion: '1' }));
}

describe('OnnxGraph', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-session-test-'));
  let graph: OnnxGraph;
  beforeAll(async () => {
    writeAffineGraph(join(dir, 'affine.onnx'));
    graph = await OnnxGraph.load(join(dir, 'affine.onnx'), { intraOpNumThreads: 1, measureCpuTime: true });
  });
  afterAll(async () => {
    await graph.release();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a bound run reads the current contents of the input arrays and writes into the preallocated output', async () => {
    const x = new Float32Array([1, 2, 3]);
    const bias = new Float32Array([0, 0, 0]);
    const y = new Float32Array(3);
    const bound = graph.bind({ x: { data: x, dims: [3] }, bias: { data: bias, dims: [3] } }, { y: { data: y, dims: [3] } });
    await bound.run();
    expect([...y]).toEqual([2, 4, 6]);
    x.set([10, 20, 30]);
    bias.fill(1);
    await bound.run();
    expect([...y]).toEqual([21, 41, 61]);
  });

  it('counts wall and CPU time inside run for every call, bound or not', async () => {
    graph.resetStats();
    const feeds = { x: { data: new Float32Array(4), dims: [4] }, bias: { data: new Float32Array(4), dims: [4] } };
    await graph.run(feeds, ['y']);
    await graph.bind(feeds, { y: { data: new Float32Array(4), dims: [4] } }).run();
    expect(graph.runCount).toBe(2);
    expect(graph.runMs).toBeGreaterThan(0);
    expect(graph.runCpuMs).toBeGreaterThanOrEqual(0);
  });
});
