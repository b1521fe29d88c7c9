/**
 * Test-only entry: the daemon as src/main.ts runs it (serveDaemon), with a real PidWatcher that
 * is broken on purpose. Nothing under src/ imports this file and the binary does not contain
 * it; the product has no setting that swaps its watcher.
 *
 *   bun test/helpers/daemon-entry.ts cannot-start CONFIG   the worker's address names no file
 *   bun test/helpers/daemon-entry.ts dies-on-usr2 CONFIG   the real worker, terminated on SIGUSR2
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveDaemon } from "../../src/daemon/daemon.ts";
import { PidWatcher } from "../../src/linux/pidwatch.ts";

const [mode, config] = process.argv.slice(2);

class CannotStart extends PidWatcher {
  override start(onFailure: (e: Error) => void): Promise<void> {
    return super.start(onFailure, 30_000, join(tmpdir(), `no-such-pidwatch-worker-${process.pid}.js`));
  }
}

/** The worker ends as a crashed one would: terminated while the watcher still counts on it. */
class DiesOnUsr2 extends PidWatcher {
  override async start(onFailure: (e: Error) => void): Promise<void> {
    await super.start(onFailure);
    process.on("SIGUSR2", () => (this as unknown as { worker: Worker }).worker.terminate());
  }
}

if (!config || (mode !== "cannot-start" && mode !== "dies-on-usr2")) {
  process.stderr.write("usage: bun test/helpers/daemon-entry.ts cannot-start|dies-on-usr2 CONFIG\n");
  process.exit(2);
}
await serveDaemon(config, { watcher: mode === "cannot-start" ? new CannotStart() : new DiesOnUsr2() });
