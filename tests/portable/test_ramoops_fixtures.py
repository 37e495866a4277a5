"""Raw regions from the real kernel: our records must equal its /sys/fs/pstore files.

Fixtures: tests/fixtures/ramoops/<case>/ (made by generate.py on the Debian
6.1 kernel under QEMU, and on Debian's 6.12 for the *-6.12 cases): region.bin.gz was dumped before the boot that read it,
pstore/ holds what that boot's kernel showed. Plus U-Boot's real 4.19 ARM
zones (../shared/testdata/ramoops-uboot) checked against U-Boot's md5 sums.
"""
import hashlib
import json
import os

from _util import FIXTURES, SHARED_TESTDATA, read, exists, skip

from crashkeep.formats import ramoops

CASES = FIXTURES + "/ramoops"


def gunzip(path):
    try:
        import gzip
    except ImportError:
        gzip = None
    if gzip is not None:
        with gzip.open(path, "rb") as f:
            return f.read()
    import deflate
    with open(path, "rb") as raw:
        with deflate.DeflateIO(raw, deflate.GZIP) as f:
            return f.read()


def case_dirs():
    out = []
    for name in sorted(os.listdir(CASES)):
        if exists(CASES + "/" + name + "/case.json"):
            out.append(name)
    return out


def params_of(meta):
    p = meta["params"]
    return ramoops.Params(p["mem_size"], p["record_size"], p["console_size"], p["ftrace_size"],
                          p["pmsg_size"], p["ecc"], cpus=meta["cpus"], order=meta["order"],
                          mem_address=meta["mem_address"])


def load(name):
    d = CASES + "/" + name
    with open(d + "/case.json") as f:
        meta = json.load(f)
    return d, meta, gunzip(d + "/region.bin.gz")


def gunzip_lines(path):
    """The lines of a gzip'd text file, one at a time (MicroPython's heap
    cannot hold a big kernel file next to the region)."""
    try:
        import gzip
    except ImportError:
        gzip = None
    if gzip is not None:
        with gzip.open(path, "rb") as f:
            for line in f:
                yield line
        return
    import deflate
    with open(path, "rb") as raw:
        with deflate.DeflateIO(raw, deflate.GZIP) as f:
            while True:
                line = f.readline()
                if not line:
                    return
                yield line


def kernel_file(d, name):
    """A /sys/fs/pstore file of a case: pstore/NAME, or pstore/NAME.gz."""
    path = d + "/pstore/" + name
    if exists(path + ".gz"):
        return gunzip(path + ".gz")
    return read(path)


def ftrace_line(data, off):
    """The numbers of the kernel's ftrace text line ("CPU:%d ts:%llu %08lx
    %08lx  %ps <- %pS", the names need kallsyms) for the binary record at off."""
    ip = int.from_bytes(data[off:off + 8], "little")
    parent = int.from_bytes(data[off + 8:off + 16], "little")
    ts = int.from_bytes(data[off + 16:off + 24], "little")
    return "CPU:%d ts:%d %08x  %08x" % (ts & 0xFF, ts >> 8, ip, parent)


def check_ftrace_text(data, path, recsize=24):
    """Every record of crashkeep's binary ftrace file against a line of the
    kernel's text (gzip'd at path); the leading size % recsize bytes are
    skipped as in pstore_ftrace_seq_start()."""
    off = len(data) % recsize
    n = 0
    for line in gunzip_lines(path):
        f = line.decode().rstrip("\n").split(" ")
        # CPU:N ts:T IP "" PARENT "" NAME <- PARENT_NAME
        assert off + recsize <= len(data), ("kernel has more lines", n)
        assert " ".join(f[:5]) == ftrace_line(data, off), (n, line)
        off += recsize
        n += 1
    assert off == len(data), ("crashkeep has more records", n)
    return n


def check_case(name, order=None):
    d, meta, region = load(name)
    p = params_of(meta)
    if order:
        p.order = order
    # a kernel booted with pstore.compress=none has no decompressor
    inflate = "pstore.compress=none" not in meta["cmdline"]
    recs = ramoops.read_region(region, p, inflate=inflate)
    names = sorted(r.name for r in recs)
    want = sorted(meta["files"])
    assert names == want, (name, names, want)
    for r in recs:
        gz = d + "/pstore/" + r.name + ".gz"
        if r.kind == "ftrace" and exists(gz):
            # the kernel's file is text made with kallsyms: compare its numbers
            assert check_ftrace_text(r.data, gz) > 0, (name, r.name)
            continue
        kernel = kernel_file(d, r.name)
        assert r.data == kernel, (name, r.name, len(r.data), len(kernel))
        if r.time:
            # the kernel sets the file's mtime from the ==== header
            assert meta["files"][r.name]["mtime"] == r.time, (name, r.name)
    return recs


def test_fixture_cases_exist():
    names = case_dirs()
    for need in ("deflate-oops-panic", "plain-oops-panic", "deflate-encz", "ecc-clean",
                 "ecc-corrected", "ecc-uncorrectable", "small-record", "never-written",
                 "garbage", "after-unlink",
                 # Debian's 6.12: pmsg before ftrace, zlib deflate
                 "deflate-oops-panic-6.12", "plain-oops-panic-6.12", "ecc-corrected-6.12",
                 "ecc-uncorrectable-6.12"):
        assert need in names, need


def test_every_fixture_byte_for_byte():
    for name in case_dirs():
        check_case(name)


