"""Model-based test of the salvage invariants (issue 11).

Seeded random sequences of `save` (a keep-area record), panics (a pstore dmesg
record) and boots, each boot with the flash ok, full, read-only, absent, cut
after its k-th step (salvage.Cut, the power-cut matrix's hook) or failing its
k-th file write, under random retention settings. After every step:

- no loss: every record that was in RAM when a boot started is in RAM or in a
  committed bundle; a record that was only on flash leaves it only with a
  bundle retention removed (a record replaced by its own writer, a `save` of
  the same name or a panic in the same zone, was never crashkeep's to keep);
- nothing on flash twice: after a boot that ran to its end, no record is in
  two bundles (a cut between a commit and the retention it enables may leave
  one until the next bundle is committed);
- a bundle is removed only by retention and only for a newer one: every
  removed bundle is older than a bundle on flash after the boot (a cut run may
  have made room before its commit: the next run writes the new bundle), and a
  boot that found no room removes nothing;
- a committed bundle is whole (every file its meta.json names, same CRC);
- a boot with the flash ok ends with exit 0 and nothing left in RAM;
- a `save` while boot runs (condition "race", at its k-th step) is never cleared
  unless its bytes are in a bundle.

CRASHKEEP_MODEL_SEQUENCES=N runs N sequences (default: DEFAULT_SEQUENCES, fewer
on MicroPython); CRASHKEEP_MODEL_SEED=S starts at seed S (a failure names
its seed and the steps, to replay just that one with N=1).
fsync is stubbed: the model cuts at step marks, durability is the power-cut
matrix's and the e2e tests' job, and a RAM-backed root keeps it fast.
"""
import os
import sys

if __name__ == "__main__":      # run by hand: this tree's crashkeep, not an installed one
    sys.path.insert(0, (__file__.rsplit("/", 1)[0] if "/" in __file__ else ".") + "/../..")
from _util import tmpdir, write, read, exists, Rng, MICROPYTHON
from crashkeep.formats import boardconf
from crashkeep.commands import boot as salvage
from crashkeep.ops import bundles
from crashkeep.system import storage, keeparea
from crashkeep.errors import NoSpaceError, DeviceError
import test_salvage as core

DEFAULT_SEQUENCES = 2000
MP_SEQUENCES = 60
NAMES = ("messages", "config", "core-app-1", "log")
ZONES = 2                          # dmesg zones the fake kernel writes panics to
CONDITIONS = ("ok", "ok", "ok", "full", "full", "ro", "absent", "cut", "cut", "cut", "fault",
              "race")
EROFS = 30


_NOISE = []


def _noise():
    """4 KiB + 3000 bytes gzip cannot shrink, made once (per byte the Rng is slow)."""
    if not _NOISE:
        r = Rng(12345)
        _NOISE.append(bytes([r.getrandbits(8) for _ in range(4096 + 3000)]))
    return _NOISE[0]


def _env_int(name, default):
    v = os.getenv(name)
    return int(v) if v else default


def _base():
    """A fresh directory, in RAM when there is /dev/shm (the model writes thousands of
    bundles); mkdir is the lock, so parallel runs (MicroPython has no getpid) never share."""
    pid = os.getpid() if hasattr(os, "getpid") else 0
    if exists("/dev/shm"):
        for n in range(1, 1000):
            p = "/dev/shm/ck-model-%d-%d" % (pid, n)
            try:
                os.mkdir(p)
                return p
            except OSError:
                continue
    return tmpdir()


class ReadOnlyOs:
    """The os module as a read-only flash shows it: changes under `under` fail EROFS."""

    def __init__(self, real, under):
        self.real = real
        self.under = under

    def __getattr__(self, name):
        f = getattr(self.real, name)
        if name not in ("mkdir", "rename", "remove", "rmdir", "unlink"):
            return f
        under = self.under

        def deny(*args):
            for a in args:
                if isinstance(a, str) and a.startswith(under):
                    raise OSError(EROFS, "Read-only file system")
            return f(*args)
        return deny


def _ro_open(under, real_open):
    def ro_open(path, mode="r", *a):
        if isinstance(path, str) and path.startswith(under) and ("w" in mode or "a" in mode):
            raise OSError(EROFS, "Read-only file system")
        return real_open(path, mode, *a)
    return ro_open


