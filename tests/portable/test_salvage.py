"""`crashkeep boot` on a fake root: the salvage protocol, its failure modes and
the power-cut matrix (a run stopped dead after every step, then run again:
nothing lost, nothing written twice). Runs under pytest and MicroPython.

The fake root has /sys/module/*/initstate (modules count as loaded),
/sys/fs/pstore files, /proc/mtd, a keep-area image file and a flash directory.
"""
import os

from _util import tmpdir, write, read, raises
from crashkeep.formats import boardconf
from crashkeep.commands import boot as salvage
from crashkeep.ops import bundles
from crashkeep.system import storage, keeparea
from crashkeep.ops import bootstate

BOOT_IDS = ["11111111-2222-3333-4444-%012d" % i for i in range(1, 200)]

BOARD = """
board.name = fake
board.kernel = 6.1
ramoops.mem_address = 0x1f000000
ramoops.mem_size = 512K
ramoops.record_size = 64K
ramoops.console_size = 64K
ramoops.ftrace_size = 0
ramoops.pmsg_size = 64K
phram.name = crashkeep
phram.start = 0x1f080000
phram.len = 512K
flash.mountpoint = /flash
flash.dir = crashkeep
retention.bundles = %d
retention.bytes = %s
"""

PANIC = b"Panic#2 Part1\n<0>[   12.5] Kernel panic - not syncing: sysrq triggered crash\n" + b"x" * 3000
OOPS = b"Oops#1 Part1\n<4>[   11.0] Oops: 0002 [#1] PREEMPT SMP\n" + b"y" * 2000


def mkdirs(p):
    storage.makedirs(p)
    return p


def make_root(pstore=(), keep=(), bundles=20, max_bytes="4M", flash=True, boot=0):
    root = tmpdir()
    for m in ("reed_solomon", "ramoops", "mtd", "phram"):
        write(mkdirs(root + "/sys/module/" + m) + "/initstate", "live\n")
    mkdirs(root + "/sys/fs/pstore")
    for name, data in pstore:
        write(root + "/sys/fs/pstore/" + name, data)
    write(mkdirs(root + "/proc/sys/kernel/random") + "/boot_id", BOOT_IDS[boot] + "\n")
    write(root + "/proc/sys/kernel/osrelease", "6.1.0-fake\n")
    write(root + "/proc/mtd", 'dev:    size   erasesize  name\nmtd0: 00080000 00001000 "crashkeep"\n')
    mkdirs(root + "/dev")
    write(root + "/dev/kmsg", b"")
    write(root + "/keep.img", bytes(64 * 1024))
    if flash:
        mkdirs(root + "/flash")
    write(root + "/board.conf", BOARD % (bundles, max_bytes))
    if keep:
        a = keeparea.open_area(root + "/keep.img")
        for name, data in keep:
            a.put(name, data, wall_time=1700000000, uptime_ms=1000, boot_id=BOOT_IDS[0])
        a.close()
    return root


def set_boot(root, n):
    write(root + "/proc/sys/kernel/random/boot_id", BOOT_IDS[n] + "\n")


def run(root, hook=None, now=1800000000, timeout=30):
    board = boardconf.load(root + "/board.conf")
    code, line, r = salvage.run_boot(board, root, timeout, keep=root + "/keep.img", hook=hook,
                                     now=now)
    return code, line, r


def flash_dir(root):
    return root + "/flash/crashkeep"


def saved_files(root):
    """[(record name, bytes)] over every bundle, decompressed."""
    out = []
    d = flash_dir(root)
    for seq, name in bundles.list_bundles(d):
        meta = bundles.read_meta(d + "/" + name)
        for f in meta["files"]:
            data = read(d + "/" + name + "/" + f["file"])
            if f["file"] != f["name"]:
                data = storage.decompress(data)
            assert len(data) == f["size"]
            out.append((f["name"], data))
    return sorted(out)


def keep_names(root):
    a = keeparea.open_area(root + "/keep.img")
    try:
        return [i.name for i in a.list()]
    finally:
        a.close()


def boot_state(root):
    a = keeparea.open_area(root + "/keep.img")
    try:
        return a.boot_state()
    finally:
        a.close()


RECORDS = [("dmesg-ramoops-0", OOPS), ("dmesg-ramoops-1", PANIC)]
KEEP = [("messages", b"log line\n" * 300), ("core-app-42", b"backtrace\n" * 20)]
EXPECTED = sorted(RECORDS + [("phram/" + n, d) for n, d in KEEP])


