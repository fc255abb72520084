// The pure transitions of a prediction: create, claim, accept, release, requeue, refuse, runner update, cancel, fail;
// each returns the next record, the events it fires and the effects the Durable Object runs.
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { describe, expect, it } from 'vitest';
import type { PredictionRecord } from './prediction-record.ts';
import {
  acceptPush,
  applyRunnerUpdate,
  cancelPrediction,
  claimLease,
  createRecord,
  failPrediction,
  loseLease,
  refuseReport,
  releaseLease,
} from './prediction-transitions.ts';

function record(): PredictionRecord {
  return createRecord(
    {
      id: 'p1',
      ownerKeyId: 'k',
      ownerSubject: null,
      model: 'sd/x',
      version: 'v',
      input: { prompt: 'x', seed: 1 },
      randomSeed: 99,
      embeddingCache: null,
      source: 'api',
      webhook: null,
      webhookEventsFilter: [],
      streamToken: 't',
      job: { tokens: null, cacheKeys: null },
    },
    0,
  );
}

const grant = (leaseId: string, attempt = 0) => ({ leaseId, attempt, runnerId: `runner-${leaseId}` });

function leased(leaseId = 'L1', attempt = 0): PredictionRecord {
  const claim = claimLease(record(), grant(leaseId, attempt), 10);
  if (claim.kind !== 'run') throw new Error('unreachable');
  return claim.record;
}

function envelope(patch: Partial<RunnerPrediction>): RunnerPrediction {
  return {
    id: 'p1',
    status: 'processing',
    input: {},
    output: null,
    error: null,
    logs: '',
    metrics: {},
    created_at: null,
    started_at: null,
    completed_at: null,
    ...patch,
  };
}

describe('create', () => {
  it('waits in line unleased, with the seed the caller chose or the edge drew, and reports it in metrics', () => {
    const chosen = record();
    expect(chosen).toMatchObject({ status: 'starting', output: null, progress: null, created_at: new Date(0).toISOString() });
    expect(chosen.input.seed).toBe(1);
    expect(chosen.metrics).toEqual({ seed: 1 });
    expect(chosen.dispatch).toMatchObject({ attempt: 0, leaseId: null, requeues: 0 });
    const drawn = createRecord({ ...chosen, input: { prompt: 'x', seed: null }, randomSeed: 42, embeddingCache: 'hit' }, 5);
    expect(drawn.input.seed).toBe(42);
    expect(drawn.metrics).toEqual({ seed: 42, embedding_cache: 'hit' });
  });
});

