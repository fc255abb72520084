// The playground's request written out for a terminal or a program: curl, JavaScript (fetch, or the replicate client)
// and Python. Each carries the same URL and JSON body the page sends; the key is read from $SD_API_KEY, never shown.

/** What the page POSTs: Replicate's create body. */
export interface CreateBody {
  version: string;
  input: Record<string, string | number | boolean>;
}

export type SnippetLanguage = 'curl' | 'fetch' | 'replicate' | 'python';

export const SNIPPET_LABELS: Record<SnippetLanguage, string> = {
  curl: 'curl',
  fetch: 'JavaScript (fetch)',
  replicate: 'JavaScript (replicate)',
  python: 'Python',
};

const indent = (text: string, by: string): string => text.split('\n').join(`\n${by}`);

/** A JSON value as a Python literal (JSON's true/false/null are Python's True/False/None; strings stay JSON-escaped). */
export function pythonLiteral(value: unknown, pad = ''): string {
  // JSON writes NaN and the infinities as null, so the Python body must say None where the JSON body says null.
  if (value === null || value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number' || typeof value === 'string') return JSON.stringify(value);
  const inner = `${pad}    `;
  if (Array.isArray(value)) return `[${value.map((v) => pythonLiteral(v, inner)).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pythonLiteral(v, inner)}`).join(',\n')},\n${pad}}`;
}

/** A string as one shell word in single quotes (a ' inside becomes '\''). */
const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/** The snippet for `body` POSTed to `${apiBase}/v1/predictions`; `Prefer: wait` so it answers with the finished image. */
export function snippet(language: SnippetLanguage, apiBase: string, body: CreateBody): string {
  const url = `${apiBase}/v1/predictions`;
  const json = JSON.stringify(body, null, 2);
  switch (language) {
    case 'curl':
      return [
        `curl -s -X POST ${url} \\`,
        '  -H "Authorization: Bearer $SD_API_KEY" \\',
        '  -H "Content-Type: application/json" \\',
        '  -H "Prefer: wait" \\',
        `  -d ${indent(shellQuote(json), '  ')}`,
      ].join('\n');
    case 'fetch':
      return [
        `const res = await fetch(${JSON.stringify(url)}, {`,
        "  method: 'POST',",
        "  headers: { Authorization: 'Bearer ' + process.env.SD_API_KEY, 'Content-Type': 'application/json', Prefer: 'wait' },",
        `  body: JSON.stringify(${indent(json, '  ')}),`,
        '});',
        'const prediction = await res.json();',
        'console.log(prediction.status, prediction.output);',
      ].join('\n');
    case 'replicate':
      return [
        "import Replicate from 'replicate';",
        '',
        `const replicate = new Replicate({ auth: process.env.SD_API_KEY, baseUrl: ${JSON.stringify(`${apiBase}/v1`)} });`,
        `const output = await replicate.run(${JSON.stringify(body.version)}, { input: ${indent(JSON.stringify(body.input, null, 2), '')} });`,
        'console.log(output);',
      ].join('\n');
    case 'python':
      return [
        'import os',
        'import requests',
        '',
        'res = requests.post(',
        `    ${JSON.stringify(url)},`,
        '    headers={"Authorization": "Bearer " + os.environ["SD_API_KEY"], "Prefer": "wait"},',
        `    json=${pythonLiteral(body, '    ')},`,
        ')',
        'prediction = res.json()',
        'print(prediction["status"], prediction["output"])',
      ].join('\n');
  }
}
