import { afterEach, describe, expect, it, vi } from 'vitest';
import { logEnabled, logger, setLogLevel } from './log.ts';

describe('logger', () => {
  afterEach(() => {
    setLogLevel('error'); // the edge tests' LOG_LEVEL (edge/vitest.config.ts)
    vi.restoreAllMocks();
  });

  it('writes one JSON line per call at or above LOG_LEVEL, base fields merged under the call fields', () => {
    setLogLevel('info');
    const out = vi.spyOn(console, 'log').mockImplementation(() => {});
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const log = logger({ component: 'api', predictionId: 'p1' }).with({ model: 'm' });
    log.debug('hidden', { a: 1 });
    log.info('prediction accepted', { cache: 'hit', model: 'm2' });
    log.warn('careful');
    expect(out).toHaveBeenCalledTimes(1);
    const line = JSON.parse(String(out.mock.calls[0][0])) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'info',
      msg: 'prediction accepted',
      component: 'api',
      predictionId: 'p1',
      model: 'm2',
      cache: 'hit',
    });
    expect(Number.isNaN(Date.parse(String(line.time)))).toBe(false);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('writes debug lines only at LOG_LEVEL=debug', () => {
    const out = vi.spyOn(console, 'log').mockImplementation(() => {});
    setLogLevel('info');
    expect(logEnabled('debug')).toBe(false);
    logger().debug('x');
    setLogLevel('debug');
    expect(logEnabled('debug')).toBe(true);
    logger().debug('y');
    expect(out.mock.calls.map((c) => JSON.parse(String(c[0])).msg)).toEqual(['y']);
  });
});
