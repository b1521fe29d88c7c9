/**
 * `depends_on` across service files: every name must be a service, and the graph must have no
 * cycle. Pure: takes the services, returns problems naming the files.
 */
import type { ConfigProblem, DependencyCondition } from "./types.ts";

export interface DependencyNode {
  name: string;
  file: string;
  dependsOn?: Record<string, DependencyCondition>;
  /** Line of `depends_on:` in `file`, for the problem. */
  line?: number;
}

/**
 * Problems of the graph: `depends_on` naming no service, and each cycle once (reported on every
 * member's file, the whole cycle in each message). Returns the names to leave out.
 */
export function dependencyProblems(nodes: DependencyNode[]): { problems: ConfigProblem[]; bad: Set<string> } {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const problems: ConfigProblem[] = [];
  const bad = new Set<string>();
  for (const n of nodes) {
    for (const dep of Object.keys(n.dependsOn ?? {})) {
      if (dep === n.name) {
        problems.push({ file: n.file, line: n.line, key: `depends_on.${dep}`, message: `'${n.name}' depends on itself` });
        bad.add(n.name);
      } else if (!byName.has(dep)) {
        problems.push({ file: n.file, line: n.line, key: `depends_on.${dep}`, message: `unknown service '${dep}' (no valid service file defines it)` });
        bad.add(n.name);
      }
    }
  }
  for (const cycle of findCycles(nodes)) {
    const files = cycle.map((c) => `${c} (${byName.get(c)!.file})`).join(" -> ");
    for (const name of cycle) {
      const n = byName.get(name)!;
      bad.add(name);
      problems.push({ file: n.file, line: n.line, key: "depends_on", message: `dependency cycle: ${files} -> ${cycle[0]}` });
    }
  }
  return { problems, bad };
}

/** Each cycle once, as the list of its members in dependency order, starting at its smallest name. */
export function findCycles(nodes: DependencyNode[]): string[][] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const deps = (name: string) => Object.keys(byName.get(name)?.dependsOn ?? {}).filter((d) => byName.has(d) && d !== name).sort();
  // Tarjan's strongly connected components: every component with more than one member is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const w of deps(v)) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      for (let w = stack.pop()!; ; w = stack.pop()!) { onStack.delete(w); comp.push(w); if (w === v) break; }
      if (comp.length > 1) cycles.push(orderCycle(comp, deps));
    }
  };
  for (const n of [...byName.keys()].sort()) if (!idx.has(n)) visit(n);
  return cycles.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/** A path through the component that starts and ends at its smallest member (for the message). */
function orderCycle(comp: string[], deps: (n: string) => string[]): string[] {
  const members = new Set(comp);
  const start = [...comp].sort()[0]!;
  // Breadth-first from start back to start, inside the component.
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of deps(v)) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        for (let p = v; p !== start; p = prev.get(p)!) path.unshift(prev.get(p)!);
        return path;
      }
      if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [...comp].sort();
}
