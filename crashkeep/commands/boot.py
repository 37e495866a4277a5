"""`crashkeep boot`: salvage the previous boot's crash evidence to flash, from the initramfs.

Order (each step is safe to cut by a power loss; the next run completes it):

0. while ramoops is not loaded yet, read its region through /dev/mem: loading
   ramoops hands the previous boot's console, pmsg and ftrace zones to the new
   boot (they live on only in the kernel's pstore until the next reboot);
1. load reed_solomon, ramoops, mtd, phram with the board's parameters (kmod);
2. read the records: /sys/fs/pstore (mounted if needed), or, when ramoops
   cannot load, the raw region through /dev/mem (crashkeep.formats.ramoops reader);
   and every record in the phram keep area;
3. reason and counters from the keep area's boot state (bootstate), written
   back at once so a cut later does not count this boot twice; the zones of
   step 0 go into the keep area as `<pstore name>@boot<N>` records (FLAG_ZONE,
   N: the boot that wrote them), so a failed salvage still leaves them in RAM
   for the next boot, and stand in for their /sys/fs/pstore copies;
4. mount the flash target; drop records whose digest is already in the ledger
   (an earlier run saved them and was cut before clearing);
5. write the rest as one bundle: files in a hidden staging directory, each
   durable (temp, fsync, rename, fsync dir, read back), meta.json last, then
   the directory renamed to its final name — the commit point;
6. add the digests to the ledger (durable), then unlink the pstore records
   and remove the keep-area records; unmount what was mounted.

The ledger is `.ledger` plus the meta.json of any bundle the ledger does not
name yet (a cut between steps 5 and 6), so no record is written twice and
none is cleared before it is on flash. Flash absent, read-only, full or
failing: everything stays in RAM, one line says so, exit non-zero.

Bundle directory: `<seq>-<YYYYmmddTHHMMSSZ>-<reason>/` holding the pstore
records under their pstore names, kept zones as `console-ramoops-0@boot<N>`
beside them, the other keep-area records under `phram/<name>`
(gzip, `.gz`, where the runtime can compress) and `meta.json`.
"""
import sys
import time

from crashkeep.ops import bootstate
from crashkeep.system import storage
from crashkeep.compat import path_join, monotonic, crc32, strerror
from crashkeep.compat import sysos as os, getenv, exists, is_dir, kmsg
from crashkeep.commands.spec import BOARD, DEVICE_OR_KEEP, ROOT, Command, Param
from crashkeep.errors import CrashkeepError, DeviceError, NoSpaceError
from crashkeep.ops.bundles import (LEDGER, STAGING, DOOMED, META, bundle_name, list_bundles,
                                   dumps, Ledger, retention, remove_bundle)
from crashkeep.formats.phramrec import FLAG_ZONE

DEFAULT_TIMEOUT = 8.0
TIMEOUT_MAX = 3600.0        # a boot that waits an hour for its salvage is hung
EXPORT_MARGIN = 1.0          # of boot's time, kept for unmounting after export
PHRAM_DIR = "phram"
ZONE_KINDS = ("console", "pmsg", "ftrace")   # zones ramoops hands to the next boot on load


class Timeout(Exception):
    """The --timeout deadline. Not a CrashkeepError: steps that tolerate one
    (a note, then the next source) must not swallow the deadline with it."""
    exit_code = 6


class Cut(BaseException):
    """Raised by a test hook to stop a run dead at a step, like a power cut."""


class Item:
    """One record to salvage: where it came from, its bytes and its digest."""

    def __init__(self, source, name, data, handle=None, time_=0, reason=None, firmware="",
                 seq=None):
        self.source = source      # "pstore", "raw" or "phram"
        self.name = name          # file name inside the bundle
        self.data = data
        self.handle = handle      # pstore record / keep-area record name
        self.seq = seq            # keep-area version read (clear removes up to it)
        self.blob = None          # (file name, stored bytes), once packed
        self.time = time_ or 0
        self.reason = reason      # "Panic", "Oops", ... for dmesg records
        self.firmware = firmware
        self.digest = "%s:%s:%d:%08x" % (source[0], name, len(data), crc32(data) & 0xFFFFFFFF)


