// The Server-Sent Events of a prediction's stream, derived from consecutive snapshots. Names follow Replicate's
// stream (output, logs, error, done; the replicate client stops at done and throws on error) plus status and progress.
import { isTerminal } from '@sd/shared/schemas/prediction';
import type { PredictionRecord, QueueView } from './prediction-record.ts';

export interface SseEvent {
  event: 'status' | 'queue' | 'progress' | 'logs' | 'output' | 'error' | 'done';
  data: string;
  id?: string;
}

function terminalEvents(record: PredictionRecord): SseEvent[] {
  switch (record.status) {
    case 'succeeded':
      return [...(record.output ?? []).map((url): SseEvent => ({ event: 'output', data: url })), { event: 'done', data: '{}' }];
    case 'failed':
      return [
        { event: 'error', data: JSON.stringify({ detail: record.error ?? 'prediction failed' }) },
        { event: 'done', data: JSON.stringify({ reason: 'error' }) },
      ];
    case 'canceled':
      return [{ event: 'done', data: JSON.stringify({ reason: 'canceled' }) }];
    default:
      return [];
  }
}

const status = (record: PredictionRecord): SseEvent => ({ event: 'status', data: JSON.stringify({ status: record.status }) });

/** What a subscriber that connects now is told first: the current status and progress, and the end if it is over. */
export function snapshotEvents(record: PredictionRecord): SseEvent[] {
  const out: SseEvent[] = [status(record)];
  if (record.progress) out.push({ event: 'progress', data: JSON.stringify(record.progress) });
  if (record.logs) out.push({ event: 'logs', data: record.logs });
  return [...out, ...terminalEvents(record)];
}

/** What changed between two snapshots. */
export function changeEvents(prev: PredictionRecord, next: PredictionRecord): SseEvent[] {
  const out: SseEvent[] = [];
  if (prev.status !== next.status) out.push(status(next));
  if (next.progress && JSON.stringify(prev.progress) !== JSON.stringify(next.progress)) {
    out.push({ event: 'progress', data: JSON.stringify(next.progress) });
  }
  if (next.logs !== prev.logs) {
    out.push({ event: 'logs', data: next.logs.startsWith(prev.logs) ? next.logs.slice(prev.logs.length) : next.logs });
  }
  if (!isTerminal(prev.status) && isTerminal(next.status)) out.push(...terminalEvents(next));
  return out;
}

/** A waiting prediction's place in line (ours: Replicate's stream has no such event; its clients skip unknown ones). */
export function queueEvent(place: QueueView): SseEvent {
  return { event: 'queue', data: JSON.stringify(place) };
}

const encoder = new TextEncoder();

export function encodeSse(event: SseEvent): Uint8Array {
  // Each data line must be prefixed; multi-line logs stay one event.
  const data = event.data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n');
  return encoder.encode(`${event.id ? `id: ${event.id}\n` : ''}event: ${event.event}\n${data}\n\n`);
}
