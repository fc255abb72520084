// Moved to scripts/stack/child-process.ts (shared by the local stack and the tests); kept so test imports stay short.
export * from '../../scripts/stack/child-process.ts';