describe('leases of a prediction', () => {
  it('a waiting prediction takes a lease, and reports are believed only under it', () => {
    const claim = claimLease(record(), grant('L1'), 10);
    expect(claim.kind).toBe('run');
    const held = claim.kind === 'run' ? claim.record : record();
    expect(held.dispatch).toMatchObject({ leaseId: 'L1', runner: 'runner-L1', attempt: 0, leasedAt: 10 });
    expect(refuseReport(held, { leaseId: 'L1' }, 'p1', false)).toBeNull();
    expect(refuseReport(held, { leaseId: 'L0' }, 'p1', false)).toMatchObject({
      reason: expect.stringMatching(/no longer current/),
      stop: true,
    });
    expect(refuseReport(held, { attempt: 0 }, 'p1', true)).toBeNull();
    expect(refuseReport(held, { attempt: 1 }, 'p1', true)?.reason).toMatch(/stale attempt 1/);
    expect(refuseReport(record(), { leaseId: 'L1' }, 'p1', false)?.reason).toMatch(/holds no lease/);
  });

  it('a signed webhook is not believed for a prediction a pull runner holds: that runner reports under its lease', () => {
    const held = leased('L1');
    expect(refuseReport(held, { attempt: 0 }, 'p1', false)).toEqual({
      reason: 'a pull runner holds the prediction: it reports under its lease',
      stop: true,
    });
  });

  it("a push target's envelope must carry the id of its attempt; a wrong one is refused without stopping the run", () => {
    const second = leased('L2', 2);
    expect(refuseReport(second, { attempt: 2 }, 'p1-a2', true)).toBeNull();
    expect(refuseReport(second, { attempt: 2 }, 'p1', true)).toEqual({ reason: 'envelope id p1 is not p1-a2', stop: false });
  });

  it('a second lease is refused while the first is current, and any lease once the prediction ended', () => {
    expect(claimLease(leased(), grant('L2'), 0)).toMatchObject({ kind: 'drop', reason: 'another lease is current' });
    const canceled = { ...record(), status: 'canceled' as const };
    expect(claimLease(canceled, grant('L1'), 0)).toMatchObject({ kind: 'drop', reason: 'prediction is canceled' });
  });

  it('a lost lease requeues (counted) until the requeues are spent, then fails naming no address', () => {
    let r = record();
    for (let n = 0; n < 2; n++) {
      const claim = claimLease(r, grant(`L${n}`, n), 0);
      if (claim.kind !== 'run') throw new Error('unreachable');
      const loss = loseLease(claim.record, `L${n}`, 2, 0);
      expect(loss.verdict).toBe('requeue');
      if (loss.verdict !== 'requeue') throw new Error('unreachable');
      r = loss.change.record;
      expect(r.dispatch).toMatchObject({ leaseId: null, runner: null, requeues: n + 1 });
      // The silent holder is told to stop; the line keeps the job (it requeues it itself).
      expect(loss.change.effects).toEqual([{ kind: 'stop-holder', holder: claim.record.dispatch }]);
    }
    const third = claimLease(r, grant('L2', 2), 0);
    if (third.kind !== 'run') throw new Error('unreachable');
    const last = loseLease(third.record, 'L2', 2, 5);
    expect(last.verdict).toBe('fail');
    if (last.verdict === 'fail') {
      expect(last.change.record.status).toBe('failed');
      expect(last.change.record.error).toBe('the GPU running this prediction stopped responding 3 times; giving up');
      expect(last.change.events).toEqual(['completed']);
      expect(last.change.effects.map((e) => e.kind)).toEqual(['stop-holder', 'release-slot']);
    }
    // A lease that is not current (or an ended prediction) is just dropped from the line.
    expect(loseLease(third.record, 'other', 2, 0).verdict).toBe('drop');
  });

  it('a release gives the lease back without counting a requeue; a push acceptance records the remote id', () => {
    const held = leased();
    expect(releaseLease(held, 'L9')).toBeNull();
    const released = releaseLease(held, 'L1');
    expect(released?.record.dispatch).toMatchObject({ leaseId: null, requeues: 0 });
    const accepted = acceptPush(held, 'L1', 'remote-1', 'hit', 7);
    expect(accepted?.record.dispatch).toMatchObject({ remoteId: 'remote-1', lastHeardAt: 7 });
    expect(accepted?.record.metrics.embedding_cache).toBe('hit');
    expect(accepted?.effects).toEqual([]);
    expect(acceptPush(held, 'L2', 'remote-1', null, 7)).toBeNull();
  });

  it('a push accepted after the prediction was canceled tells the host to stop', () => {
    const canceled = { ...leased(), status: 'canceled' as const };
    const accepted = acceptPush(canceled, 'L1', 'remote-1', null, 7);
    expect(accepted?.effects).toEqual([{ kind: 'stop-holder', holder: accepted?.record.dispatch }]);
  });
});

