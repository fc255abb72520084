// The shared package: schemas, tensor format, scheduler names. Tokenizer lives in ./tokenizer.
export * from './base64.ts';
export * from './embedding-cache-key.ts';
export * from './scheduler-names.ts';
export * from './schemas/errors.ts';
export * from './schemas/limits.ts';
export * from './schemas/openai.ts';
export * from './schemas/prediction.ts';
export * from './schemas/prediction-input.ts';
export * from './schemas/runner.ts';
export * from './sha256.ts';
export * from './tensor-format.ts';
export * from './webhook-signature.ts';
