// The line's pure rules: fair tags across keys (FIFO within one), start estimates, lease timings.
import { describe, expect, it } from 'vitest';
import { estimateStart, fairTag, leaseTimings, updateMeanRunMs } from './line.ts';

/** Tags a sequence of (key) arrivals the way ModelQueue.enqueue does, with the clock at `clock`. */
function tagAll(arrivals: string[], clock = 0): Array<{ key: string; tag: number; seq: number }> {
  const last = new Map<string, number>();
  return arrivals.map((key, seq) => {
    const tag = fairTag(clock, last.get(key) ?? null);
    last.set(key, tag);
    return { key, tag, seq };
  });
}

const startOrder = (jobs: Array<{ key: string; tag: number; seq: number }>) =>
  [...jobs].sort((a, b) => a.tag - b.tag || a.seq - b.seq).map((j) => `${j.key}${j.seq}`);

describe('fair line', () => {
  it('one key alone starts in creation order', () => {
    expect(startOrder(tagAll(['a', 'a', 'a', 'a']))).toEqual(['a0', 'a1', 'a2', 'a3']);
  });

  it("one key's burst does not make another key's single request wait behind all of it", () => {
    const jobs = tagAll([...Array(1000).fill('burst'), 'single']);
    const order = startOrder(jobs);
    expect(order.indexOf('single1000')).toBeLessThanOrEqual(1);
    // And the burst itself stays in its own creation order.
    const burst = order.filter((o) => o.startsWith('burst')).map((o) => Number(o.slice(5)));
    expect(burst).toEqual([...burst].sort((x, y) => x - y));
  });

  it('keys with waiting work are served in turn; a key that was idle joins the current round', () => {
    expect(startOrder(tagAll(['a', 'a', 'a', 'b', 'b', 'c']))).toEqual(['a0', 'b3', 'c5', 'a1', 'b4', 'a2']);
    // After 10 jobs started (clock 10), a new key's job goes right after the current round, not behind a's old tags.
    expect(fairTag(10, null)).toBe(11);
    expect(fairTag(10, 3)).toBe(11);
    expect(fairTag(10, 15)).toBe(16);
  });
});

describe('start estimates', () => {
  it('needs a runner and a timed run; then counts rounds of the slots', () => {
    expect(estimateStart(3, 0, 1000, 0).estimatedStartMs).toBeNull();
    expect(estimateStart(3, 2, null, 0).estimatedStartMs).toBeNull();
    expect(estimateStart(0, 2, 1000, 0).estimatedStartMs).toBe(500);
    expect(estimateStart(3, 2, 1000, 0).estimatedStartMs).toBe(1500);
    expect(updateMeanRunMs(null, 400)).toBe(400);
    expect(updateMeanRunMs(400, 1400)).toBe(600);
  });
});

describe('lease timings', () => {
  it('fence the runner strictly before the edge takes the lease back, with several heartbeats per TTL', () => {
    const t = leaseTimings(15);
    expect(t.ttlMs).toBe(15_000);
    expect(t.fenceMs).toBeLessThan(t.ttlMs);
    expect(t.ttlMs / t.heartbeatMs).toBeGreaterThanOrEqual(4);
    expect(t.fenceMs).toBeGreaterThan(2 * t.heartbeatMs);
  });
});
