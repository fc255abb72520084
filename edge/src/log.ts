// Structured JSON logs (one object per line, as Workers Logs and Logpush index them), with the prediction id as a field.
// Budget: at most one info line per request; detail goes to debug, which costs nothing below LOG_LEVEL (no merge, no
// JSON, no console call: console.log is a measurable share of a short request's CPU).
type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold = RANK.info;

export function setLogLevel(level: Level): void {
  threshold = RANK[level];
}

/** Whether `level` is written; for callers that would compute fields only to log them. */
export function logEnabled(level: Level): boolean {
  return RANK[level] >= threshold;
}

export type LogFields = Record<string, unknown>;

function write(level: Level, msg: string, base: LogFields, fields: LogFields | undefined): void {
  if (RANK[level] < threshold) return;
  const line = JSON.stringify({ level, msg, time: new Date().toISOString(), ...base, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

export function logger(base: LogFields = {}): Logger {
  return {
    debug: (msg, fields) => write('debug', msg, base, fields),
    info: (msg, fields) => write('info', msg, base, fields),
    warn: (msg, fields) => write('warn', msg, base, fields),
    error: (msg, fields) => write('error', msg, base, fields),
    with: (fields) => logger({ ...base, ...fields }),
  };
}

/** An error as loggable fields: name and message, never the stack of a caller's secret-bearing object. */
export function errorFields(err: unknown): LogFields {
  if (err instanceof Error) return { error: err.message, errorName: err.name };
  return { error: String(err) };
}
