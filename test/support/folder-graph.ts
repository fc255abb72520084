// The import graph between folders of a source tree: which folder's modules import which other folder's, and the
// cycles in it. A folder is a node; a module directly in the tree's root is a node of its own (the root is no room).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface FolderEdge {
  from: string;
  to: string;
  /** One import that makes the edge: "file -> imported file". */
  example: string;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'node_modules') out.push(...sourceFiles(path));
    } else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The node a file belongs to: its folder relative to the root, or the file itself when it sits in the root. */
function nodeOf(root: string, file: string): string {
  const folder = relative(root, dirname(file));
  return folder === '' ? relative(root, file) : folder;
}

/** Every folder-to-folder import inside `root` (imports that leave the root and package imports are not edges). */
export function folderEdges(root: string): FolderEdge[] {
  const edges = new Map<string, FolderEdge>();
  const absRoot = resolve(root);
  for (const file of sourceFiles(absRoot)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(`${absRoot}/`)) continue;
      const from = nodeOf(absRoot, file);
      const to = nodeOf(absRoot, target);
      if (from === to) continue;
      const key = `${from}\u0000${to}`;
      if (!edges.has(key)) edges.set(key, { from, to, example: `${relative(absRoot, file)} -> ${relative(absRoot, target)}` });
    }
  }
  return [...edges.values()];
}

/** Each cycle once, as the list of its nodes (strongly connected components of more than one node). */
export function folderCycles(edges: readonly FolderEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const nodes = [...new Set(edges.flatMap((e) => [e.from, e.to]))];
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node) as number, low.get(to) as number));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node) as number, index.get(to) as number));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      for (;;) {
        const top = stack.pop() as string;
        onStack.delete(top);
        component.push(top);
        if (top === node) break;
      }
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of nodes) if (!index.has(node)) visit(node);
  return components;
}
