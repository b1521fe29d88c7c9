/**
 * The floor for restart latency: a process that spawns a command and spawns it again the moment
 * it exits (Bun.spawn + proc.exited), nothing else. Run as its own process, like a supervisor.
 * The command comes as JSON in PMBENCH_ARGV (never from argv: bun eats `--`).
 */
const argv: unknown = JSON.parse(process.env.PMBENCH_ARGV ?? "null");
if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string") || /bun|bare-respawn/.test(String(argv[0]))) {
  process.stderr.write("bare-respawn: PMBENCH_ARGV must be a JSON list of strings naming a command other than bun\n");
  process.exit(2);
}
const env = { ...process.env };
delete env.PMBENCH_ARGV;
const start = () => {
  const p = Bun.spawn({ cmd: argv as string[], env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  void p.exited.then(start);
};
start();
