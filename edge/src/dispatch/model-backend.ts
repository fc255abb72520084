// The Backend of each configured model, built once: Cog (our pull runners, plus any Cog hosts we push to) or Replicate.
import type { EdgeConfig, ModelConfig } from '../config.ts';
import type { Backend } from './backend.ts';
import { cogBackend } from './cog-backend.ts';
import { replicateBackend } from './replicate-backend.ts';

/** Outbound HTTP for pushes and cancels; workerd needs the global fetch called unbound-safe. */
const globalFetch: typeof fetch = (input, init) => fetch(input, init);

const built = new WeakMap<ModelConfig, Backend>();

/** The model's backend: built once per model (config objects live as long as their isolate's parsed config). */
export function backendFor(config: EdgeConfig, model: ModelConfig): Backend {
  let backend = built.get(model);
  if (!backend) {
    backend =
      model.backend === 'replicate' ? replicateBackend(config, model, globalFetch) : cogBackend(config, model, globalFetch);
    built.set(model, backend);
  }
  return backend;
}
