/** "Did you mean …?" for unknown keys: the allowed name closest to a typo. Pure. */

/** Levenshtein distance with adjacent transpositions (`comamnd` is one edit from `command`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The allowed name `typo` most likely meant, or null when none is close: the same words in
 * another case or with `-` for `_`; within a third of its length in edits (at least 1, at most
 * 3); or the one name that `typo` abbreviates word by word (`log_dir` → `log_directory`,
 * `cgroup_mem_max` → `cgroup_memory_max`, `sock_read` → `sock_read_group`).
 */
export function closestName(typo: string, allowed: readonly string[]): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/-/g, "_");
  const same = allowed.find((a) => norm(a) === norm(typo));
  if (same) return same;
  let best: string | null = null;
  let bestD = Math.max(1, Math.min(3, Math.floor(typo.length / 3)));
  for (const a of allowed) {
    const dist = editDistance(norm(typo), a);
    if (dist <= bestD && (best === null || dist < bestD)) { best = a; bestD = dist; }
  }
  if (best !== null || typo.length < 3) return best;
  const abbreviated = allowed.filter((a) => abbreviates(norm(typo), a));
  return abbreviated.length === 1 ? abbreviated[0]! : null;
}

/** Whether each `_` word of `short` begins the word of `name` at its place (`name` may have more words). */
function abbreviates(short: string, name: string): boolean {
  const have = short.split("_");
  const want = name.split("_");
  return have.length <= want.length && have.every((w, i) => w !== "" && want[i]!.startsWith(w));
}
