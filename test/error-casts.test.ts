// The CLIs and scripts read what a catch caught through errorMessage/errorStack (@sd/shared/error-message): a cast to
// Error prints "undefined" for anything thrown that is not one (a string, a rejected non-Error), and hides that from tsc.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'generated' ? [] : sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('scripts and CLIs', () => {
  it.each(['scripts', 'edge/scripts', 'bench'])('%s casts no caught value to Error', (dir) => {
    const files = sources(join(root, dir));
    expect(files.length).toBeGreaterThan(0);
    const casts = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) => (/\bas Error\b/.test(line) ? [`${relative(root, file)}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(casts).toEqual([]);
  });
});