def test_panic_salvaged_then_cleared():
    root = make_root(RECORDS, KEEP)
    code, line, r = run(root)
    assert code == 0, line
    assert "salvaged 4 record(s)" in line and "after panic" in line, line
    assert saved_files(root) == EXPECTED
    assert os.listdir(root + "/sys/fs/pstore") == []
    assert keep_names(root) == []
    names = [n for _, n in bundles.list_bundles(flash_dir(root))]
    assert len(names) == 1 and names[0].startswith("0001-") and names[0].endswith("-panic")
    meta = bundles.read_meta(flash_dir(root) + "/" + names[0])
    assert meta["board"] == "fake" and meta["kernel"] == "6.1.0-fake"
    assert meta["counters"]["panic_count"] == 1 and meta["counters"]["boot_count"] == 1
    assert meta["salvaged_by_boot_id"] == BOOT_IDS[0]
    for f in meta["files"]:
        from binascii import crc32
        assert f["crc32"] == crc32(dict(EXPECTED)[f["name"]]) & 0xFFFFFFFF
    st = boot_state(root)
    assert st["boot_count"] == 1 and st["panic_count"] == 1 and st["last_boot_id"] == BOOT_IDS[0]
    # the summary line went to /dev/kmsg too? run_boot leaves logging to boot(); check one line
    assert "\n" not in line


def test_clean_boot_nothing_salvaged_and_no_flash_touched():
    root = make_root(flash=False)
    code, line, r = run(root)
    assert code == 0, line
    assert "nothing to salvage" in line and "(cold)" in line and "power-loss" in line, line
    set_boot(root, 1)
    a = keeparea.open_area(root + "/keep.img")
    st = a.boot_state()
    st["clean_shutdown"] = True
    a.set_boot_state(st)
    a.close()
    code, line, r = run(root, now=1800000100)
    assert code == 0 and "after clean (warm)" in line, line
    set_boot(root, 2)
    code, line, r = run(root, now=1800000200)
    assert code == 0 and "after reset (warm)" in line and "boot #3" in line, line


def test_consecutive_panics_counted():
    root = make_root([("dmesg-ramoops-0", PANIC)])
    code, line, r = run(root, now=1700000000)
    assert code == 0, line
    for i in (1, 2):
        set_boot(root, i)
        write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"%d" % i)
        code, line, r = run(root, now=1700000000 + 100 * i)
        assert code == 0, line
    assert "3 panic(s) in a row" in line, line
    assert boot_state(root)["panic_count"] == 3
    assert len(bundles.list_bundles(flash_dir(root))) == 3


def test_flash_absent_keeps_everything_in_ram():
    root = make_root(RECORDS, KEEP, flash=False)
    code, line, r = run(root)
    assert code == 4, line
    assert "kept in RAM" in line and "/flash" in line, line
    assert sorted(os.listdir(root + "/sys/fs/pstore")) == ["dmesg-ramoops-0", "dmesg-ramoops-1"]
    assert sorted(keep_names(root)) == ["core-app-42", "messages"]
    # the flash comes back: the next boot saves everything once
    storage.makedirs(root + "/flash")
    set_boot(root, 1)
    code, line, r = run(root, now=1800000100)
    assert code == 0, line
    assert saved_files(root) == EXPECTED


def test_flash_full_keeps_everything_in_ram():
    root = make_root(RECORDS, KEEP)
    real = storage.free_bytes
    storage.free_bytes = lambda p: 1000
    try:
        code, line, r = run(root)
    finally:
        storage.free_bytes = real
    assert code == 5, line
    assert "bytes free" in line and "kept in RAM" in line, line
    assert len(os.listdir(root + "/sys/fs/pstore")) == 2 and len(keep_names(root)) == 2
    assert bundles.list_bundles(flash_dir(root)) == []


def test_flash_write_failure_keeps_everything_in_ram():
    root = make_root(RECORDS, KEEP)
    real = storage.fsync_file

    def broken(f):
        raise OSError(5, "Input/output error")
    storage.fsync_file = broken
    try:
        code, line, r = run(root)
    finally:
        storage.fsync_file = real
    assert code == 4 and ("Input/output error" in line or "errno 5" in line), line
    assert len(os.listdir(root + "/sys/fs/pstore")) == 2 and len(keep_names(root)) == 2
    # nothing half-written is visible; the next run cleans the staging dir and saves once
    set_boot(root, 1)
    code, line, r = run(root, now=1800000100)
    assert code == 0, line
    assert saved_files(root) == EXPECTED
    assert [n for n in os.listdir(flash_dir(root)) if n.startswith(".new-")] == []


