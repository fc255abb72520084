// The one error body both services answer with, and the conversion of validation issues into it.
// Shaped so Replicate-style clients (which show the body) and OpenAI clients (which read error.message) both work.
import { z } from 'zod';
import { unknownFieldHint } from './field-hints.ts';

export const ErrorIssueSchema = z.object({ field: z.string(), message: z.string() });
export type ErrorIssue = z.infer<typeof ErrorIssueSchema>;

export const ErrorBodySchema = z.object({
  error: z.object({
    /** Machine-readable: invalid_input, unauthorized, forbidden, not_found, rate_limited, conflict, ... */
    code: z.string(),
    /** OpenAI-compatible error type. */
    type: z.string(),
    message: z.string(),
    /** The first offending field, when the error is about one (OpenAI's `param`). */
    param: z.string().nullable(),
    issues: z.array(ErrorIssueSchema).optional(),
  }),
  /** Replicate-compatible summary. */
  detail: z.string(),
  status: z.number().int(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** Turns zod issues into field-named messages; unknown keys get one issue per key. */
export function issuesFromZod(error: z.ZodError, prefix = ''): ErrorIssue[] {
  const out: ErrorIssue[] = [];
  for (const issue of error.issues) {
    const base = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const field = base ? `${base}.${key}` : key;
        out.push({ field, message: `unknown field ${field} is not accepted${unknownFieldHint(key, base)}` });
      }
      continue;
    }
    const field = base || '(body)';
    // zod's own messages ("Too small: expected number to be >=0") do not say where; ours name the field already.
    const leaf = [...issue.path].reverse().find((p) => typeof p === 'string') ?? field;
    out.push({ field, message: issue.message.includes(String(leaf)) ? issue.message : `${field}: ${issue.message}` });
  }
  return out;
}

export function errorBody(status: number, code: string, message: string, issues?: ErrorIssue[]): ErrorBody {
  const type = status >= 500 ? 'server_error' : code === 'invalid_input' ? 'invalid_request_error' : code;
  return {
    error: { code, type, message, param: issues?.[0]?.field ?? null, ...(issues ? { issues } : {}) },
    detail: message,
    status,
  };
}

/** A 422-style body for a failed validation: the message lists every issue. */
export function validationErrorBody(error: z.ZodError, status = 422, prefix = ''): ErrorBody {
  const issues = issuesFromZod(error, prefix);
  return errorBody(status, 'invalid_input', issues.map((i) => i.message).join('; '), issues);
}
