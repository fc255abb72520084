// The closed set of errors the prediction service raises; the HTTP layer (app.ts onError) is the one place
// that turns them into status codes: not ready 503, at capacity 409, invalid input 422, not found 404,
// body too large 413, body not JSON 415.
import type { ErrorIssue } from '@sd/shared/schemas/errors';

/** Setup has not finished (or failed), or the runner is shutting down. */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
}

/** Every slot is running a prediction. */
export class AtCapacityError extends Error {
  override readonly name = 'AtCapacityError';
}

/** The request or its input failed validation; `issues` name the fields. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  constructor(
    message: string,
    readonly issues: ErrorIssue[],
  ) {
    super(message);
  }
}

/** No prediction with that id is known to this runner. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** Missing or wrong bearer token. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

/** The request body is larger than the configured cap (MAX_REQUEST_BYTES). */
export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
}

/** The request body is declared as something other than JSON. */
export class UnsupportedMediaTypeError extends Error {
  override readonly name = 'UnsupportedMediaTypeError';
}
