"""Keep area on file-backed devices: put/get/list/remove/clear, space policy,
boot state, and torn writes cut at every byte of a save."""
from _util import raises, tmpdir, write, read

from crashkeep.system import keeparea
from crashkeep.formats import phramrec as pr
from crashkeep.errors import NoSpaceError, DeviceError, FormatError
from crashkeep.system.mtd import Info

BOOT_ID = "6d2c1f0e-8a4b-4c3d-9e2f-0123456789ab"
FACTS = {"wall_time": 1700000000, "uptime_ms": 4200, "boot_id": BOOT_ID}


class Torn(Exception):
    pass


class MemDevice:
    """A keep area in a bytearray; `budget` bytes may be written, then the
    write in progress stops mid-way (a power cut) and Torn is raised."""

    def __init__(self, data, budget=None):
        self.data = data
        self.path = "<mem>"
        self.budget = budget
        self.written = 0

    def read(self, off, n):
        return bytearray(self.data[off:off + n])

    def write(self, off, data):
        data = bytes(data)
        if self.budget is not None and self.written + len(data) > self.budget:
            k = self.budget - self.written
            self.data[off:off + k] = data[:k]
            self.written += k
            raise Torn()
        self.data[off:off + len(data)] = data
        self.written += len(data)

    def erase(self, off, n):
        raise AssertionError("RAM is never erased")

    def close(self):
        pass


def mem_area(size=8192, data=None, budget=None):
    dev = MemDevice(data if data is not None else bytearray(size), budget)
    return keeparea.KeepArea(dev, len(dev.data), firmware="fw 1.0")


def file_area(size=16384):
    path = tmpdir() + "/phram.img"
    write(path, bytes(size))
    return path, keeparea.open_area(path, firmware="fw 1.0")


def test_put_get_list_on_a_file():
    path, a = file_area()
    assert a.list() == [] and a.get("messages") is None
    assert a.put("messages", b"line 1\nline 2\n", source="/var/log/messages", orig_size=900,
                 **FACTS) == 1
    assert a.put("other", b"x" * 1000, **FACTS) == 2
    a.close()
    a = keeparea.open_area(path)
    info, payload = a.get("messages")
    assert payload == b"line 1\nline 2\n"
    assert (info.name, info.seq, info.source, info.orig_size, info.length, info.firmware,
            info.boot_id, info.wall_time, info.uptime) == \
        ("messages", 1, "/var/log/messages", 900, 14, "fw 1.0", BOOT_ID, 1700000000, 4.2)
    assert info.flags & pr.FLAG_TRUNCATED
    assert [(r.name, r.seq) for r in a.list()] == [("messages", 1), ("other", 2)]
    a.close()
    img = read(path)
    assert img[info.offset:info.offset + 4] == b"CKPR"
    assert len(img) == 16384


def test_new_version_replaces_old_and_old_is_zapped():
    a = mem_area()
    a.put("log", b"one", **FACTS)
    first = a.list()[0].offset
    a.put("log", b"two", **FACTS)
    info, payload = a.get("log")
    assert payload == b"two" and info.seq == 2 and info.offset != first
    assert [r.name for r in pr.scan(a.dev.data, a.heap_start, a.size)] == ["log"]
    assert a.dev.data[first:first + 8] == bytes(8)


def test_remove_and_clear_all_keep_boot_state():
    a = mem_area()
    a.set_boot_state({"boot_count": 3})
    a.put("a", b"1", **FACTS)
    a.put("b", b"2", **FACTS)
    assert a.remove("a") is True
    assert a.remove("a") is False
    assert [r.name for r in a.list()] == ["b"]
    a.clear_all()
    assert a.list() == []
    assert a.dev.data[a.heap_start:] == bytes(a.size - a.heap_start)
    assert a.boot_state()["boot_count"] == 3
    a.clear_all(boot_state=True)
    assert a.boot_state() is None and a.dev.data == bytearray(a.size)


def test_remove_up_to_a_seq_keeps_a_newer_version():
    """salvage removes the version it read (by seq); one saved after that stays."""
    a = mem_area()
    s1 = a.put("log", b"old", **FACTS)
    s2 = a.put("log", b"new", **FACTS)
    assert s2 > s1
    assert a.remove("log", s1) is False          # put zapped v1 already: nothing that old
    assert a.get("log")[1] == b"new"
    assert a.remove("log", s2) is True and a.get("log") is None


def test_no_space_error_then_evict_oldest():
    a = mem_area(size=4096)       # heap: 4096 - 128 bytes
    a.put("a", b"a" * 1000, **FACTS)
    a.put("b", b"b" * 1000, **FACTS)
    a.put("c", b"c" * 1000, **FACTS)
    e = raises(NoSpaceError, a.put, "d", b"d" * 1000, **FACTS)
    assert "--evict" in str(e)
    assert [r.name for r in a.list()] == ["a", "b", "c"]
    a.put("d", b"d" * 1000, evict=True, **FACTS)
    assert [r.name for r in a.list()] == ["b", "c", "d"]
    raises(NoSpaceError, a.put, "huge", b"h" * 5000, evict=True, **FACTS)


