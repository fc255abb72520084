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
}

export class DataUrlStorage implements OutputStorage {
  readonly description = 'data URLs (no S3_BUCKET configured)';

  async storeOutputs(_id: string, objects: readonly StoredObject[]): Promise<string[]> {
    return objects.map((o) => `data:${o.contentType};base64,${bytesToBase64(o.bytes)}`);
  }
}

/** predictions/{id}/{index}.{ext}: one prefix per prediction, so a lifecycle rule or a listing finds all outputs. */
export function outputKey(predictionId: string, index: number, extension: string): string {
  return `predictions/${predictionId}/${index}.${extension}`;
}
