// Folders point one way: the import graph between the folders of each source tree has no cycle. Test files count too
// (a test that reaches into a sibling folder ties the folders as much as code does). A module directly in a tree's root
// is a node of its own, so the root is never a folder that everything "imports".
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderCycles, folderEdges } from './support/folder-graph.ts';

const root = join(import.meta.dirname, '..');

describe('folder import graph', () => {
  it('finds a cycle when there is one, through any number of folders, and none in a chain', () => {
    const edge = (from: string, to: string) => ({ from, to, example: `${from} -> ${to}` });
    expect(folderCycles([edge('a', 'b'), edge('b', 'c'), edge('c', 'a'), edge('c', 'd')])).toEqual([['a', 'b', 'c']]);
    expect(folderCycles([edge('a', 'b'), edge('b', 'c'), edge('a', 'c')])).toEqual([]);
  });

  it.each(['edge/src', 'gpu-runner/src', 'shared/src'])('%s has no folder-level import cycle', (tree) => {
    const edges = folderEdges(join(root, tree));
    // The graph was read at all: every tree has folders importing each other.
    expect(edges.length).toBeGreaterThan(10);
    const cycles = folderCycles(edges).map((cycle) => ({
      cycle: cycle.join(' <-> '),
      because: edges.filter((e) => cycle.includes(e.from) && cycle.includes(e.to)).map((e) => e.example),
    }));
    expect(cycles).toEqual([]);
  });
});
