/** Which words of a command an interpreter reads as code (supervisor/script-args.ts): a table. */
import { describe, expect, test } from "bun:test";
import { scriptArguments } from "../src/supervisor/script-args.ts";

describe("scripts of interpreters", () => {
  const cases: [string[], string[]][] = [
    [["/bin/sh", "/home/u/s.sh"], ["/home/u/s.sh"]],
    [["bash", "-eu", "-o", "pipefail", "run.sh", "arg"], ["run.sh"]],
    [["sh", "-c", "/home/u/s.sh"], []], // inline code: part of the (trusted) config
    [["sh", "-ec", "echo hi"], []],
    [["python3", "-u", "-W", "ignore", "app.py", "--port", "80"], ["app.py"]],
    [["python3.11", "-c", "print(1)"], []],
    [["python3", "-m", "http.server"], []], // a module by name: not checked (documented)
    [["/usr/bin/env", "-i", "A=1", "python3", "/srv/a.py"], ["/srv/a.py"]],
    [["perl", "-w", "tool.pl"], ["tool.pl"]],
    [["perl", "-e", "print 1"], []],
    [["node", "-r", "./hook.js", "--import=./loader.mjs", "server.js"], ["./hook.js", "./loader.mjs", "server.js"]],
    [["node", "--eval", "1"], []],
    [["bun", "run", "app.ts"], ["app.ts"]],
    [["bun", "--preload", "./p.ts", "app.ts"], ["./p.ts", "app.ts"]],
    [["ruby", "-I", "lib", "app.rb"], ["app.rb"]],
    [["sh", "--", "-weird.sh"], ["-weird.sh"]],
    [["/usr/bin/app", "script.sh"], []], // not an interpreter
    [["sleep", "10"], []],
  ];
  for (const [argv, scripts] of cases) {
    test(argv.join(" "), () => expect(scriptArguments(argv)).toEqual(scripts));
  }
});
