import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bundleMap, ProfileAttributor, splitByWindows, topFunctions } from './isolate-profiler.ts';
const dir = process.argv[2];
const which = process.argv[3] ?? '';
const limit = Number(process.argv[4] ?? 40);
const attributor = new ProfileAttributor(bundleMap(join(dir, 'index.js'), '/work/wt-edgecpu/edge/.wrangler/tmp/dev-x'));
for (const f of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.includes(which))) {
  const profile = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const windows = JSON.parse(readFileSync(join(dir, f.replace('.cpuprofile', '.windows.json')), 'utf8'));
  const s = splitByWindows(attributor, profile, windows);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  console.log(`== ${f}: worker mean ${((s.inRequests.totalMs - s.inRequests.durableObjectMs) / windows.length).toFixed(2)} median ${med(s.perWindowWorkerMs).toFixed(2)}; DO ${(s.inRequests.durableObjectMs / windows.length).toFixed(2)}; bg ${(s.background.totalMs / windows.length).toFixed(2)}; doCall ${(s.inRequests.doCallMs / windows.length).toFixed(2)}; deployed median ${med(s.perWindowDeployedMs).toFixed(2)}`);
  if (process.argv[5] !== 'brief') console.log(topFunctions(attributor, profile, windows, { limit }));
}