# ---------------------------------------------------------------- the run

class Steps:
    """Progress marks: deadline checks, optional console markers for power-cut tests
    (CRASHKEEP_STEPS=1 prints `crashkeep-step: NAME`; CRASHKEEP_STEP_PAUSE=S waits
    after each so a harness can cut power right there), and a test hook."""

    def __init__(self, deadline, hook=None):
        self.deadline = deadline
        self.hook = hook
        self.show = getenv("CRASHKEEP_STEPS") == "1"
        p = getenv("CRASHKEEP_STEP_PAUSE")
        self.pause = float(p) if p else 0.0
        self.done = []

    def mark(self, name):
        self.done.append(name)
        if self.show:
            sys.stdout.write("crashkeep-step: %s\n" % name)
            try:
                sys.stdout.flush()
            except AttributeError:
                pass
            if self.pause:
                time.sleep(self.pause)
        if self.hook is not None:
            self.hook(name)
        if monotonic() > self.deadline:
            raise Timeout("timed out after step '%s'" % name)


class Run:
    """One `crashkeep boot`: collects what happened for the summary line."""

    def __init__(self, board, root="/", keep=None, flash_dir=None, steps=None, now=None):
        self.board = board
        self.root = root
        self.keep_override = keep
        self.flash_dir = flash_dir
        self.steps = steps or Steps(monotonic() + 1e9)
        self.now = time.time() if now is None else now
        self.notes = []           # short phrases for the summary line
        self.items = []
        self.area = None
        self.pstore_root = path_join(root, "sys/fs/pstore")
        self.pstore_mounted = False
        self.raw = False
        self.bundle = None
        self.saved = 0
        self.cleared = 0
        self.prev = None
        self.reason = None
        self.state = None
        self.selftest = None
        self.region = None        # ramoops records read before ramoops loaded, or None

    # -- 0. zones before ramoops takes them
    def read_zones_first(self):
        """Read the region while the previous boot's zones are still in it: once
        ramoops loads, console and pmsg live only in this boot's kernel memory.
        A board whose /dev/mem refuses the region keeps today's behaviour (the
        pstore copies go to flash, lost if that fails): a note says so.
        HOOK(e2e): a kernel with PSTORE_CONSOLE boots, a flash that is full,
        a reboot: the next bundle holds console-ramoops-0@boot<N>."""
        if not self.board.has_ramoops:
            return
        from crashkeep.system import kmod
        if kmod.state("ramoops", self.root) is not None:
            return      # loaded or built in: the zones hold this boot's output already
        recs = self.region_records(ZONE_KINDS)
        if recs is None:
            self.notes[-1] = "console/pmsg not kept: " + self.notes[-1]
            return
        self.region = recs

    def region_records(self, kinds=None):
        """The region's records through /dev/mem (read-only), or None with a note.
        kinds: read only the zones of these kinds (the dmesg zones stay in RAM
        anyway, and skipping them skips most of the reading and ECC work)."""
        from crashkeep.formats import ramoops
        b = self.board
        dev = path_join(self.root, "dev/mem")
        base = b.get("ramoops.mem_address")
        from crashkeep.system import kmod
        try:
            # read(), or a mapping where the kernel refuses read() (armhf, arm64 no-map)
            if kinds is None:
                data = kmod.read_phys(dev, base, b.get("ramoops.mem_size"))
            else:
                data = bytearray(b.get("ramoops.mem_size"))
                for z in b.zones():
                    if z.kind in kinds:
                        data[z.offset:z.offset + z.size] = kmod.read_phys(dev, base + z.offset,
                                                                          z.size)
        except OSError as e:
            self.notes.append("Failed to read '%s': %s" % (dev, strerror(e)))
            return None
        except (OverflowError, ValueError):
            # an address past what lseek takes (>= 2^63): a note, the phram records go on
            self.notes.append("Failed to read '%s': address 0x%x is past what lseek takes"
                              % (dev, base))
            return None
        try:
            return ramoops.read_region(data, b.ramoops_params())
        except CrashkeepError as e:
            self.notes.append("Failed to parse the ramoops region: %s" % e)
            return None

    # -- 1. modules
    def load_modules(self):
        from crashkeep.system import kmod
        res = kmod.load_for_board(self.board, self.root)
        for w in res.warnings:
            self.notes.append("warning: " + w)
        for name in ("ramoops", "phram"):
            if name in res.errors:
                self.notes.append(res.errors[name])
        self.modules = res
        self.steps.mark("modules")

    # -- 2. records
    def read_pstore(self):
        if not self.board.has_ramoops:
            return
        from crashkeep.system import pstore
        if self.modules.ok("ramoops"):
            if self.root in ("", "/"):
                try:
                    self.pstore_mounted = pstore.ensure_mounted(self.pstore_root)
                except (OSError, CrashkeepError) as e:
                    self.notes.append("Failed to mount pstore at '%s': %s"
                                      % (self.pstore_root, _msg(e)))
                    return
            try:
                recs = pstore.list_records(self.pstore_root)
            except CrashkeepError as e:     # the keep-area records still go to flash
                self.notes.append(_msg(e))
                return
            for rec in recs:
                try:
                    data = pstore.read(rec)
                except (OSError, CrashkeepError) as e:
                    self.notes.append("Failed to read '%s': %s, ignoring" % (rec.path, _msg(e)))
                    continue
                reason = bootstate.reason_from_record(data) if rec.name.startswith("dmesg") else None
                self.items.append(Item("pstore", rec.name, data, rec, int(rec.mtime or 0), reason))
        else:
            self.read_raw()

    def read_raw(self):
        """ramoops could not load: parse the region through /dev/mem, read-only.
        The records stay in RAM (the ledger keeps them from being saved twice)."""
        self.region = None        # nothing took the zones: no copy to keep
        recs = self.region_records()
        if recs is None:
            return
        self.raw = True
        for r in recs:
            self.items.append(Item("raw", r.name, bytes(r.data), None, r.time or 0, r.reason))
        self.notes.append("read the raw region (records stay in RAM)")

    def read_keep(self):
        from crashkeep.system import locate
        if not self.board.has_phram and not locate.named_device(self.keep_override):
            return
        from crashkeep.system import keeparea
        croot = "" if self.root in ("", "/") else self.root
        try:
            from crashkeep.system import locate
            dev = locate.device(self.board, self.keep_override)
            self.area = keeparea.open_area(dev, root=croot if not self.keep_override else "",
                                           board=self.board)
        except (OSError, CrashkeepError) as e:
            self.notes.append("keep area: %s" % _msg(e))
            return
        # a keep area that cannot be read is one note: the pstore records still go to flash
        try:
            self.prev = self.area.boot_state()
        except (OSError, CrashkeepError) as e:
            self.notes.append("keep area: %s" % _msg(e))
            self.close_area()       # unread boot state: do not write one over it
            return
        try:
            for info in self.area.list():
                got = self.area.get(info.name)
                if got is None:
                    continue
                info, payload = got
                if info.bad_name is not None:
                    self.notes.append("keep area: " + info.bad_name_note())
                name = PHRAM_DIR + "/" + info.name     # a safe name: phramrec checks it
                if info.flags & FLAG_ZONE:
                    name = info.name                    # beside the pstore records
                self.items.append(Item("phram", name, bytes(payload), info.name,
                                       int(info.wall_time or 0), None, info.firmware or "",
                                       info.seq))
        except (OSError, CrashkeepError) as e:
            self.notes.append("keep area: %s" % _msg(e))

    # -- 3. boot state
    def update_state(self):
        boot_id = bootstate.read_boot_id(self.root)
        new = [i.reason for i in self.items
               if i.reason and bootstate.is_new(i.time, self.prev)]
        self.reason = bootstate.classify(self.prev, new)
        self.warm = self.prev is not None
        same_boot = self.prev is not None and boot_id and self.prev.get("last_boot_id") == boot_id
        if same_boot:
            self.state = self.prev
            self.notes.append("already ran this boot")
        else:
            self.state = bootstate.next_state(self.prev, self.reason, boot_id, self.now)
        self.selftest = bootstate.selftest_result(self.prev, False)
        if self.area is not None and not same_boot:
            try:
                self.area.set_boot_state(self.state)
            except (OSError, CrashkeepError) as e:
                self.notes.append("Failed to write the boot state: %s" % _msg(e))
        self.steps.mark("state")

    def keep_zones(self):
        """Put the zones read in step 0 into the keep area (never evicting a record),
        in place of their /sys/fs/pstore copies."""
        recs, self.region = self.region, None
        if not recs:
            return
        zones = [r for r in recs if r.kind in ZONE_KINDS and len(r.data)]
        if not zones:
            return
        if self.area is None:
            self.notes.append("console/pmsg not kept in RAM: no keep area")
            return
        n = (self.prev or {}).get("boot_count", 0)
        taken = [i.handle for i in self.items if i.source == "phram"]
        for rec in zones:
            name = base = "%s@boot%d" % (rec.name, n)
            k = 0
            while name in taken:     # the boot count did not move: never replace a kept copy
                k += 1
                name = "%s.%d" % (base, k)
            taken.append(name)
            data = bytes(rec.data)
            try:
                seq = self.area.put(name, data, source="ramoops:" + rec.kind, flags=FLAG_ZONE,
                                    wall_time=int(self.now))
            except (OSError, CrashkeepError) as e:
                self.notes.append("Failed to keep %s in RAM: %s" % (rec.name, _msg(e)))
                continue
            self.items = [i for i in self.items if not (i.source == "pstore" and
                                                        i.name == rec.name and i.data == data)]
            self.items.append(Item("phram", name, data, name, int(self.now), seq=seq))
        self.steps.mark("zones")

    # -- 4..6 salvage
    def salvage(self):
        # a cold boot, or a selftest canary, may have a note on flash to settle
        settle = not self.warm or bool((self.prev or {}).get("canary"))
        need_flash = bool(self.items) or (settle and self.board_has_flash())
        if not need_flash:
            return
        try:
            target = self.open_target()
        except DeviceError as e:
            if self.items:
                raise
            return       # only the selftest note was wanted
        try:
            self.steps.mark("mounted")
            self.check_selftest_note(target.path)
            if self.items:
                self.save_items(target.path)
            self.export(target.path)
        finally:
            try:
                target.close()
            except DeviceError as e:
                self.notes.append(str(e))

    def export(self, path):
        """Hand bundles to the board's transports in the time boot has left (a second
        kept for unmounting); whatever fails or does not fit waits for the next run."""
        from crashkeep.compat import MICROPYTHON
        if MICROPYTHON or not self.board.get("export.syslog") and not self.board.get(
                "export.command"):
            return
        from crashkeep.ops import export
        deadline = self.steps.deadline - EXPORT_MARGIN
        if deadline - monotonic() < 1:
            self.notes.append("export: no time left, deferred")
            return
        try:
            res = export.run(self.board, export.bundles_in(path), deadline, root=self.root)
        except (CrashkeepError, OSError) as e:
            # the bundle is committed and its records cleared: export must not undo that
            self.notes.append("export: %s, deferred" % _msg(e))
            return
        if res.sent:
            self.notes.append("exported %d" % len(res.sent))
        if res.failed or res.left:
            self.notes.append("export: %d deferred (%s)" % (
                len(res.failed) + res.left, res.failed[0][2] if res.failed else "time"))
        self.steps.mark("exported")

    def board_has_flash(self):
        return bool(self.flash_dir or self.board.get("flash.device")
                    or self.board.has("flash.mountpoint"))

    def open_target(self):
        if self.flash_dir:
            if not is_dir(self.flash_dir):
                raise DeviceError("Failed to find flash directory '%s'" % self.flash_dir)
            return storage.Target(self.flash_dir)
        return storage.open_target(self.board, self.root)

    def check_selftest_note(self, path):
        note = path + "/" + bootstate.SELFTEST_FILE
        if exists(note):
            self.selftest = bootstate.selftest_result(self.prev, True)
            try:
                os.remove(note)
            except OSError:
                pass

    def save_items(self, path):
        for n in os.listdir(path):
            if n.startswith(STAGING) or n.startswith(DOOMED) or n.startswith(storage.TMP_PREFIX):
                storage.remove_tree(path + "/" + n)     # left by a cut run
                try:
                    os.remove(path + "/" + n)
                except OSError:
                    pass
        bundles = list_bundles(path)
        ledger = Ledger(path)
        todo, doomed, needed = self.plan(path, bundles, ledger.known(bundles))
        gone = self.make_room(path, doomed, needed)
        if todo:
            self.write_bundle(path, bundles, ledger, todo)
            ledger.add([i.digest for i in todo], self.seq)
            ledger.save()
            self.steps.mark("ledger")
        for n in doomed:            # the rest of retention, now that the new bundle is in
            if n not in gone:
                remove_bundle(path, n)
                gone.append(n)
                self.steps.mark("pruned")
        if gone:
            self.notes.append("retention removed %d old bundle(s)" % len(gone))
        self.clear_sources(ledger.known(list_bundles(path)))

    def plan(self, path, bundles, known):
        """(records to write, bundles retention removes, bytes the new bundle needs).

        A record already on flash is written again when retention is to remove
        the bundle holding it: it may be cleared only while a copy exists."""
        sizes = {}
        for _, n in bundles:
            sizes[n] = storage.tree_bytes(path + "/" + n)
        free = storage.free_bytes(path)
        b = self.board
        todo = [i for i in self.items if i.digest not in known]
        doomed = []
        while True:
            needed = self.bundle_bytes(path, todo) if todo else 0
            d = retention(bundles, sizes, b.get("retention.bundles"),
                          b.get("retention.bytes"), needed, free)
            if len(d) > len(doomed):    # both oldest first; never fewer than a record moved for
                doomed = d
            seqs = [s for s, n in bundles if n in doomed]
            more = [i for i in self.items if i not in todo and known.get(i.digest) in seqs]
            if not more:
                break
            todo += more
        if needed:
            room = free
            for n in doomed:
                room += sizes[n]
            # Even without every old bundle it would not fit: remove none. Nor when
            # nothing is free: f_bavail stops at 0 when the filesystem's reserve is
            # in use, so how much a removal gains is then unknown.
            if room < needed or free <= 0:
                raise NoSpaceError(
                    "Failed to write a bundle to '%s': %d bytes free, %d needed"
                    % (path, free, needed))
        return todo, doomed, needed

    def bundle_bytes(self, path, todo):
        """Bytes the bundle of `todo` takes, with a block a file and the ledger rewrite."""
        n = 0
        for it in todo:
            if it.blob is None:
                stored, fname = it.data, it.name
                z = storage.compress(it.data) if it.data else None
                if z is not None and len(z) < len(it.data):
                    stored, fname = z, it.name + ".gz"
                it.blob = (fname, stored)
            n += len(it.blob[1]) + 4096
        try:
            n += os.stat(path + "/" + LEDGER)[6] + 100 * len(todo)
        except OSError:
            pass
        return n + 2 * 4096

    def make_room(self, path, doomed, needed):
        """Remove the oldest doomed bundles before the write only while the new
        bundle does not fit: plan() made sure it will once they are gone.
        (Space freed is estimated from file sizes; a compressing filesystem may
        free less, and then the write fails with some old bundles removed.)"""
        gone = []
        if not needed:
            return gone
        for n in doomed:
            if storage.free_bytes(path) >= needed:
                break
            remove_bundle(path, n)
            gone.append(n)
            self.steps.mark("pruned")
        free = storage.free_bytes(path)
        if free < needed:
            raise NoSpaceError("Failed to write a bundle to '%s': %d bytes free, %d needed"
                                       % (path, free, needed))
        return gone

    def write_bundle(self, path, bundles, ledger, todo):
        files = []
        blobs = []
        for it in todo:
            fname, stored = it.blob
            blobs.append((fname, stored))
            f = {"name": it.name, "file": fname, "source": it.source, "size": len(it.data),
                 "crc32": crc32(it.data) & 0xFFFFFFFF, "stored_size": len(stored),
                 "stored_crc32": crc32(stored) & 0xFFFFFFFF, "digest": it.digest,
                 "time": it.time}
            if it.reason:
                f["reason"] = it.reason
            files.append(f)
        last = bundles[-1][0] if bundles else 0
        self.seq = max(last, ledger.max_seq()) + 1
        reasons = [i.reason for i in todo if i.reason]
        breason = "panic" if "Panic" in reasons else "oops" if "Oops" in reasons else self.reason
        name = bundle_name(self.seq, self.now, breason)
        stage = path + "/" + STAGING + name
        storage.makedirs(stage)
        for fname, stored in blobs:
            d = stage
            if "/" in fname:
                d = stage + "/" + fname.rsplit("/", 1)[0]
                storage.makedirs(d)
            storage.write_durable(d, fname.rsplit("/", 1)[-1], stored)
            self.steps.mark("file")
        meta = self.meta(name, breason, files)
        storage.write_durable(stage, META, dumps(meta).encode())
        storage.fsync_dir(stage)
        if is_dir(stage + "/" + PHRAM_DIR):
            storage.fsync_dir(stage + "/" + PHRAM_DIR)
        self.steps.mark("staged")
        try:
            os.rename(stage, path + "/" + name)
            storage.fsync_dir(path)
        except OSError as e:
            raise DeviceError("Failed to commit bundle '%s': %s" % (path + "/" + name, strerror(e)))
        for fname, stored in blobs:      # read back once more through the final path
            storage.check_file(path + "/" + name + "/" + fname, stored)
        self.bundle = name
        self.saved = len(todo)
        self.steps.mark("committed")

    def meta(self, name, breason, files):
        from crashkeep.system import kmod
        fw = ""
        for it in self.items:
            if it.firmware:
                fw = it.firmware
        if not fw:
            try:
                from crashkeep.system.keeparea import firmware_version
                fw = firmware_version(self.board, "" if self.root in ("", "/") else self.root)
            except ImportError:
                fw = self.board.get("board.firmware") or ""
        st = self.state or {}
        return {"format": 1, "bundle": name, "seq": self.seq, "board": self.board.name,
                "kernel": kmod.release(self.root), "firmware": fw,
                "boot_id": (self.prev or {}).get("last_boot_id", ""),
                "salvaged_by_boot_id": st.get("last_boot_id", ""),
                "reason": breason, "boot_reason": self.reason, "warm": self.warm,
                "counters": {"boot_count": st.get("boot_count", 0),
                             "panic_count": st.get("panic_count", 0)},
                "salvaged_at": int(self.now), "files": files}

    def clear_sources(self, held):
        """Clear each record whose digest is in `held` (digests of the bundles on
        flash now): a record is cleared only while a committed copy exists."""
        n = 0
        for it in self.items:
            if it.source == "raw":
                continue           # raw region: read-only; the ledger knows it
            if it.digest not in held:
                self.notes.append("'%s' is in no bundle on flash, kept in RAM" % it.name)
                continue
            try:
                if it.source == "pstore":
                    from crashkeep.system import pstore
                    pstore.unlink(it.handle)
                else:
                    self.area.remove(it.handle, it.seq)
            except (OSError, CrashkeepError) as e:
                self.notes.append("Failed to clear '%s': %s, ignoring" % (it.name, _msg(e)))
                continue
            n += 1
            self.steps.mark("cleared")
        self.cleared = n

    def close_area(self):
        if self.area is not None:
            try:
                self.area.close()
            except (OSError, CrashkeepError):
                pass
            self.area = None

    def close(self):
        self.close_area()
        if self.pstore_mounted:
            from crashkeep.system import syscall
            try:
                syscall.umount(self.pstore_root)
            except OSError as e:
                self.notes.append("Failed to unmount '%s': %s" % (self.pstore_root, strerror(e)))
            self.pstore_mounted = False

    def summary(self, error=None):
        st = self.state or {}
        head = "boot #%d after %s (%s)" % (st.get("boot_count", 0), self.reason or "unknown",
                                          "warm" if self.prev is not None else "cold")
        if st.get("panic_count"):
            head += ", %d panic(s) in a row" % st["panic_count"]
        if error is not None:
            body = "%s; %d record(s) kept in RAM" % (error, len(self.items))
        elif self.bundle:
            body = "salvaged %d record(s) to %s" % (self.saved, self.bundle)
        elif self.items:
            body = "%d record(s) were already on flash" % len(self.items)
        else:
            body = "nothing to salvage"
        if self.selftest:
            body += "; selftest: RAM %s across reset" % self.selftest
        extra = [n for n in self.notes if n]
        if extra:
            body += " [" + "; ".join(extra) + "]"
        return "crashkeep: %s: %s" % (head, body)


