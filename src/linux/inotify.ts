/**
 * inotify, non-blocking: watches on files and folders, and "did anything that matters change
 * since the last look?" answered by one read(2). The kernel queues an event inside the system
 * call that makes the change (chmod, chown, rename, unlink, create), so a change that is done is
 * seen by the next look. Mounts are not reported (only root mounts).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

const { i32, i64, u32, u64, ptr: P } = FFIType;
const libc = dlopen("libc.so.6", {
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, P, u32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64 },
});
const sym = libc.symbols;

const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
const IN_Q_OVERFLOW = 0x4000;
/** What can change who may change a file or what a path names: modes and owners, names created, removed or renamed. */
export const IN_TRUST_CHANGES = 0x4 /* ATTRIB */ | 0x40 /* MOVED_FROM */ | 0x80 /* MOVED_TO */ | 0x100 /* CREATE */ |
  0x200 /* DELETE */ | 0x400 /* DELETE_SELF */ | 0x800 /* MOVE_SELF */;

export class ChangeWatch {
  private readonly buf = new Uint8Array(16384);
  private readonly view = new DataView(this.buf.buffer);
  /**
   * Per watch: the names in it whose events matter (null: all). An event on the watched file or
   * folder itself always matters; one on another name in a busy folder (/tmp) does not.
   */
  private readonly names = new Map<number, Set<string> | null>();

  private constructor(private readonly fd: number) {}

  /** null when inotify cannot be used (no instance left, not Linux). */
  static open(): ChangeWatch | null {
    let fd: number;
    try { fd = sym.inotify_init1(IN_NONBLOCK | IN_CLOEXEC); } catch { return null; }
    return fd < 0 ? null : new ChangeWatch(fd);
  }

  /**
   * Watches `path` (a symlink is followed, as stat follows it), caring about the entries
   * `names` in it (all when null); false when it cannot.
   */
  watch(path: string, names: Iterable<string> | null, mask = IN_TRUST_CHANGES): boolean {
    const wd = sym.inotify_add_watch(this.fd, ptr(Buffer.from(`${path}\0`)), mask);
    if (wd < 0) return false;
    const had = this.names.get(wd);
    if (had === null || names === null) this.names.set(wd, null);
    else this.names.set(wd, new Set([...(had ?? []), ...names]));
    return true;
  }

  /** Distinct watches: callers bound their use. */
  get size(): number { return this.names.size; }

  /** Whether an event that matters (or a queue overflow) came since the last call; reads them all. */
  changed(): boolean {
    let any = false;
    for (;;) {
      const n = Number(sym.read(this.fd, ptr(this.buf), this.buf.length));
      if (n <= 0) return any;
      for (let at = 0; at + 16 <= n;) {
        const wd = this.view.getInt32(at, true);
        const mask = this.view.getUint32(at + 4, true);
        const len = this.view.getUint32(at + 12, true);
        if (!any) {
          if (mask & IN_Q_OVERFLOW || len === 0) any = true; // the watched thing itself, or lost events
          else {
            const names = this.names.get(wd);
            const end = this.buf.indexOf(0, at + 16);
            const name = Buffer.from(this.buf.buffer, at + 16, (end < 0 || end > at + 16 + len ? at + 16 + len : end) - at - 16).toString();
            if (names === null || names === undefined || names.has(name)) any = true;
          }
        }
        at += 16 + len;
      }
    }
  }
}