def test_flash_read_back_mismatch_is_a_failure():
    root = make_root(RECORDS)
    real = storage.check_file

    def lying(path, data):
        raise storage.DeviceError("Failed to verify '%s': read back differs" % path)
    storage.check_file = lying
    try:
        code, line, r = run(root)
    finally:
        storage.check_file = real
    assert code == 4 and "verify" in line, line
    assert len(os.listdir(root + "/sys/fs/pstore")) == 2


def test_retention_drops_oldest_bundles():
    root = make_root(bundles=2)
    for i in range(4):
        set_boot(root, i)
        write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"%d" % i)
        code, line, r = run(root, now=1700000000 + 100 * i)
        assert code == 0, line
    seqs = [s for s, _ in bundles.list_bundles(flash_dir(root))]
    assert seqs == [3, 4], seqs


def test_retention_cut_mid_delete_leaves_no_partial_bundle():
    root = make_root(bundles=2)
    for i in range(2):
        set_boot(root, i)
        write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"%d" % i)
        code, line, r = run(root, now=1700000000 + 100 * i)
        assert code == 0, line
    real = storage.remove_tree

    def cut(path):          # the power goes right after the doomed bundle is renamed
        if "/" + bundles.DOOMED in path:
            return
        real(path)
    storage.remove_tree = cut
    try:
        set_boot(root, 2)
        write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"2")
        code, line, r = run(root, now=1700000000 + 200)
    finally:
        storage.remove_tree = real
    assert code == 0, line
    assert [s for s, _ in bundles.list_bundles(flash_dir(root))] == [2, 3]
    assert [n for n in os.listdir(flash_dir(root)) if n.startswith(bundles.DOOMED)]
    set_boot(root, 3)
    write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"3")
    code, line, r = run(root, now=1700000000 + 300)
    assert code == 0, line
    assert [s for s, _ in bundles.list_bundles(flash_dir(root))] == [3, 4]
    assert not [n for n in os.listdir(flash_dir(root)) if n.startswith(bundles.DOOMED)]


def test_retention_by_bytes():
    root = make_root(max_bytes="12K")
    for i in range(3):
        set_boot(root, i)
        write(root + "/sys/fs/pstore/dmesg-ramoops-0", os.urandom(5000) if hasattr(os, "urandom")
              else bytes([(i * 7 + j * 13) & 255 for j in range(5000)]))
        code, line, r = run(root, now=1700000000 + 100 * i)
        assert code == 0, line
    seqs = [s for s, _ in bundles.list_bundles(flash_dir(root))]
    assert seqs[-1] == 3 and len(seqs) < 3, seqs


def test_timeout_leaves_records_in_ram():
    root = make_root(RECORDS)
    code, line, r = run(root, timeout=-1)
    assert code == 6 and "timed out" in line, line
    assert len(os.listdir(root + "/sys/fs/pstore")) == 2


def test_already_saved_records_are_only_cleared():
    root = make_root(RECORDS)
    assert run(root)[0] == 0
    for name, data in RECORDS:           # the same records again (clear had been cut)
        write(root + "/sys/fs/pstore/" + name, data)
    set_boot(root, 1)
    code, line, r = run(root, now=1800000100)
    assert code == 0 and "already on flash" in line, line
    assert len(bundles.list_bundles(flash_dir(root))) == 1
    assert os.listdir(root + "/sys/fs/pstore") == []


def _matrix(pstore, keep):
    """Cut after the k-th step for k = 1, 2, ...; rerun; check; until a run is not cut."""
    expected = sorted(list(pstore) + [("phram/" + n, d) for n, d in keep])
    k = 1
    cases = 0
    while True:
        root = make_root(pstore, keep)
        count = [0]
        where = [None]

        def hook(step):
            count[0] += 1
            if count[0] == k:
                where[0] = step
                raise salvage.Cut()
        cut = False
        try:
            run(root, hook=hook)
        except salvage.Cut:
            cut = True
        if not cut:
            break
        set_boot(root, 1)
        code, line, r = run(root, now=1800000100)
        assert code == 0, "cut after %s: %s" % (where[0], line)
        got = saved_files(root)
        assert got == expected, "cut after step %d (%s): saved %r" % (k, where[0], [n for n, _ in got])
        assert os.listdir(root + "/sys/fs/pstore") == [], where[0]
        assert keep_names(root) == [], where[0]
        cases += 1
        k += 1
    return cases