class World:
    """The fake root, what is in it, and what the model says must be kept."""

    def __init__(self, base):
        self.base = base
        self.root = None

    def reset(self, rng):
        root = self.base + "/r"
        storage.remove_tree(root + "/flash/crashkeep")
        storage.remove_tree(root + "/flash")
        storage.remove_tree(root + "/flash-gone/crashkeep")
        storage.remove_tree(root + "/flash-gone")
        if not exists(root + "/board.conf"):
            for m in ("reed_solomon", "ramoops", "mtd", "phram"):    # modules count as loaded
                storage.makedirs(root + "/sys/module/" + m)
                write(root + "/sys/module/" + m + "/initstate", "live\n")
            storage.makedirs(root + "/sys/fs/pstore")
            storage.makedirs(root + "/proc/sys/kernel/random")
            storage.makedirs(root + "/dev")
            write(root + "/proc/sys/kernel/osrelease", "6.1.0-fake\n")
            write(root + "/proc/mtd", "dev:    size   erasesize  name\n"
                  "mtd0: 00080000 00001000 \"crashkeep\"\n")
        for n in os.listdir(root + "/sys/fs/pstore"):
            os.remove(root + "/sys/fs/pstore/" + n)
        storage.makedirs(root + "/flash")
        write(root + "/keep.img", bytes(64 * 1024))
        write(root + "/dev/kmsg", b"")
        self.max_count = rng.choice((1, 1, 2, 3, 20))
        self.max_bytes = rng.choice((4 << 20, 4 << 20, 24 << 10, 60 << 10))
        write(root + "/board.conf", core.BOARD % (self.max_count, str(self.max_bytes)))
        self.board = boardconf.load(root + "/board.conf")
        self.root = root
        self.flash = root + "/flash/crashkeep"
        self.boots = 0
        self.owed = {}             # identity (bundle file name, bytes) -> True
        self.seen_ram = {}         # RAM and bundles as the last step left them
        self.seen_bundles = {}
        self.seen_files = {}       # bundle name -> (identities, [(file, size)])
        self.interrupted = False   # a boot was cut or failed since the last full commit

    # -- what is where
    def ram(self):
        out = {}
        d = self.root + "/sys/fs/pstore"
        for n in os.listdir(d):
            out[(n, read(d + "/" + n))] = True
        a = keeparea.open_area(self.root + "/keep.img", firmware="")
        try:
            for info in a.list():
                out[("phram/" + info.name, a.get(info.name)[1])] = True
        finally:
            a.close()
        return out

    def bundles(self):
        """seq -> {identity: True} of the committed bundles; each checked whole.
        A committed bundle never changes: its files are read and checked the first
        time it is seen; later only their sizes are (a stat, not a read)."""
        out = {}
        from binascii import crc32
        for seq, name in bundles.list_bundles(self.flash):
            d = self.flash + "/" + name
            seen = self.seen_files.get(name)
            if seen is not None:
                for path, size in seen[1]:
                    assert os.stat(path)[6] == size, "committed bundle %s changed: %s" % (name, path)
                out[seq] = seen[0]
                continue
            meta = bundles.read_meta(d)
            assert meta is not None, "bundle %s without a readable meta.json" % name
            ids = {}
            sizes = []
            for f in meta["files"]:
                raw = read(d + "/" + f["file"])
                data = storage.decompress(raw) if f["file"] != f["name"] else raw
                assert len(data) == f["size"] and crc32(data) & 0xFFFFFFFF == f["crc32"], \
                    "bundle %s: %s is not what meta.json says" % (name, f["file"])
                ids[(f["name"], data)] = True
                sizes.append((d + "/" + f["file"], len(raw)))
            self.seen_files[name] = (ids, sizes)
            out[seq] = ids
        live = [n for _, n in bundles.list_bundles(self.flash)]
        for name in list(self.seen_files):
            if name not in live:          # removed: a new bundle of that name is read afresh
                del self.seen_files[name]
        return out


