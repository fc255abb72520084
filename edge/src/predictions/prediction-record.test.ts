// The pure transitions of a prediction's dispatch: claiming a lease, a push target accepting, releasing, losing a
// lease (requeue or give up), and which reports may be believed.
import { describe, expect, it } from 'vitest';
import {
  claimLease,
  loseLease,
  newRecord,
  type PredictionRecord,
  pushAccepted,
  releaseLease,
  reportRefusal,
} from './prediction-record.ts';

function record(): PredictionRecord {
  return newRecord({
    id: 'p1',
    ownerKeyId: 'k',
    ownerSubject: null,
    model: 'sd/x',
    version: 'v',
    input: { prompt: 'x' },
    metrics: { seed: 1 },
    created_at: new Date(0).toISOString(),
    source: 'api',
    webhook: null,
    webhookEventsFilter: [],
    streamToken: 't',
    job: { tokens: null, cacheKeys: null },
  });
}

const grant = (leaseId: string, attempt = 0) => ({ leaseId, attempt, runnerId: `runner-${leaseId}` });

describe('leases of a prediction', () => {
  it('a waiting prediction takes a lease, and reports are believed only under it', () => {
    const claim = claimLease(record(), grant('L1'), 10);
    expect(claim.kind).toBe('run');
    const leased = claim.kind === 'run' ? claim.record : record();
    expect(leased.dispatch).toMatchObject({ leaseId: 'L1', runner: 'runner-L1', attempt: 0, leasedAt: 10 });
    expect(reportRefusal(leased, { leaseId: 'L1' })).toBeNull();
    expect(reportRefusal(leased, { leaseId: 'L0' })).toMatch(/no longer current/);
    expect(reportRefusal(leased, { attempt: 0 })).toBeNull();
    expect(reportRefusal(leased, { attempt: 1 })).toMatch(/stale attempt 1/);
    expect(reportRefusal(record(), { leaseId: 'L1' })).toMatch(/holds no lease/);
  });

  it('a second lease is refused while the first is current, and any lease once the prediction ended', () => {
    const leased = claimLease(record(), grant('L1'), 0);
    if (leased.kind !== 'run') throw new Error('unreachable');
    expect(claimLease(leased.record, grant('L2'), 0)).toMatchObject({ kind: 'drop', reason: 'another lease is current' });
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
      r = loss.record;
      expect(r.dispatch).toMatchObject({ leaseId: null, runner: null, requeues: n + 1 });
    }
    const third = claimLease(r, grant('L2', 2), 0);
    if (third.kind !== 'run') throw new Error('unreachable');
    const last = loseLease(third.record, 'L2', 2, 5);
    expect(last.verdict).toBe('fail');
    if (last.verdict === 'fail') {
      expect(last.change.record.status).toBe('failed');
      expect(last.change.record.error).toBe('the GPU running this prediction stopped responding 3 times; giving up');
    }
    // A lease that is not current (or an ended prediction) is just dropped from the line.
    expect(loseLease(third.record, 'other', 2, 0).verdict).toBe('drop');
  });

  it('a release gives the lease back without counting a requeue; a push acceptance records the remote id', () => {
    const claim = claimLease(record(), grant('L1'), 0);
    if (claim.kind !== 'run') throw new Error('unreachable');
    expect(releaseLease(claim.record, 'L9')).toBeNull();
    const released = releaseLease(claim.record, 'L1');
    expect(released?.dispatch).toMatchObject({ leaseId: null, requeues: 0 });
    const accepted = pushAccepted(claim.record, 'L1', 'remote-1', 'hit', 7);
    expect(accepted?.dispatch).toMatchObject({ remoteId: 'remote-1', lastHeardAt: 7 });
    expect(accepted?.metrics.embedding_cache).toBe('hit');
    expect(pushAccepted(claim.record, 'L2', 'remote-1', null, 7)).toBeNull();
  });
});