def test_power_cut_matrix_zero_lost_zero_duplicated():
    cases = _matrix(RECORDS, KEEP)
    # modules, records, state, mounted, 4 files, staged, committed, ledger, 4 cleared
    assert cases >= 14, cases


def test_power_cut_after_temp_file_write():
    """A cut inside the durable write leaves a temp file and a staging dir: ignored."""
    root = make_root(RECORDS)
    d = flash_dir(root)
    storage.makedirs(d + "/.new-0001-19700101T000000Z-panic")
    write(d + "/.new-0001-19700101T000000Z-panic/.tmp-dmesg-ramoops-0", b"torn")
    write(d + "/.tmp-.ledger", b"torn")
    code, line, r = run(root)
    assert code == 0, line
    assert saved_files(root) == sorted(RECORDS)
    assert sorted(os.listdir(d))[0] == ".ledger" and len(os.listdir(d)) == 2


def test_bundle_names():
    n = bundles.bundle_name(7, 1700000000, "panic")
    assert n == "0007-20231114T221320Z-panic", n
    assert bundles.bundle_seq(n) == 7
    assert bundles.bundle_seq(".new-0007-x") is None
    assert bundles.bundle_seq("ledger") is None


def test_bad_board_config_is_one_line():
    root = make_root()
    write(root + "/board.conf", "board.name = x\nramoops.mem_size = banana\n")
    e = raises(boardconf.ConfigError, boardconf.load, root + "/board.conf")
    assert "board.conf:2" in str(e)


def test_meta_json_writer_round_trips():
    import json
    obj = {"files": [{"name": "dmesg-ramoops-0", "size": 18345, "crc32": 0xFFFFFFFF,
                      "reason": None, "ok": True}],
           "text": 'quote " backslash \\ newline \n tab \t ctl \x01 utf8 \u00e9',
           "empty": {}, "none": [], "warm": False}
    text = bundles.dumps(obj)
    assert json.loads(text) == obj
    assert text.index('"empty"') < text.index('"files"') < text.index('"none"')   # sorted
    raises(TypeError, bundles.dumps, {"x": 1.5})


def test_retention_pruned_bundle_does_not_count_as_saved():
    """The ledger names a record whose bundle retention has since removed: the same
    record back in RAM must be saved again, not cleared with no copy on flash."""
    root = make_root(keep=[("config", b"static\n" * 50)], bundles=1)
    code, line, r = run(root, now=1700000000)
    assert code == 0 and "salvaged 1" in line, line
    set_boot(root, 1)
    write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC)
    code, line, r = run(root, now=1700000100)      # bundle 2 prunes bundle 1
    assert code == 0 and "salvaged 1" in line, line
    assert [n for n, _ in saved_files(root)] == ["dmesg-ramoops-0"]
    a = keeparea.open_area(root + "/keep.img")
    a.put("config", b"static\n" * 50, wall_time=1700000150, uptime_ms=1000, boot_id=BOOT_IDS[1])
    a.close()
    set_boot(root, 2)
    code, line, r = run(root, now=1700000200)
    assert code == 0, line
    assert saved_files(root) == [("phram/config", b"static\n" * 50)], line
    assert keep_names(root) == []


def test_unreadable_keep_area_does_not_stop_pstore_salvage():
    """A keep area the scanner rejects (more than SCAN_MAX records) is one note;
    the panic records are still salvaged and the keep area is left alone."""
    from binascii import crc32
    from crashkeep.formats import phramrec as pr
    root = make_root(RECORDS)
    n = pr.SCAN_MAX + 1
    img = bytearray(pr.BOOT_SLOTS * pr.UNIT + n * 128)     # every byte a record
    off = pr.BOOT_SLOTS * pr.UNIT
    for i in range(n):
        hdr = pr.encode_header("r%d" % i, i + 1, 0, 0, wall_time=1700000000)
        img[off:off + len(hdr)] = hdr
        off += 128
    write(root + "/keep.img", img)
    code, line, r = run(root)
    assert code == 0, line
    assert "keep area" in line and "salvaged 2 record(s)" in line, line
    assert saved_files(root) == sorted(RECORDS)
    assert os.listdir(root + "/sys/fs/pstore") == []
    heap = memoryview(img)[pr.BOOT_SLOTS * pr.UNIT:]
    want = crc32(heap)
    img = heap = None
    back = read(root + "/keep.img")
    assert crc32(memoryview(back)[pr.BOOT_SLOTS * pr.UNIT:]) == want


