/**
 * `pmctl logs [app] [-n N] [-f] [file-name]`: read straight from the files named in the config,
 * so it works with the daemon down too.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import type { Config, ServiceConfig } from "../config/types.ts";
import { followFiles, tailLines } from "../logs/index.ts";
import { PmError } from "../util/errors.ts";

export interface LogFile { app: string; path: string }

/** Every log file of a service: stdout, stderr, stop-command output, hints. */
export function serviceLogFiles(svc: ServiceConfig): LogFile[] {
  const paths = [svc.logs.stdout, svc.logs.stderr, svc.logs.stopCommandStdout, svc.logs.stopCommandStderr, ...svc.logs.hints];
  return [...new Set(paths.filter((p): p is string => !!p))].map((path) => ({ app: svc.name, path }));
}

/** Splits the positionals into an app name and a file-name filter. */
export function selectLogFiles(config: Config, positionals: string[]): LogFile[] {
  let [first, second] = positionals;
  if (positionals.length > 2) throw new PmError("USAGE", "logs takes at most an app name and a file name");
  let apps = [...config.services.values()];
  if (first !== undefined && config.services.has(first)) {
    apps = [config.services.get(first)!];
  } else if (first !== undefined) {
    if (second !== undefined) throw new PmError("UNKNOWN_SERVICE", `unknown service '${first}' (known: ${[...config.services.keys()].join(", ") || "none"})`);
    second = first; // a lone word that is no app: a file-name filter
  }
  if (apps.length === 0) throw new PmError("UNKNOWN_SERVICE", `no services are configured in ${config.master.configDirectory}; no log files to show`);
  const all = apps.flatMap(serviceLogFiles);
  let files = all;
  if (second !== undefined) {
    files = all.filter((f) => basename(f.path) === second);
    if (files.length === 0) {
      const names = [...new Set(all.map((f) => basename(f.path)))].join(", ") || "none";
      throw new PmError("UNKNOWN_SERVICE", first !== second
        ? `service '${first}' has no log file named '${second}' (its log files: ${names})`
        : `no service and no log file named '${second}' (services: ${[...config.services.keys()].join(", ") || "none"}; log file names: ${names})`);
    }
  }
  return files;
}

/** `logs --json`: one JSON object a line, `{"app","file","line"}`. */
export const jsonLogLine = (f: LogFile, line: string) => JSON.stringify({ app: f.app, file: f.path, line });

export function printTail(files: LogFile[], lines: number, out: (s: string) => void, json = false): void {
  for (const f of files) {
    // Hints are listed only when they exist; the service's own files always get a header.
    if (!existsSync(f.path)) continue;
    if (json) { for (const line of tailLines(f.path, lines)) out(jsonLogLine(f, line)); continue; }
    out(`==> ${f.app}: ${f.path} <==`);
    for (const line of tailLines(f.path, lines)) out(line);
    out("");
  }
}

/** Follows until SIGINT/SIGTERM; resolves with exit code 0 then. */
export function follow(files: LogFile[], out: (s: string) => void, err: (s: string) => void, json = false): Promise<number> {
  const labelled = files.length > 1;
  // Two hint files of one app may share a base name: the JSON line then names the first's path.
  const byLabel = new Map<string, LogFile>();
  for (const f of files) if (!byLabel.has(`${f.app} ${basename(f.path)}`)) byLabel.set(`${f.app} ${basename(f.path)}`, f);
  const follower = followFiles(
    files.map((f) => ({ path: f.path, label: `${f.app} ${basename(f.path)}` })),
    (label, line) => out(json ? jsonLogLine(byLabel.get(label)!, line) : labelled ? `[${label}] ${line}` : line),
    { onError: (label, message) => err(`${label}: ${message}`) },
  );
  return new Promise((resolve) => {
    const stop = () => { follower.close(); resolve(0); };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
