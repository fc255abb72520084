// What a person reads when the API refuses a request: the API's own words where they help, and when to try again.

/** The edge's error body (shared/src/schemas/errors.ts), as far as a page reads it. */
interface ErrorBody {
  error?: { message?: string; code?: string; issues?: Array<{ field?: string; message: string }> };
  detail?: string;
}

/** A refusal from the API: its HTTP status and the sentence to show. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    /** The API's own message, for a developer (message is for anyone). */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Seconds until a retry is allowed, from Retry-After (seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterSeconds(value: string | null): number | null {
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs));
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export function describeWait(seconds: number): string {
  if (seconds < 60) return `${seconds} ${seconds === 1 ? 'second' : 'seconds'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} ${minutes === 1 ? 'minute' : 'minutes'}`;
}

function asErrorBody(body: unknown): ErrorBody {
  return body && typeof body === 'object' ? (body as ErrorBody) : {};
}

/** The API's own message for a refusal ("" when it gave none). */
export function apiMessage(body: unknown): string {
  const b = asErrorBody(body);
  return b.error?.message || b.detail || '';
}

/** The sentence a person reads for a refused request. */
export function humanError(status: number, body: unknown, retryAfter: string | null): string {
  const b = asErrorBody(body);
  const message = apiMessage(body);
  const issue = b.error?.issues?.[0];
  if (status === 429) {
    const wait = retryAfterSeconds(retryAfter);
    return wait === null
      ? 'Too many images requested right now. Please wait a little and try again.'
      : `Too many images requested right now. Try again in ${describeWait(wait)}.`;
  }
  if (status === 422 || status === 400) {
    return `This prompt can't be used: ${(issue ? issue.message : message) || 'the request was not accepted'}.`;
  }
  if (status === 401) return 'This image generator is not set up correctly (its key was refused). Please tell the site owner.';
  if (status === 403) return `This image generator is not allowed on this page${message ? ` (${message})` : ''}.`;
  if (status === 404) return `The image service could not find what it needed${message ? `: ${message}` : ''}.`;
  if (status >= 500) return 'The image service had a problem. Please try again in a moment.';
  return message || `The request failed (HTTP ${status}).`;
}

/** The response body as JSON, or null when it is empty or not JSON. */
export async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

/** An ApiError from a refused response, with the sentence humanError words. */
export async function refusal(response: Response): Promise<ApiError> {
  const body = await readJson(response);
  return new ApiError(
    response.status,
    humanError(response.status, body, response.headers.get('Retry-After')),
    asErrorBody(body).error?.code,
    apiMessage(body) || undefined,
  );
}
