// A small ONNX graph builder over onnx-proto: graph inputs/outputs with symbolic dims, float and int64
// initializers, and node helpers, serialized to a ModelProto (standard-domain ops only).
import { createRequire } from 'node:module';
import type { onnx as OnnxNamespace } from 'onnx-proto';

// onnx-proto is CommonJS and Node's ESM loader cannot see its named export, so load it through require.
const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');

export const ElemType = { float32: 1, int32: 6, int64: 7 } as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

/** A dimension: a fixed size, or a symbolic name (dynamic). */
export type Dim = number | string;

/** Marks a float attribute (plain numbers are int attributes). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (value: number) => new FloatAttr(value);
export type AttrValue = number | number[] | string | FloatAttr;

export interface ModelOptions {
  opset: number;
  irVersion: number;
  producerName: string;
  producerVersion: string;
}

const encoder = new TextEncoder();

function valueInfo(name: string, elemType: ElemType, dims: Dim[]): OnnxNamespace.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): OnnxNamespace.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (value instanceof FloatAttr) return { name, type: T.FLOAT, f: value.value };
  if (typeof value === 'string') return { name, type: T.STRING, s: encoder.encode(value) };
  if (Array.isArray(value)) {
    for (const v of value) if (!Number.isInteger(v)) throw new Error(`attribute ${name} must hold integers, got ${v}`);
    return { name, type: T.INTS, ints: value };
  }
  if (!Number.isInteger(value)) throw new Error(`attribute ${name} must be an integer (wrap floats in float()), got ${value}`);
  return { name, type: T.INT, i: value };
}

/** Raw little-endian bytes of a typed array (ONNX raw_data is little-endian; so are x86 and arm64). */
function rawBytes(data: Float32Array | BigInt64Array | Int32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class GraphBuilder {
  private readonly nodes: OnnxNamespace.INodeProto[] = [];
  private readonly initializers: OnnxNamespace.ITensorProto[] = [];
  private readonly inputs: OnnxNamespace.IValueInfoProto[] = [];
  private readonly outputs: OnnxNamespace.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`tensor name ${name} is already used in graph ${this.name}`);
    this.names.add(name);
    return name;
  }

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declares `name` (already produced by a node) as a graph output. */
  output(name: string, elemType: ElemType, dims: Dim[]): void {
    if (!this.names.has(name)) throw new Error(`graph output ${name} is not produced in graph ${this.name}`);
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float32 weight tensor of the given dims. */
  weight(name: string, data: Float32Array, dims: number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`weight ${name} has ${data.length} values, dims [${dims}] need ${count}`);
    this.initializers.push({ name: this.claim(name), dataType: ElemType.float32, dims, rawData: rawBytes(data) });
    return name;
  }

  /** A shared int64 constant (deduplicated by value), e.g. a Reshape target or Unsqueeze axes. */
  int64s(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    const existing = this.constants.get(key);
    if (existing) return existing;
    const name = this.claim(`const_i64_${this.constants.size}`);
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({ name, dataType: ElemType.int64, dims: [values.length], rawData: rawBytes(data) });
    this.constants.set(key, name);
    return name;
  }

  /** A shared float32 constant (deduplicated by value and dims). */
  floats(values: number[] | Float32Array, dims: number[]): string {
    const data = Float32Array.from(values);
    const key = `f32:${dims.join('x')}:${data.length <= 16 ? data.join(',') : `#${this.constants.size}`}`;
    const existing = this.constants.get(key);
    if (existing) return existing;
    const name = this.weight(`const_f32_${this.constants.size}`, data, dims);
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node with one output; returns the output name (`out` when given, else a fresh one). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = '', out?: string): string {
    const [output] = this.opN(opType, inputs, 1, attrs, hint, out ? [out] : undefined);
    return output;
  }

  opN(
    opType: string,
    inputs: string[],
    outputCount: number,
    attrs: Record<string, AttrValue> = {},
    hint = '',
    outs?: string[],
  ): string[] {
    const nodeName = `${hint ? `${hint}/` : ''}${opType}_${this.counter++}`;
    const outputs = outs ?? Array.from({ length: outputCount }, (_, i) => `${nodeName}:${i}`);
    for (const o of outputs) this.claim(o);
    this.nodes.push({
      name: nodeName,
      opType,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Serializes the graph to ONNX bytes. */
  toBytes(options: ModelOptions): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: options.irVersion,
      producerName: options.producerName,
      producerVersion: options.producerVersion,
      opsetImport: [{ domain: '', version: options.opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /** Number of float32 weight values (for reporting). */
  parameterCount(): number {
    let n = 0;
    for (const t of this.initializers) if (t.dataType === ElemType.float32) n += (t.rawData?.length ?? 0) / 4;
    return n;
  }
}
