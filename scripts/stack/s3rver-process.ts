// An S3-compatible server (s3rver) as a child process on a free loopback port with a data folder of its own (temporary
// unless given) and one bucket; stop() kills it (the "storage down" tests) and removes the folder.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ManagedProcess, type StartOptions, startProcess } from './child-process.ts';
import { freePort } from './free-port.ts';

export interface S3rverHandle {
  endpoint: string;
  port: number;
  bucket: string;
  /** s3rver's fixed development credentials. */
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

export async function startS3rver(
  bucket = 'outputs',
  processOptions: Pick<StartOptions, 'group' | 'onLine'> = {},
  /** The bucket's folder (created; removed by stop()). Default: a new temporary folder. */
  dataDir?: string,
): Promise<S3rverHandle> {
  const port = await freePort();
  if (dataDir) await mkdir(dataDir, { recursive: true });
  else dataDir = await mkdtemp(join(tmpdir(), 's3rver-'));
  const bin = require.resolve('s3rver/bin/s3rver.js');
  const proc = startProcess(
    process.execPath,
    [
      bin,
      '--directory',
      dataDir,
      '--address',
      '127.0.0.1',
      '--port',
      String(port),
      '--configure-bucket',
      bucket,
      '--no-vhost-buckets',
    ],
    { env: { PATH: process.env.PATH }, name: 's3rver', ...processOptions },
  );
  try {
    await proc.waitForLine(/listening/i, 20_000);
  } catch (err) {
    await proc.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    dataDir,
    process: proc,
    async stop() {
      await proc.stop();
      await rm(dataDir as string, { recursive: true, force: true });
    },
  };
}
