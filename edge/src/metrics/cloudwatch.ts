// Pushes each model's backlog to CloudWatch (PutMetricData, SigV4 in the worker) from the Cron Trigger, where an
// autoscaling alarm reads it: Backlog > 0 with no runner starts the first GPU; Backlog 0 for a while scales to zero.
import { AwsClient } from 'aws4fetch';
import type { EdgeConfig } from '../config.ts';
import type { QueueStats } from '../dispatch/line.ts';

type CloudWatchConfig = NonNullable<EdgeConfig['cloudwatch']>;

/** The PutMetricData form body (the Query API, which every region's endpoint accepts). */
export function putMetricDataBody(namespace: string, stats: QueueStats[]): URLSearchParams {
  const form = new URLSearchParams({ Action: 'PutMetricData', Version: '2010-08-01', Namespace: namespace });
  let n = 0;
  for (const s of stats) {
    for (const [name, value] of [
      ['Backlog', s.waiting + s.running],
      ['Waiting', s.waiting],
      ['Running', s.running],
    ] as const) {
      n++;
      form.set(`MetricData.member.${n}.MetricName`, name);
      form.set(`MetricData.member.${n}.Unit`, 'Count');
      form.set(`MetricData.member.${n}.Value`, String(value));
      form.set(`MetricData.member.${n}.Dimensions.member.1.Name`, 'Model');
      form.set(`MetricData.member.${n}.Dimensions.member.1.Value`, s.pool);
    }
  }
  return form;
}

export async function publishBacklog(
  cw: CloudWatchConfig,
  stats: QueueStats[],
  { endpoint, fetch: fetchImpl = (i, init) => fetch(i, init) }: { endpoint?: string; fetch?: typeof fetch } = {},
): Promise<void> {
  const client = new AwsClient({
    accessKeyId: cw.accessKeyId,
    secretAccessKey: cw.secretAccessKey,
    service: 'monitoring',
    region: cw.region,
  });
  const url = endpoint ?? `https://monitoring.${cw.region}.amazonaws.com/`;
  const signed = await client.sign(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: putMetricDataBody(cw.namespace, stats).toString(),
  });
  const res = await fetchImpl(signed);
  if (!res.ok) throw new Error(`CloudWatch PutMetricData answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  await res.body?.cancel();
}