def test_unlistable_pstore_does_not_stop_keep_area_salvage():
    root = make_root(keep=KEEP)
    os.rmdir(root + "/sys/fs/pstore")
    code, line, r = run(root)
    assert code == 0, line
    assert "Failed to list" in line and "salvaged 2 record(s)" in line, line
    assert saved_files(root) == sorted(("phram/" + n, d) for n, d in KEEP)
    assert keep_names(root) == []


# ---------------------------------------------------------------- issue 11: never lose a record

def _noise(n, seed):
    """Bytes gzip cannot shrink (so a bundle really is that large)."""
    if hasattr(os, "urandom"):
        return os.urandom(n)
    from _util import Rng
    rng = Rng(seed)
    return bytes([rng.getrandbits(8) for _ in range(n)])


class Flash:
    """A flash directory of `capacity` bytes: free space is what its files leave."""

    def __init__(self, root, capacity):
        self.path = root + "/flash"
        self.capacity = capacity

    def __enter__(self):
        self.real = storage.free_bytes
        storage.free_bytes = lambda p: max(0, self.capacity - storage.tree_bytes(self.path))
        return self

    def __exit__(self, *exc):
        storage.free_bytes = self.real


def _panic_boot(root, i, hook=None):
    set_boot(root, i)
    write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"%d" % i)
    return run(root, hook=hook, now=1700000000 + 100 * i)


def test_retention_removes_nothing_for_a_bundle_that_still_does_not_fit():
    """Issue 11 item 1: two panics on flash, then a record larger than the whole
    flash: the boot fails with the records kept in RAM and both old bundles stay.
    (The issue's case was a 256 KiB flash and 300 KB; smaller for MicroPython's heap.)"""
    root = make_root()
    write(root + "/keep.img", bytes(128 * 1024))
    with Flash(root, 96 * 1024):
        for i in range(2):
            code, line, r = _panic_boot(root, i)
            assert code == 0, line
        big = _noise(100000, 1)
        a = keeparea.open_area(root + "/keep.img")
        a.put("big", big, wall_time=1700000150, uptime_ms=1, boot_id=BOOT_IDS[1])
        a.close()
        code, line, r = _panic_boot(root, 2)
    assert code == 5 and "bytes free" in line and "retention" not in line, line
    assert [s for s, _ in bundles.list_bundles(flash_dir(root))] == [1, 2]
    assert keep_names(root) == ["big"]
    assert os.listdir(root + "/sys/fs/pstore") == ["dmesg-ramoops-0"]


def test_retention_makes_room_when_the_new_bundle_will_fit():
    """The flash filled up meanwhile; removing the oldest bundle makes room for the
    new one: only that one goes, the new bundle is written, RAM is cleared."""
    root = make_root()
    write(root + "/keep.img", bytes(256 * 1024))
    with Flash(root, 4 << 20) as flash:
        for i, n in enumerate((100000, 30000)):
            a = keeparea.open_area(root + "/keep.img")
            a.put("log%d" % i, _noise(n, i + 2), wall_time=1700000000, uptime_ms=1,
                  boot_id=BOOT_IDS[i])
            a.close()
            code, line, r = _panic_boot(root, i)
            assert code == 0, line
        a = keeparea.open_area(root + "/keep.img")
        a.put("log2", _noise(70000, 9), wall_time=1700000000, uptime_ms=1, boot_id=BOOT_IDS[2])
        a.close()
        flash.capacity = 200 * 1024
        code, line, r = _panic_boot(root, 2)
    assert code == 0 and "retention removed 1" in line, line
    assert [s for s, _ in bundles.list_bundles(flash_dir(root))] == [2, 3]
    assert keep_names(root) == []


