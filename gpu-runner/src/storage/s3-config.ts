// Where and how output images are stored in an S3-compatible bucket (parsed from the environment by config.ts).

export interface S3Config {
  endpoint?: string;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Output URLs are `${publicBaseUrl}/${key}` when set, else presigned GETs. */
  publicBaseUrl?: string;
  presignExpiresSeconds: number;
  /** Upper bound on the time all uploads of one prediction may take, retries included. */
  timeoutMs: number;
}