def test_every_fixture_with_order_detection():
    for name in case_dirs():
        check_case(name, order=ramoops.ORDER_AUTO)


def test_oops_then_panic_metadata():
    recs = check_case("deflate-oops-panic")
    by = dict((r.name, r) for r in recs)
    a, b = by["dmesg-ramoops-0"], by["dmesg-ramoops-1"]
    assert (a.reason, a.count, a.part, a.compressed) == ("Oops", 1, 1, True)
    assert (b.reason, b.count, b.part) == ("Panic", 2, 1)
    assert a.time > 1600000000 and 0 <= a.usec < 1000000
    recs = check_case("plain-oops-panic")
    assert [r.compressed for r in recs if r.kind == "dmesg"] == [False, False]


def test_ecc_results():
    d, meta, region = load("ecc-uncorrectable")
    states, recs = ramoops.scan(region, params_of(meta))
    assert (states[1].ecc.corrected, states[1].ecc.bad_blocks) == (1, 1)
    assert (states[0].ecc.corrected, states[0].ecc.bad_blocks) == (13, 0)
    assert states[1].record.encoded and states[1].record.name.endswith(".enc.z")


def test_never_modifies_the_source():
    d, meta, region = load("ecc-corrected")
    before = bytes(region)
    buf = bytearray(region)
    ramoops.read_region(buf, params_of(meta))
    assert bytes(buf) == before
    ramoops.read_region(memoryview(buf), params_of(meta))
    assert bytes(buf) == before


def test_zone_states_of_garbage():
    d, meta, region = load("garbage")
    states, recs = ramoops.scan(region, params_of(meta))
    st = [s.status for s in states]
    assert st[:6] == ["bad-sig", "invalid", "invalid", "no-header", "valid", "invalid"], st
    assert states[4].record.time == 1700000000 and states[4].record.usec == 42


def test_big_endian_copy_reads_the_same():
    d, meta, region = load("plain-oops-panic")
    p = params_of(meta)
    swapped = bytearray(region)
    for z in ramoops.layout(p):
        o = z.offset
        for f in range(3):
            swapped[o + 4 * f:o + 4 * f + 4] = bytes(reversed(region[o + 4 * f:o + 4 * f + 4]))
    a = ramoops.read_region(region, p)
    states, b = ramoops.scan(swapped, p)
    assert [(r.name, r.data) for r in a] == [(r.name, r.data) for r in b]
    assert [s.endian for s in states if s.status == "valid"][0] == ">"


UBOOT = SHARED_TESTDATA + "/ramoops-uboot"


def uboot_check(recs, names):
    # md5 sums from U-Boot's test/py/tests/test_pstore.py (README there)
    want = {"dmesg-ramoops-0": (3798, "8059335ab4cfa62c77324c491659c503"),
            "dmesg-ramoops-1": (4035, "3ff30df3429d81939c75d0070b5187b9"),
            "console-ramoops-0": (4084, "bb44de4a9b8ebd9b17ae98003287325b")}
    recs = dict((r.name, r) for r in recs)
    assert sorted(recs) == sorted(names), sorted(recs)
    for name in names:
        data = recs[name].data
        md5 = "".join("%02x" % b for b in hashlib.md5(data).digest())
        assert (len(data), md5) == want[name], name
    return recs


def test_uboot_vectors():
    if not exists(UBOOT + "/README.md"):
        skip("%s absent (the shared test data sits beside the checkout)" % UBOOT)
    zone = {}
    for fname in ("panic1", "panic2", "console"):
        zone[fname] = read(UBOOT + "/test_pstore_data_%s.bin" % fname)
    # U-Boot's region: 1 MiB, every size 0x1000 (console at 0xfd000). The
    # bytes we hold stop after dmesg zone 1: later zones read as missing.
    p = ramoops.Params(0x100000, 0x1000, 0x1000, 0x1000, 0x1000, order="6.1")
    states, recs = ramoops.scan(zone["panic1"] + zone["panic2"], p)
    recs = uboot_check(recs, ["dmesg-ramoops-0", "dmesg-ramoops-1"])
    assert recs["dmesg-ramoops-0"].reason == "Oops"
    assert recs["dmesg-ramoops-1"].reason == "Panic"
    assert recs["dmesg-ramoops-0"].time == 1573113357
    assert states[2].status == "missing"
    try:
        region = bytearray(0x100000)
    except MemoryError:      # MicroPython's small heap: the console zone alone
        p = ramoops.Params(0x1000, 0, 0x1000, 0, 0)
        uboot_check(ramoops.read_region(zone["console"], p), ["console-ramoops-0"])
        return
    region[0:0x2000] = zone["panic1"] + zone["panic2"]
    region[0xFD000:0xFE000] = zone["console"]
    uboot_check(ramoops.read_region(region, p),
                ["dmesg-ramoops-0", "dmesg-ramoops-1", "console-ramoops-0"])


def test_612_zone_order_matters():
    # With pmsg and ftrace both set, only the 6.2+ order finds pmsg on 6.12
    d, meta, region = load("plain-oops-panic-6.12")
    p = params_of(meta)
    assert p.order == "6.2"
    names = [r.name for r in ramoops.read_region(region, p.copy(order="6.1"))]
    assert "pmsg-ramoops-0" not in names
    names = [r.name for r in ramoops.read_region(region, p)]
    assert "pmsg-ramoops-0" in names