class Sequence:
    def __init__(self, world, seed):
        self.w = world
        self.seed = seed
        self.rng = Rng(seed)
        self.trace = []
        self.payloads = {}

    def fail(self, msg):
        raise AssertionError("model seed %d after %s: %s" % (self.seed, " ".join(self.trace), msg))

    def payload(self, name):
        """New bytes, or (often) bytes this name was saved with before."""
        rng = self.rng
        old = self.payloads.get(name)
        if old and rng.getrandbits(2) == 0:
            return rng.choice(old)
        n = rng.choice((40, 300, 2000, 9000, 20000))
        seed = rng.getrandbits(30)
        data = (b"%s %d " % (name.encode(), seed)) * (n // 16 + 1)
        if rng.getrandbits(1):          # some that gzip cannot shrink
            off = rng.getrandbits(12)
            data = _noise()[off:off + min(n, 3000)] + data[:n]
        data = data[:n]
        self.payloads.setdefault(name, []).append(data)
        return data

    # -- steps
    def step_save(self):
        name = self.rng.choice(NAMES)
        data = self.payload(name)
        a = keeparea.open_area(self.w.root + "/keep.img", firmware="")
        try:
            a.put(name, data, wall_time=1700000000 + len(self.trace), uptime_ms=1,
                  boot_id=core.BOOT_IDS[self.w.boots])
        except NoSpaceError:
            self.trace.append("save(%s,%d:full)" % (name, len(data)))
            return
        finally:
            a.close()
        self.trace.append("save(%s,%d)" % (name, len(data)))
        self.retire_replaced()

    def step_panic(self):
        z = self.rng.getrandbits(8) % ZONES
        data = b"Panic#1 Part1\n<0>[ 1.0] Kernel panic - not syncing: %d\n" % self.rng.getrandbits(30)
        data += self.payload("dmesg")
        write(self.w.root + "/sys/fs/pstore/dmesg-ramoops-%d" % z, data)
        self.trace.append("panic(%d)" % z)
        self.retire_replaced()

    def retire_replaced(self):
        """A record its writer replaced in RAM before any boot saved it was never owed."""
        ram = self.w.ram()
        self.w.seen_ram = ram
        flash = {}
        for ids in self.w.seen_bundles.values():     # a save or a panic leaves flash alone
            flash.update(ids)
        for k in list(self.w.owed):
            if k not in ram and k not in flash:
                del self.w.owed[k]

    def step_boot(self):
        w = self.w
        rng = self.rng
        cond = rng.choice(CONDITIONS)
        k = rng.randint(1, 24)
        w.boots += 1
        core.set_boot(w.root, w.boots)
        ram0 = w.seen_ram
        before = w.seen_bundles
        for key in ram0:
            w.owed[key] = True
        capacity = 8 << 20
        if cond == "full":
            capacity = rng.choice((6 << 10, 20 << 10, 40 << 10, 80 << 10, 150 << 10))
        undo = []
        hook = None
        real_free = storage.free_bytes
        storage.free_bytes = lambda p: max(0, capacity - storage.tree_bytes(w.root + "/flash"))
        undo.append(lambda: setattr(storage, "free_bytes", real_free))
        if cond == "ro":
            for mod in (salvage, bundles, storage):
                real = mod.os
                mod.os = ReadOnlyOs(real, w.root + "/flash")
                undo.append(lambda mod=mod, real=real: setattr(mod, "os", real))
            storage.open = _ro_open(w.root + "/flash", open)
            undo.append(lambda: delattr(storage, "open"))
        elif cond == "absent":
            os.rename(w.root + "/flash", w.root + "/flash-gone")
            undo.append(lambda: os.rename(w.root + "/flash-gone", w.root + "/flash"))
        elif cond == "cut":
            count = [0]

            def hook(step):
                count[0] += 1
                if count[0] == k:
                    raise salvage.Cut()
        elif cond == "race":          # `save` runs while boot salvages (a --follow, a core)
            count = [0]
            name = rng.choice(NAMES)
            data = self.payload(name)

            def hook(step):
                count[0] += 1
                if count[0] == k:
                    a = keeparea.open_area(w.root + "/keep.img", firmware="")
                    try:
                        a.put(name, data, wall_time=1700000001, uptime_ms=2,
                              boot_id=core.BOOT_IDS[w.boots])
                        raced.append((("phram/" + name, data), step))
                    except NoSpaceError:
                        pass
                    finally:
                        a.close()
        elif cond == "fault":
            real_wd = storage.write_durable
            count = [0]

            def failing(dirpath, name, data, verify=True):
                count[0] += 1
                if count[0] == k % 6 + 1:
                    raise DeviceError("Failed to write '%s/%s': Input/output error"
                                      % (dirpath, name))
                return real_wd(dirpath, name, data, verify)
            storage.write_durable = failing
            undo.append(lambda: setattr(storage, "write_durable", real_wd))
        cut = False
        code = line = None
        raced = []
        try:
            code, line, r = salvage.run_boot(w.board, w.root, 30, keep=w.root + "/keep.img",
                                             hook=hook, now=1700000000 + 100 * w.boots)
        except salvage.Cut:
            cut = True
        finally:
            for u in reversed(undo):
                u()
        self.trace.append("boot(%s%s)=%s" % (cond, "@%d" % k if cond in ("cut", "fault") else "",
                                            "cut" if cut else code))
        self.check_boot(cond, cut, code, line, ram0, before, raced)

    def check_boot(self, cond, cut, code, line, ram0, before, raced):
        w = self.w
        for key, step in raced:     # saved during the boot: kept like one saved before it
            ram0 = dict(ram0)
            if step == "modules":   # before boot read the keep area: it replaced the old version
                for old in list(ram0):
                    if old[0] == key[0] and old != key:
                        del ram0[old]
                        w.owed.pop(old, None)
            ram0[key] = True
            w.owed[key] = True
        ram = w.ram()
        after = w.bundles()
        w.seen_ram, w.seen_bundles = ram, after
        flash = {}
        for ids in after.values():
            flash.update(ids)
        # a bundle is removed only by retention, only for a newer one, never for nothing
        removed = [s for s in before if s not in after]
        newest = max(list(after) or [0])
        for s in removed:
            if s > newest and not (cut or cond == "fault"):
                self.fail("bundle %d removed with no newer bundle on flash (%s)" % (s, line))
            # a run stopped after making room for its bundle: only older ones went
            if [b for b in before if b < s and b not in removed]:
                self.fail("bundle %d removed before an older one (%s)" % (s, line))
        if removed and code == 5 and not cut:
            self.fail("bundles %r removed for a bundle that did not fit (%s)" % (removed, line))
        if removed and cond in ("ro", "absent"):
            self.fail("bundles %r removed from a %s flash" % (removed, cond))
        # no loss
        for key in list(w.owed):
            if key in ram or key in flash:
                continue
            if key in ram0:
                self.fail("%s (%d bytes) was in RAM and is now nowhere (%s)"
                          % (key[0], len(key[1]), line))
            held = [s for s in before if key in before[s]]
            if not held or [s for s in held if s in after]:
                self.fail("%s left flash without retention (%s)" % (key[0], line))
            del w.owed[key]            # its bundles went by retention: old evidence, let go
        # nothing twice
        completed = not cut and code is not None and cond != "fault"
        committed = [s for s in after if s not in before]
        if completed and committed:
            w.interrupted = False
        if not completed:
            w.interrupted = True
        if not w.interrupted:
            seen = {}
            for s in sorted(after):
                for key in after[s]:
                    if key in seen:
                        self.fail("%s is in bundles %d and %d (%s)" % (key[0], seen[key], s, line))
                    seen[key] = s
        # the flash fine: everything salvaged and cleared
        if cond in ("ok", "race") and not cut and not raced:
            if code != 0 or ram:
                self.fail("flash ok but exit %s, %d record(s) left in RAM (%s)"
                          % (code, len(ram), line))
            if committed and len(after) > max(1, w.max_count):
                self.fail("%d bundles kept, retention.bundles = %d" % (len(after), w.max_count))

    def run(self, steps):
        for _ in range(steps):
            x = self.rng.getrandbits(8) % 10
            if x < 3:
                self.step_save()
            elif x < 5:
                self.step_panic()
            else:
                self.step_boot()


def run_model(count, first_seed=1):
    """Run `count` sequences; returns the number of boots run."""
    real_sync = (storage.fsync_file, storage.fsync_dir)
    storage.fsync_file = lambda f: None
    storage.fsync_dir = lambda p: None
    base = _base()
    world = World(base)
    boots = 0
    try:
        for seed in range(first_seed, first_seed + count):
            seq = Sequence(world, seed)
            world.reset(seq.rng)
            seq.run(4 + seq.rng.getrandbits(8) % 9)
            boots += world.boots
    finally:
        storage.fsync_file, storage.fsync_dir = real_sync
        storage.remove_tree(base)
    return boots


def test_salvage_model():
    n = _env_int("CRASHKEEP_MODEL_SEQUENCES", MP_SEQUENCES if MICROPYTHON else DEFAULT_SEQUENCES)
    boots = run_model(n, _env_int("CRASHKEEP_MODEL_SEED", 1))
    assert boots >= n // 2, boots          # the sequences really boot
    print("model: %d sequences, %d boots" % (n, boots))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SEQUENCES
    print("boots", run_model(n, int(sys.argv[2]) if len(sys.argv) > 2 else 1))
