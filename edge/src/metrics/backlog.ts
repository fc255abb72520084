// The backlog each model's line reports, as an operator or an autoscaler reads it: Prometheus text or JSON.
import type { EdgeConfig } from '../config.ts';
import type { QueueStats } from '../dispatch/line.ts';
import { poolOf, queueStub } from '../dispatch/queue-stub.ts';

export async function collectBacklog(env: Env, config: EdgeConfig): Promise<QueueStats[]> {
  return Promise.all(
    config.models.map((m) => {
      const pool = poolOf(m);
      return queueStub(env, pool).stats(pool);
    }),
  );
}

const GAUGES: Array<{ name: string; help: string; value: (s: QueueStats) => number }> = [
  {
    name: 'sd_backlog',
    help: 'Predictions waiting or running (what an autoscaler scales on).',
    value: (s) => s.waiting + s.running,
  },
  { name: 'sd_waiting', help: 'Predictions waiting for a GPU.', value: (s) => s.waiting },
  { name: 'sd_running', help: 'Predictions leased to a runner.', value: (s) => s.running },
  { name: 'sd_runners', help: 'Pull runners heard from in the last minute.', value: (s) => s.runners },
  { name: 'sd_slots', help: 'Slots of those runners plus push capacity.', value: (s) => s.slots },
  {
    name: 'sd_oldest_wait_seconds',
    help: 'How long the oldest waiting prediction has waited.',
    value: (s) => s.oldestWaitSeconds,
  },
];

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function prometheusText(stats: QueueStats[]): string {
  const lines: string[] = [];
  for (const g of GAUGES) {
    lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
    for (const s of stats) lines.push(`${g.name}{model="${label(s.pool)}"} ${g.value(s)}`);
  }
  return `${lines.join('\n')}\n`;
}
