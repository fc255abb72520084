// Where output images go: the interface the server uploads through, and the fallback when no bucket is
// configured (data URLs in the prediction's output).
import { bytesToBase64 } from '@sd/shared/base64';

export interface StoredObject {
  bytes: Uint8Array;
  contentType: string;
  extension: string;
}

export interface OutputStorage {
  /** Human-readable target ("s3://bucket" or "data URLs"); callers see it in logs, so no endpoint or address. */
  readonly description: string;
  /**
   * Stores the outputs of one prediction and returns one URL each, in order. Resolves only when every object is
   * verifiably stored; rejects with a message naming the key and the cause otherwise.
   */
  storeOutputs(predictionId: string, objects: readonly StoredObject[], signal?: AbortSignal): Promise<string[]>;
  /**
   * The key of one of this storage's own outputs when `url` is the URL it handed out for it (public or presigned),
   * else null: such an input is read back through the storage, never fetched over the network.
   */
  ownOutputKey(url: URL): string | null;
  /**
   * Whether `url` (naming `key`, per ownOutputKey) still grants reading it: a public URL always; a presigned one only
   * with this storage's signature for that very key, before its X-Amz-Expires ran out. Knowing a prediction's id is
   * no key to its images.
   */
  grantsRead(url: URL, key: string): Promise<boolean>;
  /** Reads one of its own outputs (a key from ownOutputKey); refuses more than maxBytes. */
  readOutput(key: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array>;
}

export class DataUrlStorage implements OutputStorage {
  readonly description = 'data URLs (no S3_BUCKET configured)';

  async storeOutputs(_id: string, objects: readonly StoredObject[]): Promise<string[]> {
    return objects.map((o) => `data:${o.contentType};base64,${bytesToBase64(o.bytes)}`);
  }

  /** Data URLs are inputs already: nothing to recognise. */
  ownOutputKey(): null {
    return null;
  }

  async grantsRead(): Promise<boolean> {
    return false;
  }

  async readOutput(key: string): Promise<Uint8Array> {
    throw new Error(`no bucket is configured to read ${key} from`);
  }
}

/** What outputKey makes, and nothing else: only outputs are read back, never another object of the bucket. */
const OUTPUT_KEY = /^predictions\/[A-Za-z0-9_-]{1,128}\/\d{1,3}\.(?:png|webp|jpg)$/;

export function isOutputKey(key: string): boolean {
  return OUTPUT_KEY.test(key);
}

/** predictions/{id}/{index}.{ext}: one prefix per prediction, so a lifecycle rule or a listing finds all outputs. */
export function outputKey(predictionId: string, index: number, extension: string): string {
  return `predictions/${predictionId}/${index}.${extension}`;
}
