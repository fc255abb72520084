// /openapi.json against the worker's own routes: every public route the edge serves is described, and nothing else.
import { SCHEDULER_NAMES } from '@sd/shared/scheduler-names';
import { PredictionInputSchema } from '@sd/shared/schemas/prediction-input';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../src/api/openapi.ts';
import { createWorkerApp } from '../src/worker-app.ts';

interface Doc {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }> };
}

/** "METHOD /path/{param}" for each route a worker answers (HEAD and middleware-only entries left out). */
function servedRoutes(): string[] {
  const out = new Set<string>();
  for (const r of createWorkerApp().routes) {
    if (r.method === 'ALL' || r.method === 'HEAD' || r.method === 'OPTIONS') continue;
    out.add(`${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`);
  }
  return [...out].sort();
}

describe('GET /openapi.json', () => {
  it('lists exactly the routes the worker serves', () => {
    const doc = openApiDocument('https://sd.example.com') as Doc;
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(servedRoutes());
  });

  it('lists every scheduler spelling the input accepts, canonical names first', () => {
    const doc = openApiDocument('https://sd.example.com') as Doc;
    const spellings = doc.components.schemas.PredictionInput.properties.scheduler.enum ?? [];
    expect(spellings.slice(0, SCHEDULER_NAMES.length)).toEqual([...SCHEDULER_NAMES]);
    expect(spellings).toEqual(expect.arrayContaining(['K_EULER_ANCESTRAL', 'DPM++ 2M Karras', 'KDPM2DiscreteScheduler']));
    for (const scheduler of spellings) {
      expect(PredictionInputSchema.safeParse({ prompt: 'x', scheduler }).success, scheduler).toBe(true);
    }
    expect(PredictionInputSchema.safeParse({ prompt: 'x', scheduler: 'not_a_sampler' }).success).toBe(false);
  });
});