def _msg(e):
    if isinstance(e, CrashkeepError):
        return str(e)
    return strerror(e)


def log(line, root="/"):
    """The summary line to the kernel log, then the console (stdout).

    Kmsg first: an initramfs without /dev/console has no stdout at all, and
    the kernel log is where the line is read after the boot.
    """
    kmsg(line, path_join(root, "dev/kmsg"), 5)
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass    # no console: the salvage is done and logged, that is not its failure


def _alarm(seconds, handler):
    try:
        try:
            import _signal as signal    # the C module: signal.py builds enums (ms at startup)
        except ImportError:
            import signal
        signal.signal(signal.SIGALRM, handler)
        signal.alarm(max(1, int(seconds + 0.999)))
        return signal
    except (ImportError, AttributeError, ValueError):
        return None


def _on_alarm(signum, frame):
    raise Timeout("timed out")


def run_boot(board, root="/", timeout=DEFAULT_TIMEOUT, keep=None, flash_dir=None, hook=None,
             now=None):
    """The whole boot job; returns (exit code, summary line). Never raises CrashkeepError."""
    steps = Steps(monotonic() + timeout, hook)
    r = Run(board, root, keep, flash_dir, steps, now)
    code = 0
    err = None
    try:
        r.read_zones_first()
        r.load_modules()
        r.read_pstore()
        r.read_keep()
        steps.mark("records")
        r.update_state()
        r.keep_zones()
        r.salvage()
    except Timeout as e:
        err, code = str(e), e.exit_code
    except CrashkeepError as e:
        err, code = str(e), e.exit_code
    except OSError as e:
        err, code = "Failed: %s" % strerror(e), 4
    except Exception as e:      # init must go on: one line, never a traceback
        if getenv("CRASHKEEP_DEBUG"):
            raise
        err, code = "internal error: %s: %s" % (type(e).__name__, e), 70
    finally:
        r.close()
    return code, r.summary(err), r


def boot(opts):
    sig = None
    root = opts.root or "/"
    try:
        from crashkeep.system import locate
        board = locate.find_board(opts.board)
    except CrashkeepError as e:
        log("crashkeep: boot: %s; nothing salvaged, records stay in RAM" % e, root)
        return e.exit_code
    timeout = opts.timeout if opts.timeout else DEFAULT_TIMEOUT
    sig = _alarm(timeout, _on_alarm)
    try:
        code, line, _ = run_boot(board, root, timeout, opts.device, opts.dir)
    except Timeout as e:        # the alarm hit between the guarded steps
        code, line = e.exit_code, "crashkeep: boot: %s; records stay in RAM" % e
    finally:
        if sig is not None:
            sig.alarm(0)
    log(line, root)
    return code


DIR = Param("dir", help="Bundle directory to use instead of the board's flash.")

COMMANDS = [
    Command("boot", "Salvage the previous boot's crash records to flash (run from the initramfs).",
            [BOARD, Param("timeout", kind="float", default=DEFAULT_TIMEOUT, high=TIMEOUT_MAX,
                          help="Give up (records stay in RAM) after this many seconds."),
             ROOT, DEVICE_OR_KEEP, DIR], boot, fast=True),
]