def test_same_bytes_saved_again_survive_retention_of_their_bundle():
    """Issue 11 item 2: retention.bundles = 1, the same bytes under the same name
    kept on two boots: the record is in RAM or in the bundle that stays, never nowhere."""
    conf = b"static config\n" * 40
    root = make_root(keep=[("config", conf)], bundles=1)
    code, line, r = _panic_boot(root, 0)
    assert code == 0 and "salvaged 2" in line, line
    a = keeparea.open_area(root + "/keep.img")
    a.put("config", conf, wall_time=1700000050, uptime_ms=1, boot_id=BOOT_IDS[0])
    a.close()
    code, line, r = _panic_boot(root, 1)
    assert code == 0, line
    kept = bundles.list_bundles(flash_dir(root))
    assert [s for s, _ in kept] == [2], kept
    have = saved_files(root)
    assert ("phram/config", conf) in have or keep_names(root) == ["config"], (line, have)
    assert ("dmesg-ramoops-0", PANIC + b"1") in have


def test_cut_after_ledger_then_retention_keeps_the_first_panic():
    """Issue 11 item 2: a cut right after the ledger step (the panic is on flash and
    still in RAM), retention.bundles = 1, a second panic: the first one must not be
    cleared after its only bundle is pruned."""
    root = make_root(bundles=1)

    def cut(step):
        if step == "ledger":
            raise salvage.Cut()
    set_boot(root, 0)
    write(root + "/sys/fs/pstore/dmesg-ramoops-0", PANIC + b"A")
    try:
        run(root, hook=cut, now=1700000000)
        raise AssertionError("not cut")
    except salvage.Cut:
        pass
    set_boot(root, 1)
    write(root + "/sys/fs/pstore/dmesg-ramoops-1", PANIC + b"B")
    code, line, r = run(root, now=1700000100)
    assert code == 0, line
    have = dict(saved_files(root))
    left = sorted(os.listdir(root + "/sys/fs/pstore"))
    assert have.get("dmesg-ramoops-0") == PANIC + b"A" or "dmesg-ramoops-0" in left, (line, have)
    assert have.get("dmesg-ramoops-1") == PANIC + b"B", (line, have)


def test_a_timeout_inside_a_tolerant_step_stops_the_run():
    """The alarm may fire inside a step that tolerates CrashkeepError (listing pstore):
    the Timeout must end the run there, not become a note."""
    from crashkeep.system import pstore
    root = make_root(RECORDS, KEEP)
    real = pstore.list_records

    def late(*a, **kw):
        raise salvage.Timeout("timed out")
    pstore.list_records = late
    try:
        code, line, r = run(root)
    finally:
        pstore.list_records = real
    assert code == 6 and "timed out" in line, line
    assert bundles.list_bundles(flash_dir(root)) == []
    assert sorted(keep_names(root)) == ["core-app-42", "messages"]


def test_a_version_saved_during_salvage_is_not_cleared():
    """`save` writes a newer version of a record after boot read it: clearing the
    salvaged record must leave the newer version in the keep area."""
    root = make_root(keep=[("messages", b"old lines\n" * 50)])

    def hook(step):
        if step == "committed":
            a = keeparea.open_area(root + "/keep.img")
            a.put("messages", b"new lines\n" * 60, wall_time=1700000500, uptime_ms=1,
                  boot_id=BOOT_IDS[0])
            a.close()
    code, line, r = run(root, hook=hook)
    assert code == 0, line
    assert saved_files(root) == [("phram/messages", b"old lines\n" * 50)]
    a = keeparea.open_area(root + "/keep.img")
    try:
        got = a.get("messages")
    finally:
        a.close()
    assert got is not None and got[1] == b"new lines\n" * 60


def _put_badly_named(path, name, data, t=1700000000):
    """A record with valid CRCs under a name `save` refuses (crafted or corrupted)."""
    from crashkeep.formats import phramrec as pr
    real = pr.check_name
    pr.check_name = lambda n: None
    try:
        a = keeparea.open_area(path)
        a.put(name, data, wall_time=t, uptime_ms=1, boot_id=BOOT_IDS[0])
        a.close()
    finally:
        pr.check_name = real


