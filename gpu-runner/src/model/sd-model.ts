// A loaded Stable Diffusion model: the four sessions plus the interface facts read from their metadata
// (names, dtypes, hidden size, latent and U-Net input channels), so no export's quirks are hard-coded.
import { errorMessage } from '@sd/shared/error-message';
import { type ModelDirectory, ModelLoadError, readModelDirectory } from './model-dir.ts';
import { OnnxGraph, type SessionConfig, type TensorInfo } from './onnx-session.ts';
import { type ClipSkipSupport, readClipSkipSupport } from './text-hidden-states.ts';

export interface ModelInterface {
  text: {
    input: string;
    inputDtype: 'int32' | 'int64';
    output: string;
    hiddenSize: number | null;
    sequenceLength: number | null;
    /** The per-layer outputs and final LayerNorm clip_skip > 1 uses, or why this export cannot do it. */
    clipSkip: ClipSkipSupport;
  };
  unet: {
    sample: string;
    timestep: string;
    encoderHiddenStates: string;
    output: string;
    /** 4 for a regular U-Net, 9 for an inpainting one (latents + mask + masked-image latents). */
    inChannels: number;
    /** float32 in the diffusers script export, int64 in optimum exports. */
    timestepDtype: 'float32' | 'int64';
    /** 'batch': [batch] (diffusers script, optimum 1.x); 'scalar': rank 0, one timestep for the batch (newer optimum). */
    timestepShape: 'batch' | 'scalar';
  };
  latentChannels: number;
  isInpainting: boolean;
  vaeDecoder: { input: string; output: string };
  vaeEncoder: { input: string; output: string } | null;
  vaeScalingFactor: number;
}

export interface SdModel {
  files: ModelDirectory;
  textEncoder: OnnxGraph;
  unet: OnnxGraph;
  vaeDecoder: OnnxGraph;
  vaeEncoder: OnnxGraph | null;
  io: ModelInterface;
  release(): Promise<void>;
}

const fixedDim = (info: TensorInfo | undefined, axis: number): number | null => {
  const d = info?.dims[axis];
  return typeof d === 'number' && d > 0 ? d : null;
};

function pick(graph: OnnxGraph, kind: 'input' | 'output', preferred: readonly string[], index: number): TensorInfo {
  const list = kind === 'input' ? graph.inputs : graph.outputs;
  for (const name of preferred) {
    const found = list.find((t) => t.name === name);
    if (found) return found;
  }
  const fallback = list[index];
  if (!fallback) throw new ModelLoadError(graph.path, `has no ${kind} named ${preferred.join(' or ')} and no ${kind} #${index}`);
  return fallback;
}

function requireFloat(graph: OnnxGraph, info: TensorInfo): void {
  if (info.dtype !== 'float32') {
    throw new ModelLoadError(
      graph.path,
      `${info.name} is ${info.dtype}; only float32 exports are supported (export without --fp16)`,
    );
  }
}

