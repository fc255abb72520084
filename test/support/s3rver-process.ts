// Moved to scripts/stack/s3rver-process.ts (shared by the local stack and the tests); kept so test imports stay short.
export * from '../../scripts/stack/s3rver-process.ts';