def test_badly_named_records_are_salvaged_under_safe_names():
    """Issue 11 item 4: records named '..', '.', '../../escaped' and with a NUL are
    salvaged under safe names, reported, and do not block the panic or each other."""
    root = make_root(RECORDS, [("messages", b"fine\n" * 10)])
    bad = ["..", ".", "../../escaped", "a\x00b", "x/y"]
    for i, n in enumerate(bad):
        _put_badly_named(root + "/keep.img", n, b"evidence %d\n" % i)
    code, line, r = run(root)
    assert code == 0 and "salvaged 8 record(s)" in line, line
    assert "bad name" in line, line
    have = saved_files(root)
    names = [n for n, _ in have]
    for n in names:
        tail = n[len("phram/"):] if n.startswith("phram/") else n
        assert tail and "/" not in tail and "\x00" not in tail and not tail.startswith("."), n
    for i in range(len(bad)):
        assert [d for _, d in have].count(b"evidence %d\n" % i) == 1, have
    assert ("phram/messages", b"fine\n" * 10) in have
    assert [n for n in os.listdir(root) if n == "escaped"] == []
    assert keep_names(root) == []


# ---------------------------------------------------------------- console and pmsg zones

ZONE_BOARD = """
board.name = fake
board.kernel = 6.1
board.cpus = 2
ramoops.mem_address = 0x1f000000
ramoops.mem_size = 128K
ramoops.record_size = 16K
ramoops.console_size = 8K
ramoops.ftrace_size = 4K
ramoops.pmsg_size = 8K
phram.name = crashkeep
phram.start = 0x1f080000
phram.len = 512K
flash.mountpoint = /flash
flash.dir = crashkeep
"""
ZONE_CASE = "plain-oops-panic"       # a real 6.1 region with dmesg, console and pmsg zones


class FakeRamoops:
    """What loading ramoops does to a board, on a fake root: /sys/fs/pstore shows
    the region's records (our reader; test_ramoops_fixtures proves it equals the
    kernel's files) and the console, pmsg and ftrace zones start over for the new
    boot, so the previous boot's text is gone from RAM. reboot() drops pstore."""

    def __init__(self, root):
        from crashkeep.system import kmod
        self.root = root
        self.kmod = kmod
        self.real = kmod.load_for_board

    def __enter__(self):
        self.kmod.load_for_board = self.load
        return self

    def __exit__(self, *exc):
        self.kmod.load_for_board = self.real

    def load(self, board, root="/", want=("ramoops", "phram")):
        from crashkeep.formats import ramoops
        mem = root + "/dev/mem"
        addr = board.get("ramoops.mem_address")
        with open(mem, "r+b") as f:
            f.seek(addr)
            region = bytearray(f.read(board.get("ramoops.mem_size")))
            for rec in ramoops.read_region(bytes(region), board.ramoops_params()):
                write(root + "/sys/fs/pstore/" + rec.name, bytes(rec.data))
            for z in board.zones():
                if z.kind in ("console", "pmsg", "ftrace"):
                    f.seek(addr + z.offset)
                    f.write(bytes(12))          # an empty zone header: this boot's from now
        write(mkdirs(root + "/sys/module/ramoops") + "/initstate", "live\n")
        res = self.real(board, root, ("phram",))
        res.status["ramoops"] = self.kmod.LOADED
        return res

    def reboot(self):
        for n in os.listdir(self.root + "/sys/fs/pstore"):
            os.remove(self.root + "/sys/fs/pstore/" + n)
        storage.remove_tree(self.root + "/sys/module/ramoops")


def _zone_root():
    import test_ramoops_fixtures as fx
    d, meta, region = fx.load(ZONE_CASE)
    root = make_root()
    for n in os.listdir(root + "/sys/fs/pstore"):
        os.remove(root + "/sys/fs/pstore/" + n)
    storage.remove_tree(root + "/sys/module/ramoops")
    write(root + "/board.conf", ZONE_BOARD)
    write(root + "/keep.img", bytes(128 * 1024))
    with open(root + "/dev/mem", "wb") as f:        # sparse: the region at its address
        f.seek(meta["mem_address"])
        f.write(region)
    return root, d + "/pstore"


def test_console_and_pmsg_survive_a_failed_salvage():
    """Issue 11: the flash is full on the boot that loads ramoops: the previous
    boot's console and pmsg (real 6.1 zones) are kept in the keep area, and the
    next boot, after a reboot, salvages them with the same bytes the kernel showed."""
    root, kernel = _zone_root()
    with FakeRamoops(root) as fake:
        with Flash(root, 0):
            code, line, r = run(root, now=1700000000)
        assert code == 5 and "kept in RAM" in line, line
        kept = sorted(keep_names(root))
        assert kept == ["console-ramoops-0@boot0", "pmsg-ramoops-0@boot0"], kept
        fake.reboot()
        set_boot(root, 1)
        code, line, r = run(root, now=1700000100)
    assert code == 0, line
    have = dict(saved_files(root))
    for kind in ("console", "pmsg"):
        assert have.get(kind + "-ramoops-0@boot0") == read(kernel + "/%s-ramoops-0" % kind), \
            (kind, sorted(have))
    assert keep_names(root) == []


