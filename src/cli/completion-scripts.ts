/**
 * The completion scripts of `pmctl completion bash|zsh|fish` (completion.ts), loaded when that
 * command runs: a `status` does not load them (issue 15).
 */
import type { ArgsDef } from "citty";
import { GLOBAL_ARGS, type CliCommand } from "./args.ts";

/** Commands whose arguments are service names; those in the first set also take `all`. */
const TAKES_ALL = new Set(["start", "stop", "restart", "reload", "signal", "wait"]);
const TAKES_SERVICES = new Set(["status", "rotate", "logs", "show", ...TAKES_ALL]);

/** Every spelling of every option of `def`: `--json`, `-c`, `--no-color`. */
function optionWords(def: ArgsDef): string[] {
  const words: string[] = [];
  for (const [name, a] of Object.entries(def)) {
    if (a.type === "positional") continue;
    words.push(name === "color" ? "--no-color" : `--${name}`);
    const aliases = "alias" in a && a.alias ? (Array.isArray(a.alias) ? a.alias : [a.alias]) : [];
    for (const al of aliases) words.push(al.length === 1 ? `-${al}` : `--${al}`);
  }
  return words;
}

const shellWord = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

export function bashScript(prog: string, commands: CliCommand[]): string {
  const fn = `_${prog.replace(/\W/g, "_")}_complete`;
  const perCommand = commands.map((c) => `      ${c.name}) opts=${shellWord(optionWords(c.args).join(" "))} ;;`).join("\n");
  return `# bash completion for ${prog}; load with: source <(${prog} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmds=${shellWord(commands.map((c) => c.name).join(" "))}
  local globals=${shellWord(optionWords(GLOBAL_ARGS).join(" "))}
  local cmd="" i opts=""
  local -a cfg=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -c|--config) cfg=(-c "\${COMP_WORDS[i+1]}"); ((i++)) ;;
      --config=*) cfg=("\${COMP_WORDS[i]}") ;;
      --interval|-n|--lines) ((i++)) ;;
      -*) ;;
      *) [[ -z "$cmd" ]] && cmd="\${COMP_WORDS[i]}" ;;
    esac
  done
  case "$prev" in
    -c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --interval|-n|--lines) COMPREPLY=(); return ;;
  esac
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$globals" -- "$cur")); else COMPREPLY=($(compgen -W "$cmds" -- "$cur")); fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    case "$cmd" in
${perCommand}
    esac
    COMPREPLY=($(compgen -W "$globals $opts" -- "$cur"))
    return
  fi
  local names=""
  case "$cmd" in
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
    ${[...TAKES_ALL].join("|")}) names="all $("\${COMP_WORDS[0]}" "\${cfg[@]}" __complete services 2>/dev/null)" ;;
    ${[...TAKES_SERVICES].filter((c) => !TAKES_ALL.has(c)).join("|")}) names="$("\${COMP_WORDS[0]}" "\${cfg[@]}" __complete services 2>/dev/null)" ;;
  esac
  # Not compgen -W: it expands $(…) inside the words, and the names come from a socket.
  COMPREPLY=()
  local w -
  set -f
  for w in $names; do [[ "$w" == "$cur"* ]] && COMPREPLY+=("$w"); done
}
complete -F ${fn} ${prog}
`;
}

export function zshScript(prog: string, commands: CliCommand[]): string {
  const fn = `_${prog.replace(/\W/g, "_")}`;
  // The first clause of each description: a completion menu line, not the help text.
  const described = commands.map((c) => shellWord(`${c.name}:${c.description.split(/[;:] /)[0]!.replace(/:/g, "\\:")}`)).join(" ");
  const perCommand = commands.map((c) => `      ${c.name}) opts=(${optionWords(c.args).join(" ")}) ;;`).join("\n");
  return `#compdef ${prog}
# zsh completion for ${prog}; load with: source <(${prog} completion zsh)
${fn}() {
  local -a cmds cfg opts globals
  cmds=(${described})
  globals=(${optionWords(GLOBAL_ARGS).join(" ")})
  local cmd="" i
  for ((i = 2; i < CURRENT; i++)); do
    case "$words[i]" in
      -c|--config) cfg=(-c "$words[i+1]"); ((i++)) ;;
      --interval|-n|--lines) ((i++)) ;;
      -*) ;;
      *) [[ -z "$cmd" ]] && cmd="$words[i]" ;;
    esac
  done
  case "$words[CURRENT-1]" in
    -c|--config) _files; return ;;
    --interval|-n|--lines) return ;;
  esac
  if [[ -z "$cmd" ]]; then
    if [[ "$PREFIX" == -* ]]; then compadd -- $globals; else _describe command cmds; fi
    return
  fi
  if [[ "$PREFIX" == -* ]]; then
    case "$cmd" in
${perCommand}
    esac
    compadd -- $globals $opts
    return
  fi
  case "$cmd" in
    completion) compadd bash zsh fish ;;
    ${[...TAKES_ALL].join("|")}) compadd -- all \${(f)"$($words[1] $cfg __complete services 2>/dev/null)"} ;;
    ${[...TAKES_SERVICES].filter((c) => !TAKES_ALL.has(c)).join("|")}) compadd -- \${(f)"$($words[1] $cfg __complete services 2>/dev/null)"} ;;
  esac
}
compdef ${fn} ${prog}
`;
}

export function fishScript(prog: string, commands: CliCommand[]): string {
  const lines = [
    `# fish completion for ${prog}; load with: ${prog} completion fish | source`,
    `function __${prog}_services`,
    `    set -l t (commandline -opc)`,
    `    set -l cfg`,
    `    for i in (seq (count $t))`,
    `        if contains -- $t[$i] -c --config; and test $i -lt (count $t)`,
    `            set cfg -c $t[(math $i + 1)]`,
    `        end`,
    `    end`,
    `    command $t[1] $cfg __complete services 2>/dev/null`,
    `end`,
    `complete -c ${prog} -f`,
    `complete -c ${prog} -s c -l config -r -F -d 'master config file'`,
    `complete -c ${prog} -l json -d 'print JSON'`,
    `complete -c ${prog} -l no-color -d 'no colour'`,
    `complete -c ${prog} -s h -l help -d 'show help'`,
  ];
  const names = commands.map((c) => c.name).join(" ");
  for (const c of commands) {
    lines.push(`complete -c ${prog} -n 'not __fish_seen_subcommand_from ${names}' -a ${c.name} -d ${shellWord(c.description)}`);
    for (const [name, a] of Object.entries(c.args)) {
      if (a.type === "positional") continue;
      const aliases = "alias" in a && a.alias ? (Array.isArray(a.alias) ? a.alias : [a.alias]) : [];
      const short = aliases.find((x) => x.length === 1);
      lines.push(`complete -c ${prog} -n '__fish_seen_subcommand_from ${c.name}' -l ${name}${short ? ` -s ${short}` : ""}${a.type === "string" ? " -r" : ""} -d ${shellWord(a.description ?? name)}`);
    }
  }
  lines.push(`complete -c ${prog} -n '__fish_seen_subcommand_from ${[...TAKES_ALL].join(" ")}' -a 'all (__${prog}_services)'`);
  lines.push(`complete -c ${prog} -n '__fish_seen_subcommand_from ${[...TAKES_SERVICES].filter((c) => !TAKES_ALL.has(c)).join(" ")}' -a '(__${prog}_services)'`);
  lines.push(`complete -c ${prog} -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'`);
  return lines.join("\n") + "\n";
}
