/**
 * The files an interpreter named in a command would read as code: `["/bin/sh", "/home/u/s.sh"]`
 * runs s.sh, and a root daemon that checked only /bin/sh would run whatever the owner of s.sh
 * wrote. Pure: from argv to the words that name scripts (relative to the working directory).
 *
 * What is understood (docs/security.md says it plainly): the interpreters below, called
 * directly or through `env`; their inline-code options (`-c`, `-e`, …: the code is in the
 * config itself, nothing to check); the options that take a separate value; `--`. The first
 * other word is the script. Not understood: a module looked up by name (`python -m mod`,
 * `ruby -rlib`), files a script then loads, interpreters not on the list.
 */
import { basename } from "node:path";

type Family = "shell" | "python" | "perl" | "ruby" | "node" | "bun" | "deno" | "php" | "lua";

const FAMILIES: [RegExp, Family][] = [
  [/^(sh|bash|dash|zsh|ksh|mksh|ash|yash)$/, "shell"],
  [/^(python|pypy)[0-9.]*$/, "python"],
  [/^perl[0-9.]*$/, "perl"],
  [/^ruby[0-9.]*$/, "ruby"],
  [/^(node|nodejs)$/, "node"],
  [/^bun$/, "bun"],
  [/^deno$/, "deno"],
  [/^php[0-9.]*$/, "php"],
  [/^lua(jit)?[0-9.]*$/, "lua"],
];

/** Options whose code is inline (nothing more to check after them). */
const INLINE: Record<Family, RegExp> = {
  shell: /^-[a-zA-Z]*c[a-zA-Z]*$/,
  python: /^-[a-zA-Z]*[cm]/,
  perl: /^-[a-zA-Z]*[eE]/,
  ruby: /^-[a-zA-Z]*e/,
  node: /^(-e|--eval|-p|--print)(=|$)/,
  bun: /^(-e|--eval|-p|--print)(=|$)/,
  deno: /^(eval|repl)$/,
  php: /^-r/,
  lua: /^-e/,
};

/** Options that take the next word as their value. */
const WITH_VALUE: Record<Family, ReadonlySet<string>> = {
  shell: new Set(["-o", "+o", "-O", "+O"]),
  python: new Set(["-W", "-X", "-Q"]),
  perl: new Set(["-I", "-M", "-m", "-x"]),
  ruby: new Set(["-I", "-r", "-C", "-E"]),
  node: new Set(["--require", "-r", "--import", "--loader", "--experimental-loader", "--env-file", "-C", "--conditions", "--title"]),
  bun: new Set(["--require", "-r", "--preload", "--import", "--env-file", "--cwd", "--config", "-c"]),
  deno: new Set(["--config", "-c", "--import-map", "--lock"]),
  php: new Set(["-c", "-d", "-z"]),
  lua: new Set(["-l"]),
};

/** Options whose value is itself code to load (checked like the script). */
const LOADS_CODE = new Set(["--require", "-r", "--import", "--loader", "--experimental-loader", "--preload"]);

function familyOf(word: string): Family | null {
  const name = basename(word);
  for (const [re, f] of FAMILIES) if (re.test(name)) return f;
  return null;
}

/** The words of `argv` that an interpreter it starts reads as code (script, preloaded modules). */
export function scriptArguments(argv: readonly string[]): string[] {
  let i = 0;
  if (basename(argv[0] ?? "") === "env") {
    // env [-i] [-u NAME] [NAME=value]… program …
    for (i = 1; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === "-u" || a === "--unset" || a === "-C" || a === "--chdir") { i++; continue; }
      if (a.startsWith("-") || a.includes("=")) continue;
      break;
    }
  }
  const family = familyOf(argv[i] ?? "");
  if (!family) return [];
  const found: string[] = [];
  for (i++; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") { if (i + 1 < argv.length) found.push(argv[i + 1]!); break; }
    if (INLINE[family].test(a)) break;
    if (WITH_VALUE[family].has(a)) { if (LOADS_CODE.has(a) && i + 1 < argv.length) found.push(argv[i + 1]!); i++; continue; }
    if (a.startsWith("-") || a.startsWith("+")) {
      const eq = a.indexOf("=");
      if (eq > 0 && LOADS_CODE.has(a.slice(0, eq))) found.push(a.slice(eq + 1));
      continue;
    }
    if ((family === "bun" || family === "deno") && (a === "run" || a === "x")) continue;
    found.push(a);
    break;
  }
  return found;
}
