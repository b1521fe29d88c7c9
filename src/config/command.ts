/**
 * Splitting a command string into argv the way a POSIX shell splits words — and nothing more:
 * single quotes keep everything literally, double quotes keep everything but `\"`, `\\`, `\$`,
 * `` \` `` and backslash-newline, an unquoted backslash escapes the next character.
 * No variable, command, tilde or glob expansion; `$HOME`, `*`, `~` and `#` are passed as written.
 */
import { PmError } from "../util/errors.ts";

export interface CommandWord {
  word: string;
  /** True when any part of the word was quoted or escaped. */
  quoted: boolean;
}

/** Split like a shell splits words; throws PmError CONFIG_INVALID on an unterminated quote. */
export function splitCommand(text: string): string[] {
  return splitCommandWords(text).map((w) => w.word);
}

export function splitCommandWords(text: string): CommandWord[] {
  const words: CommandWord[] = [];
  let cur = "";
  let inWord = false;
  let quoted = false;
  let i = 0;
  const end = () => {
    if (inWord) words.push({ word: cur, quoted });
    cur = "";
    inWord = false;
    quoted = false;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      end();
      i++;
    } else if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) throw new PmError("CONFIG_INVALID", `unterminated single quote (the ' at character ${i + 1} has no closing ')`);
      cur += text.slice(i + 1, close);
      inWord = quoted = true;
      i = close + 1;
    } else if (c === '"') {
      const start = i;
      i++;
      inWord = quoted = true;
      for (;;) {
        if (i >= text.length) throw new PmError("CONFIG_INVALID", `unterminated double quote (the " at character ${start + 1} has no closing ")`);
        const d = text[i]!;
        if (d === '"') { i++; break; }
        if (d === "\\" && i + 1 < text.length) {
          const n = text[i + 1]!;
          if (n === "\n") { i += 2; continue; }
          if (n === '"' || n === "\\" || n === "$" || n === "`") { cur += n; i += 2; continue; }
        }
        cur += d;
        i++;
      }
    } else if (c === "\\") {
      if (i + 1 >= text.length) throw new PmError("CONFIG_INVALID", "the command ends with a lone backslash (\\); escape it as \\\\ or remove it");
      const n = text[i + 1]!;
      i += 2;
      if (n === "\n") continue; // line continuation
      cur += n;
      inWord = quoted = true;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  end();
  return words;
}

/** Unquoted words a shell would treat as operators; in a plain argv they would be passed as arguments. */
export const SHELL_OPERATORS: ReadonlySet<string> = new Set(["|", "||", "&", "&&", ";", ";;", ">", ">>", "<", "<<", "2>", "2>>", "2>&1", ">&2", "&>", "|&"]);