def test_zones_kept_in_ram_stand_in_for_their_pstore_copies():
    """Flash fine: the kept zones are salvaged once (not also from /sys/fs/pstore),
    the dmesg records as before, and the keep area is empty again."""
    root, kernel = _zone_root()
    with FakeRamoops(root):
        code, line, r = run(root, now=1700000000)
    assert code == 0, line
    have = saved_files(root)
    names = [n for n, _ in have]
    assert names == ["console-ramoops-0@boot0", "dmesg-ramoops-0", "dmesg-ramoops-1",
                     "pmsg-ramoops-0@boot0"], names
    for n, data in have:
        assert data == read(kernel + "/" + n.split("@")[0]), n
    assert keep_names(root) == []
    assert os.listdir(root + "/sys/fs/pstore") == ["console-ramoops-0", "pmsg-ramoops-0"] or \
        sorted(os.listdir(root + "/sys/fs/pstore")) == ["console-ramoops-0", "pmsg-ramoops-0"]


def test_zones_never_evict_a_kept_record():
    """No room in the keep area for the zones: a note, nothing evicted, and the
    /sys/fs/pstore copies go to flash as before."""
    root, kernel = _zone_root()
    write(root + "/keep.img", bytes(64 * 1024))
    a = keeparea.open_area(root + "/keep.img")
    fill = b"f" * a.max_payload("fill", rewrite=False)
    a.put("fill", fill, wall_time=1700000000, uptime_ms=1, boot_id=BOOT_IDS[0])
    a.close()
    with FakeRamoops(root):
        code, line, r = run(root, now=1700000000)
    assert code == 0 and "Failed to keep console-ramoops-0 in RAM" in line, line
    have = dict(saved_files(root))
    assert have["phram/fill"] == fill
    assert have["console-ramoops-0"] == read(kernel + "/console-ramoops-0")


def test_retention_never_removes_bundles_for_slack_out_of_reach():
    """The new bundle fits once the two oldest go, but the 64 KiB slack could not
    be reached even with every old bundle gone: those two go, not all three."""
    root = make_root()
    write(root + "/keep.img", bytes(256 * 1024))
    with Flash(root, 4 << 20) as flash:
        for i, n in enumerate((30000, 30000, 30000)):
            a = keeparea.open_area(root + "/keep.img")
            a.put("log%d" % i, _noise(n, i + 20), wall_time=1700000000, uptime_ms=1,
                  boot_id=BOOT_IDS[i])
            a.close()
            code, line, r = _panic_boot(root, i)
            assert code == 0, line
        a = keeparea.open_area(root + "/keep.img")
        a.put("log3", _noise(60000, 29), wall_time=1700000000, uptime_ms=1, boot_id=BOOT_IDS[3])
        a.close()
        used = storage.tree_bytes(root + "/flash")
        flash.capacity = used + 35000       # 60 KB more fit once two 30 KB bundles are gone
        code, line, r = _panic_boot(root, 3)
    assert code == 0 and "retention removed 2" in line, line
    assert [s for s, _ in bundles.list_bundles(flash_dir(root))] == [3, 4]


def test_nothing_free_removes_nothing():
    """f_bavail stops at 0 once the filesystem's reserve is in use: how much room a
    removal makes is unknown then, so no old bundle goes before the commit."""
    root = make_root()
    with Flash(root, 4 << 20) as flash:
        for i in range(2):
            a = keeparea.open_area(root + "/keep.img")
            a.put("log", _noise(20000, 40 + i), wall_time=1700000000, uptime_ms=1,
                  boot_id=BOOT_IDS[i])
            a.close()
            code, line, r = _panic_boot(root, i)
            assert code == 0, line
        flash.capacity = 30000          # less than is used: free_bytes says 0
        code, line, r = _panic_boot(root, 2)
    assert code == 5 and "0 bytes free" in line, line
    assert [s for s, _ in bundles.list_bundles(flash_dir(root))] == [1, 2]
    assert os.listdir(root + "/sys/fs/pstore") == ["dmesg-ramoops-0"]