/** Reads names, dtypes and dims from the sessions' metadata. */
export function describeModel(
  files: ModelDirectory,
  g: Pick<SdModel, 'textEncoder' | 'unet' | 'vaeDecoder' | 'vaeEncoder'>,
): ModelInterface {
  const textIn = pick(g.textEncoder, 'input', ['input_ids'], 0);
  if (textIn.dtype !== 'int32' && textIn.dtype !== 'int64') {
    throw new ModelLoadError(g.textEncoder.path, `${textIn.name} must be int32 or int64, got ${textIn.dtype}`);
  }
  const textOut = pick(g.textEncoder, 'output', ['last_hidden_state'], 0);
  requireFloat(g.textEncoder, textOut);

  const sample = pick(g.unet, 'input', ['sample'], 0);
  const timestep = pick(g.unet, 'input', ['timestep'], 1);
  const ehs = pick(g.unet, 'input', ['encoder_hidden_states'], 2);
  const unetOut = pick(g.unet, 'output', ['out_sample'], 0);
  requireFloat(g.unet, sample);
  requireFloat(g.unet, ehs);
  if (timestep.dtype !== 'float32' && timestep.dtype !== 'int64') {
    throw new ModelLoadError(g.unet.path, `${timestep.name} must be float32 or int64, got ${timestep.dtype}`);
  }

  const decIn = pick(g.vaeDecoder, 'input', ['latent_sample'], 0);
  const decOut = pick(g.vaeDecoder, 'output', ['sample'], 0);
  requireFloat(g.vaeDecoder, decIn);

  const configIn = typeof files.unetConfig?.in_channels === 'number' ? files.unetConfig.in_channels : null;
  const inChannels = fixedDim(sample, 1) ?? configIn ?? 4;
  const configOut = typeof files.unetConfig?.out_channels === 'number' ? files.unetConfig.out_channels : null;
  const latentChannels = fixedDim(unetOut, 1) ?? fixedDim(decIn, 1) ?? configOut ?? 4;
  const isInpainting = inChannels === 2 * latentChannels + 1;
  if (inChannels !== latentChannels && !isInpainting) {
    throw new ModelLoadError(
      g.unet.path,
      `U-Net takes ${inChannels} channels; expected ${latentChannels} (regular) or ${2 * latentChannels + 1} (inpainting)`,
    );
  }

  let vaeEncoder: ModelInterface['vaeEncoder'] = null;
  if (g.vaeEncoder) {
    vaeEncoder = {
      input: pick(g.vaeEncoder, 'input', ['sample'], 0).name,
      output: pick(g.vaeEncoder, 'output', ['latent_sample', 'latent_parameters', 'latent_dist'], 0).name,
    };
  }

  return {
    text: {
      input: textIn.name,
      inputDtype: textIn.dtype,
      output: textOut.name,
      hiddenSize: fixedDim(textOut, 2) ?? fixedDim(ehs, 2),
      sequenceLength: fixedDim(textIn, 1),
      clipSkip: readClipSkipSupport(
        g.textEncoder.path,
        g.textEncoder.outputs.map((o) => o.name),
        textOut.name,
      ),
    },
    unet: {
      sample: sample.name,
      timestep: timestep.name,
      encoderHiddenStates: ehs.name,
      output: unetOut.name,
      inChannels,
      timestepDtype: timestep.dtype,
      // onnxruntime reports no dims for a rank-0 input (and for one with no declared shape, which no SD exporter writes).
      timestepShape: timestep.dims.length === 0 ? 'scalar' : 'batch',
    },
    latentChannels,
    isInpainting,
    vaeDecoder: { input: decIn.name, output: decOut.name },
    vaeEncoder,
    vaeScalingFactor: files.vaeScalingFactor,
  };
}

/** Validates the directory, then creates one session per graph (once; the pipeline reuses them). */
export async function loadSdModel(dir: string, config: SessionConfig = {}): Promise<SdModel> {
  const files = readModelDirectory(dir);
  const load = async (path: string): Promise<OnnxGraph> => {
    try {
      return await OnnxGraph.load(path, config);
    } catch (err) {
      throw new ModelLoadError(path, errorMessage(err));
    }
  };
  // Sequential: loading in parallel only raises peak memory, the CPU work is the same.
  const textEncoder = await load(files.graphs.textEncoder);
  const unet = await load(files.graphs.unet);
  const vaeDecoder = await load(files.graphs.vaeDecoder);
  const vaeEncoder = files.graphs.vaeEncoder ? await load(files.graphs.vaeEncoder) : null;
  const io = describeModel(files, { textEncoder, unet, vaeDecoder, vaeEncoder });
  return {
    files,
    textEncoder,
    unet,
    vaeDecoder,
    vaeEncoder,
    io,
    async release() {
      await Promise.all([textEncoder.release(), unet.release(), vaeDecoder.release(), vaeEncoder?.release()]);
    },
  };
}
