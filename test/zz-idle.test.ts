import { test, expect } from "bun:test";
import { World } from "./helpers/harness.ts";
import { openWorld, spawnBunAsNobody } from "./security/attacker.ts";
test("idle", async () => {
  const world = new World({ master: { sock_mode: "0666" } });
  openWorld(world);
  await world.daemon();
  const t0 = Date.now();
  const a = spawnBunAsNobody(`
    const t0 = Date.now();
    const idle = await Bun.connect({ unix: ${JSON.stringify(world.sockPath)}, socket: { data() {}, close() { console.log("idle closed after", Date.now() - t0); } } });
    const busy = await Bun.connect({ unix: ${JSON.stringify(world.sockPath)}, socket: { data() {}, close() { console.log("busy closed after", Date.now() - t0); } } });
    setInterval(() => busy.write('{"cmd":"ping"}\\n'), 5000);
    await Bun.sleep(100000); console.log("busy still open"); process.exit(0);`);
  await a.proc.exited;
  console.log(a.output(), Date.now() - t0);
  await world.cleanup();
}, 150000);
