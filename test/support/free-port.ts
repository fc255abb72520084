// Moved to scripts/stack/free-port.ts (shared by the local stack and the tests); kept so test imports stay short.
export * from '../../scripts/stack/free-port.ts';