describe('runner updates', () => {
  it('the first report starts the prediction; progress and logs fire output and logs events once each', () => {
    const started = applyRunnerUpdate(
      leased(),
      envelope({ progress: { step: 1, total: 4, fraction: 0.25 } }),
      { leaseId: 'L1' },
      20,
    );
    expect(started?.record).toMatchObject({ status: 'processing', started_at: new Date(20).toISOString() });
    expect(started?.events).toEqual(['start', 'output']);
    expect(started?.effects).toEqual([]);
    const same = applyRunnerUpdate(
      started!.record,
      envelope({ progress: { step: 1, total: 4, fraction: 0.25 } }),
      { leaseId: 'L1' },
      21,
    );
    expect(same?.events).toEqual([]);
    const logged = applyRunnerUpdate(started!.record, envelope({ logs: 'Using seed: 1\n' }), { leaseId: 'L1' }, 22);
    expect(logged?.events).toEqual(['logs']);
  });

  it('a success ends the prediction: output, full progress, the slot and the line freed, embeddings cached', () => {
    const withKeys = { ...leased(), job: { tokens: null, cacheKeys: { prompt: 'a', negative: 'b' } } };
    const embeddings = {
      prompt: { dtype: 'float32' as const, shape: [1, 77, 4], data: '' },
      negative: { dtype: 'float32' as const, shape: [1, 77, 4], data: '' },
    };
    const done = applyRunnerUpdate(
      { ...withKeys, status: 'processing', progress: { step: 3, total: 4, fraction: 0.75 } },
      envelope({ status: 'succeeded', output: ['https://o/1.png'], embeddings, metrics: { predict_time: 1.5 } }),
      { leaseId: 'L1' },
      1000,
    );
    expect(done?.record).toMatchObject({ status: 'succeeded', output: ['https://o/1.png'], progress: { step: 4, fraction: 1 } });
    expect(done?.record.metrics).toMatchObject({ seed: 1, predict_time: 1.5, total_time: 1 });
    expect(done?.events).toEqual(['output', 'completed']);
    expect(done?.effects).toEqual([{ kind: 'leave-line' }, { kind: 'release-slot' }, { kind: 'cache-embeddings', embeddings }]);
  });

  it("a push target's progress extends its lease; terminal states are final", () => {
    const pushed = { ...leased(), dispatch: { ...leased().dispatch, runner: 'https://cog.example' } };
    const beat = applyRunnerUpdate(pushed, envelope({}), { attempt: 0 }, 30);
    expect(beat?.effects).toEqual([{ kind: 'heartbeat', leaseId: 'L1', runner: 'https://cog.example' }]);
    const failed = applyRunnerUpdate(pushed, envelope({ status: 'failed', error: 'out of memory' }), { attempt: 0 }, 40);
    expect(failed?.record).toMatchObject({ status: 'failed', error: 'out of memory' });
    expect(failed?.effects.map((e) => e.kind)).toEqual(['leave-line', 'release-slot']);
    expect(applyRunnerUpdate(failed!.record, envelope({ status: 'succeeded', output: [] }), { attempt: 0 }, 50)).toBeNull();
  });
});

describe('cancel and fail', () => {
  it('cancel ends a waiting prediction and frees its place; a held one also stops its holder', () => {
    const waiting = cancelPrediction(record(), 5);
    expect(waiting?.record).toMatchObject({ status: 'canceled', completed_at: new Date(5).toISOString() });
    expect(waiting?.events).toEqual(['completed']);
    expect(waiting?.effects).toEqual([{ kind: 'leave-line' }, { kind: 'release-slot' }]);
    const held = leased();
    expect(cancelPrediction(held, 5)?.effects).toEqual([
      { kind: 'leave-line' },
      { kind: 'release-slot' },
      { kind: 'stop-holder', holder: held.dispatch },
    ]);
  });

  it('a failure carries its message; neither applies to an ended prediction', () => {
    const failed = failPrediction(record(), 'no GPU became free', 5);
    expect(failed?.record).toMatchObject({ status: 'failed', error: 'no GPU became free' });
    expect(failPrediction(failed!.record, 'again', 6)).toBeNull();
    expect(cancelPrediction(failed!.record, 6)).toBeNull();
  });
});
