// The message of anything thrown: what logs and error bodies show, without casting `unknown` to Error at every catch.

/** err.message for an Error (or any object with a string message), String(err) otherwise; never empty. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message || String(err);
  }
  return String(err);
}

/** The stack of an Error and of its causes, for logs only (never a response); the message for anything else. */
export function errorStack(err: unknown): string {
  if (!(err instanceof Error)) return errorMessage(err);
  const own = err.stack ?? err.message;
  return err.cause === undefined ? own : `${own}\ncaused by: ${errorStack(err.cause)}`;
}