def test_evict_prefers_other_records_over_own_old_version():
    a = mem_area(size=4096)
    a.put("a", b"a" * 1500, **FACTS)
    a.put("b", b"b" * 1500, **FACTS)
    a.put("a", b"A" * 1500, evict=True, **FACTS)
    assert [r.name for r in a.list()] == ["a"]
    assert a.get("a")[1] == b"A" * 1500


def test_max_payload_leaves_room_for_a_torn_safe_rewrite():
    a = mem_area(size=8192)
    n = a.max_payload("log")
    a.put("log", b"x" * n, **FACTS)
    a.put("log", b"y" * n, **FACTS)       # must fit beside the first version
    raises(NoSpaceError, a.put, "log", b"z" * (a.capacity() // 2 + 64), **FACTS)


def test_too_small_and_bad_names():
    raises(DeviceError, keeparea.KeepArea, MemDevice(bytearray(200)), 200)
    a = mem_area()
    raises(FormatError, a.put, "bad/name", b"", **FACTS)


def test_boot_state_roundtrip_and_slots_alternate():
    a = mem_area()
    assert a.boot_state() is None
    st = {"boot_count": 1, "panic_count": 0, "clean_shutdown": False, "canary": 0xDEADBEEF,
          "last_boot_id": BOOT_ID, "last_boot_time": 123}
    a.set_boot_state(st)
    assert a.boot_state() == st
    assert a.dev.data[0:4] == b"CKBS"
    a.set_boot_state(dict(st, boot_count=2))
    assert a.dev.data[64:68] == b"CKBS"
    assert a.boot_state()["boot_count"] == 2
    a.set_boot_state(dict(st, boot_count=3))
    assert a.boot_state()["boot_count"] == 3
    a.put("r", b"data", **FACTS)
    assert a.boot_state()["boot_count"] == 3


def test_boot_state_torn_at_every_byte_keeps_previous():
    st7 = {"boot_count": 7, "panic_count": 1, "clean_shutdown": True, "canary": 0x5AFE,
           "last_boot_id": BOOT_ID, "last_boot_time": 1700000000}
    st8 = dict(st7, boot_count=8, last_boot_time=1700000100)
    base = mem_area()
    base.set_boot_state(st7)
    image = bytearray(base.dev.data)
    slot = pr.encode_boot_state(st8, 2)
    last = max(i for i in range(64) if slot[i])     # bytes after it are zero already
    assert last > 40
    for n in range(0, 65):
        a = mem_area(data=bytearray(image), budget=n)
        try:
            a.set_boot_state(st8)
        except Torn:
            pass
        got = mem_area(data=a.dev.data).boot_state()
        assert got == (st8 if n > last else st7), (n, got)


def _torn_put(image, budget, name, payload):
    a = mem_area(data=bytearray(image), budget=budget)
    try:
        a.put(name, payload, **FACTS)
        done = True
    except Torn:
        done = False
    return a.dev.data, done, a.dev.written


def test_save_torn_at_every_byte_keeps_previous_version():
    """Cut a save after N bytes for every N; the reopened area must show the
    old payload or the complete new one, and no other record may change."""
    a = mem_area(size=8192)
    a.put("other", b"keep me" * 20, **FACTS)
    a.put("log", b"old version\n" * 30, **FACTS)
    # several generations, so new versions also land on stale, zapped records
    for gen in range(3):
        image = bytearray(a.dev.data)
        old = a.get("log")[1]
        new = (b"generation %d\n" % gen) * (25 + gen * 7)
        _full, _d, total = _torn_put(image, None, "log", new)
        seen_new = False
        for n in range(total):
            data, done, _w = _torn_put(image, n, "log", new)
            assert not done
            b = mem_area(data=data)
            got = b.get("log")
            assert got is not None, n
            assert got[1] in (old, new), n
            if got[1] == new:
                seen_new = True     # header fully down: only the zap of the old one was cut
            else:
                assert not seen_new, "old version came back at %d" % n
            assert b.get("other")[1] == b"keep me" * 20
            assert sorted(r.name for r in b.list()) == ["log", "other"]
        assert seen_new
        a.put("log", new, **FACTS)


def test_open_area_on_mtd_name_in_fake_root():
    root = tmpdir()
    import os
    os.mkdir(root + "/proc")
    write(root + "/proc/mtd", 'dev:    size   erasesize  name\nmtd0: 00004000 00001000 "crashkeep"\n')
    e = raises(DeviceError, keeparea.open_area, "mtd:nothere", root=root)
    assert "nothere" in str(e)
    # a plain file is a keep area too
    path, a = file_area()
    a.put("x", b"1", **FACTS)
    a.close()
    raises(DeviceError, keeparea.open_area, root + "/missing.img")


def test_info_needs_erase():
    assert not Info("/dev/mtd0", "ram", 4096, 4096, 0x1c00).needs_erase
    assert Info("/dev/mtd1", "nor", 4096, 4096, 0xc00).needs_erase
    assert not Info("x.img", "file", 4096, 0).needs_erase


class FlashDevice(MemDevice):
    """NOR-like: a write can only clear bits; erase sets whole blocks to 0xFF."""

    def __init__(self, size, erasesize):
        MemDevice.__init__(self, bytearray(b"\xff" * size))
        self.erasesize = erasesize
        self.erases = []

    def write(self, off, data):
        for i in range(len(data)):
            self.data[off + i] &= data[i]

    def erase(self, off, n):
        assert off % self.erasesize == 0 and n % self.erasesize == 0, (off, n)
        self.erases.append((off, n))
        self.data[off:off + n] = b"\xff" * n


def test_flash_device_erases_blocks_before_writing():
    dev = FlashDevice(16 * 1024, 1024)
    a = keeparea.KeepArea(dev, len(dev.data), unit=1024, needs_erase=True)
    assert a.heap_start == 2048
    a.set_boot_state({"boot_count": 1})
    a.set_boot_state({"boot_count": 2})
    a.set_boot_state({"boot_count": 3})
    assert a.boot_state()["boot_count"] == 3
    a.put("log", b"v1" * 700, **FACTS)
    a.put("log", b"v2" * 700, **FACTS)
    a.put("other", b"o" * 10, **FACTS)
    assert a.get("log")[1] == b"v2" * 700 and a.get("other")[1] == b"o" * 10
    assert all(r.offset % 1024 == 0 for r in a.list())
    a.put("log", b"v3" * 700, **FACTS)        # lands on the erased-again first block
    assert a.get("log")[1] == b"v3" * 700
    assert a.remove("other") and [r.name for r in a.list()] == ["log"]
    a.clear_all()
    assert a.list() == [] and dev.data[2048:] == b"\xff" * (len(dev.data) - 2048)
    assert a.boot_state()["boot_count"] == 3


def test_max_payload_resaves_beside_other_records():
    """Whatever other records sit where, max_payload() bytes can be saved over
    and over (each save needs room beside the previous version)."""
    for layout in ((100,), (3000,), (100, 5000), (2000, 100, 900)):
        a = mem_area(size=16384)
        for i, n in enumerate(layout):
            a.put("o%d" % i, b"o" * n, **FACTS)
        a.remove("o0")                              # leave a hole in front
        n = a.max_payload("log", "/var/log/messages")
        assert n > 0
        for k in range(5):
            a.put("log", bytes([k]) * n, source="/var/log/messages", **FACTS)
        raises(NoSpaceError, a.put, "log", b"x" * (a.capacity() - 100), **FACTS)
        assert a.get("log")[1] == bytes([4]) * n


def test_max_payload_for_a_record_written_once():
    a = mem_area(size=8192)
    a.put("other", b"o" * 100, **FACTS)
    n = a.max_payload("core-sh-1", "/bin/sh", rewrite=False)
    assert n > a.max_payload("core-sh-1", "/bin/sh")
    a.put("core-sh-1", b"c" * n, source="/bin/sh", **FACTS)
    assert a.get("other")[1] == b"o" * 100
    raises(NoSpaceError, a.put, "core-sh-2", b"c" * 1, **FACTS)


def test_rewrite_over_a_stale_version_keeps_the_new_one():
    """A save cut before it zapped the old version leaves two valid versions; the
    next save may land over the stale one. Zapping that stale header afterwards
    would write zeros into the new record, and every version would be gone."""
    a = mem_area()
    a.put("b", b"B" * 10, **FACTS)                    # 0x80
    a.put("a", b"1" * 10, **FACTS)                    # 0x100
    v1 = a.get("a")[0]
    stale = bytes(a.dev.data[v1.offset:v1.offset + v1.extent])
    a.put("a", b"2" * 10, **FACTS)                    # 0x180, v1 zapped ...
    a.dev.data[v1.offset:v1.offset + v1.extent] = stale   # ... or not: cut before the zap
    assert len([r for r in pr.scan(a.dev.data, a.heap_start, a.size) if r.name == "a"]) == 2
    a.remove("b")                                     # gap 0x80..0x180 holds the stale v1
    a.put("a", b"3" * 150, **FACTS)                   # 256 bytes: best fit at 0x80, over v1
    got = a.get("a")
    assert got is not None and got[1] == b"3" * 150, got
