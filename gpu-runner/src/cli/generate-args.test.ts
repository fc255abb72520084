import { describe, expect, it } from 'vitest';
import { FLAGS, parseGenerateArgs, USAGE, UsageError } from './generate-args.ts';

describe('generate arguments', () => {
  it('--help lists every flag the parser takes, each with what it does and its default', () => {
    for (const flag of FLAGS) {
      const line = USAGE.split('\n').find((l) => l.trimStart().startsWith(`--${flag.flag}`));
      expect(line, flag.flag).toBeDefined();
      expect(line).toContain(flag.help);
      if (flag.default && flag.default !== 'required') expect(line).toContain(`(default: ${flag.default})`);
    }
    // Every flag the table names is accepted (and nothing it does not name).
    const all = FLAGS.filter((f) => f.value).flatMap((f) => [`--${f.flag}`, 'x']);
    expect(() => parseGenerateArgs(all)).not.toThrow(/Unknown option/);
    expect(() => parseGenerateArgs(['--prompt', 'x', '--out', 'o.png', '--colour', 'red'])).toThrow(/colour/);
  });

  it('takes the format from --out, or --format when the file name says nothing', () => {
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o.webp']).format).toBe('webp');
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o.JPG']).format).toBe('jpeg');
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o.img', '--format', 'webp']).format).toBe('webp');
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o']).format).toBe('png');
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o.jpeg', '--format', 'jpeg']).format).toBe('jpeg');
  });

  it('refuses a --format that contradicts the file name instead of writing WebP into a .png', () => {
    const run = () => parseGenerateArgs(['--prompt', 'x', '--format', 'webp', '--out', 'x.png']);
    expect(run).toThrow(UsageError);
    expect(run).toThrow('--format webp does not match --out x.png (a .png file): name the file .webp or drop --format');
    expect(() => parseGenerateArgs(['--prompt', 'x', '--format', 'gif', '--out', 'x.png'])).toThrow(
      '--format must be png, webp or jpeg, got gif',
    );
  });

  it('takes --guidance-end as a fraction, absent meaning the model default', () => {
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o.png']).guidanceEnd).toBeUndefined();
    expect(parseGenerateArgs(['--prompt', 'x', '--out', 'o.png', '--guidance-end', '0.4']).guidanceEnd).toBe(0.4);
    expect(() => parseGenerateArgs(['--prompt', 'x', '--out', 'o.png', '--guidance-end', '2'])).toThrow(/--guidance-end/);
  });
});
