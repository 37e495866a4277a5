"""The ramoops console, pmsg and ftrace zones end to end, on the pstore test
kernel (tests/e2e/kernel/build.sh: Debian's linux-source-6.1 with
PSTORE_CONSOLE, PSTORE_PMSG and PSTORE_FTRACE, which Debian's kernels lack).

Boot 1 fills every front-end: kernel messages (console, wrapped), a known byte
stream written to /dev/pmsg0 (wrapped), function tracing through
/sys/kernel/debug/pstore/record_ftrace; then it panics. Boot 2 reads the raw
region before anything loads ramoops (/dev/mem), runs `crashkeep ramoops
extract` on it, then loads ramoops and copies what the kernel shows in
/sys/fs/pstore, then `crashkeep boot` salvages those files to the flash disk.

Oracles, none of them crashkeep: the pmsg stream the host wrote, the serial
console log of boot 1, the kernel's own /sys/fs/pstore files and the kernel's
System.map. The ftrace file is text the kernel formats with kallsyms
("CPU:%d ts:%llu %08lx  %08lx  %ps <- %pS"), crashkeep extract writes the
binary records (struct pstore_ftrace_record, merged as the kernel merges them):
every number of every line (CPU, timestamp, ip, parent ip) is compared, and the
names of core-kernel ips are checked against System.map.
"""
import bisect
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import uuid

import pytest

import harness
from test_boot import bundles, bundle_files

pytestmark = pytest.mark.e2e

BOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel",
                     "qemu-x86_64-pstore.conf")
REGION_ADDR = 0x1F000000
REGION_SIZE = 512 << 10
ZONE_DATA = (64 << 10) - 12       # ring capacity of a 64 KiB zone (12-byte header)
FTRACE_REC = 24                   # struct pstore_ftrace_record on 64-bit
TS_CPU_SHIFT = 8
PMSG_BYTES = 100 << 10            # wraps the 64 KiB pmsg ring
CONSOLE_LINES = 700               # ~80 KiB of messages: wraps the console ring

BOOT1 = r"""
load_modules
[ -c /dev/pmsg0 ] && echo "have-pmsg"
mount -t debugfs debugfs /sys/kernel/debug
i=0
while [ $i -lt {lines} ]; do
    echo "<2>CKCON-{tag} line $i ............................................................" > /dev/kmsg
    i=$((i + 1))
done
cat /testbed/pmsg.bin > /dev/pmsg0
printf 'CKPMSG-END-{tag}\n' > /dev/pmsg0
echo 1 > /sys/kernel/debug/pstore/record_ftrace
cat /proc/version > /dev/null
echo 0 > /sys/kernel/debug/pstore/record_ftrace
echo "<2>CKCON-END-{tag}" > /dev/kmsg
panic_now
"""

BOOT2 = r"""
B=/etc/crashkeep/board.conf
dd if=/dev/mem bs=65536 skip={skip} count={count} 2>/dev/null | emit region -
crashkeep ramoops extract /dev/mem --board $B --out /tmp/x; echo "extract-rc=$?"
for f in /tmp/x/*; do emit "x-${{f##*/}}" "$f"; done
load_modules
mount_pstore
for f in /sys/fs/pstore/*; do emit "k-${{f##*/}}" "$f"; echo "mtime ${{f##*/}} $(stat -c %Y "$f")"; done
umount /sys/fs/pstore
crashkeep boot; echo "boot-rc=$?"
"""


def pmsg_payload(tag):
    """PMSG_BYTES holding every byte value, each chunk numbered so that a ring
    read from the wrong offset cannot match (and compressible for the fixture)."""
    out = bytearray()
    i = 0
    while len(out) < PMSG_BYTES:
        out += b"CKPMSG-%s %06d:" % (tag.encode(), i) + bytes(range(256))
        i += 1
    return bytes(out[:PMSG_BYTES])


def run_frontends(testbed):
    """Boot 1 writes every front-end and panics; boot 2 extracts and salvages.
    Returns (run, tag, pmsg stream as written)."""
    assert testbed.binary, "build/out/crashkeep is not built (make -C build)"
    tag = uuid.uuid4().hex[:10]
    payload = pmsg_payload(tag)
    disk = testbed.make_disk("16M", "ext4")
    run = testbed.run([
        BOOT1.format(tag=tag, lines=CONSOLE_LINES),
        BOOT2.format(skip=REGION_ADDR // 65536, count=REGION_SIZE // 65536),
    ], disk=disk, board=BOARD, files={"testbed/pmsg.bin": payload}, timeout=400)
    return run, tag, payload + b"CKPMSG-END-%s\n" % tag.encode()


def kernel_files(run):
    return {k[2:]: v for k, v in run.files.items() if k.startswith("k-")}


def extracted_files(run):
    return {k[2:]: v for k, v in run.files.items() if k.startswith("x-")}


# ---- ftrace: the kernel's text form against crashkeep's binary records ------

# names of module functions carry " [module]"
FTRACE_LINE = re.compile(r"^CPU:(\d+) ts:(\d+) ([0-9a-f]+)  ([0-9a-f]+)  (\S+)(?: \[\w+\])? <- (.+)$")


def ftrace_text_lines(text):
    """[(cpu, ts, ip, parent, name, parent name)] from /sys/fs/pstore/ftrace-*."""
    out = []
    for line in text.decode().splitlines():
        m = FTRACE_LINE.match(line)
        assert m, "unexpected ftrace line %r" % line
        out.append((int(m.group(1)), int(m.group(2)), int(m.group(3), 16),
                    int(m.group(4), 16), m.group(5), m.group(6)))
    return out


def ftrace_binary_records(data):
    """[(cpu, ts, ip, parent)] from struct pstore_ftrace_record {ulong ip;
    ulong parent_ip; u64 ts} (CPU in ts's low 8 bits), skipping the leading
    size % 24 bytes as pstore_ftrace_seq_start() does."""
    out = []
    for off in range(len(data) % FTRACE_REC, len(data), FTRACE_REC):
        ip, parent, ts = struct.unpack_from("<QQQ", data, off)
        out.append((ts & ((1 << TS_CPU_SHIFT) - 1), ts >> TS_CPU_SHIFT, ip, parent))
    return out


def system_map(kdir):
    boot = os.path.join(kdir, "boot")
    name = [f for f in os.listdir(boot) if f.startswith("System.map-")]
    assert len(name) == 1, name
    syms = {}
    text = [None, None]
    with open(os.path.join(boot, name[0])) as f:
        for line in f:
            addr, kind, sym = line.split()[:3]
            a = int(addr, 16)
            if sym == "_stext":
                text[0] = a
            elif sym == "_etext":
                text[1] = a
            if kind in "tTwW":
                syms.setdefault(a, set()).add(sym)
    addrs = sorted(syms)
    return addrs, syms, text


def names_at(smap, ip):
    addrs, syms, _ = smap
    i = bisect.bisect_right(addrs, ip) - 1
    return syms[addrs[i]] if i >= 0 else set()


# ---- the test ---------------------------------------------------------------

def test_console_pmsg_ftrace_salvaged_and_extracted(testbed_pstore):
    tb = testbed_pstore
    run, tag, pmsg_stream = run_frontends(tb)
    b1, b2 = run.boot_logs[0], run.boot_logs[1]
    assert "have-pmsg" in b1, b1[-3000:]
    assert run.panicked[0], b1[-3000:]
    assert "extract-rc=0" in b2 and "boot-rc=0" in b2, b2[-4000:]

    kern = kernel_files(run)
    ext = extracted_files(run)
    assert {"console-ramoops-0", "pmsg-ramoops-0", "ftrace-ramoops-0",
            "dmesg-ramoops-0"} <= set(kern), sorted(kern)
    # crashkeep reads the same records from the raw region as the kernel lists
    assert sorted(ext) == sorted(kern), (sorted(ext), sorted(kern))

    # pmsg: the ring keeps the last ZONE_DATA bytes of the stream, byte for byte
    assert kern["pmsg-ramoops-0"] == pmsg_stream[-ZONE_DATA:]
    assert ext["pmsg-ramoops-0"] == kern["pmsg-ramoops-0"]

    # console: wrapped; every whole line is one the serial console printed in boot 1
    con = kern["console-ramoops-0"]
    assert len(con) == ZONE_DATA, len(con)
    assert ext["console-ramoops-0"] == con
    text = con.decode("utf-8", "replace")
    assert "CKCON-END-%s" % tag in text and "sysrq triggered crash" in text, text[-2000:]
    serial = run.console[:run.console.index("@@CKBOOT 2 START")]
    serial_lines = set(serial.splitlines())
    lines = text.split("\n")[1:-1]          # the first is cut by the wrap
    assert len(lines) > 500
    missing = [l for l in lines if l not in serial_lines]
    assert not missing, missing[:5]

    # dmesg: the panic record, byte for byte
    assert ext["dmesg-ramoops-0"] == kern["dmesg-ramoops-0"]
    assert kern["dmesg-ramoops-0"].startswith(b"Panic#1 Part1\n")

    # ftrace: every field of every record; names of core-kernel ips from System.map
    klines = ftrace_text_lines(kern["ftrace-ramoops-0"])
    recs = ftrace_binary_records(ext["ftrace-ramoops-0"])
    assert len(klines) > 100, len(klines)
    assert [l[:4] for l in klines] == recs
    assert len(ext["ftrace-ramoops-0"]) == len(recs) * FTRACE_REC
    # pstore_ftrace_call stamps records from one counter (a traced ramoops
    # function nested in a write takes a later stamp but lands first, so the
    # ring is not in stamp order): a ring read at the right offset holds a
    # run of consecutive stamps, none lost, none twice
    ts = sorted(r[1] for r in recs)
    assert ts == list(range(ts[0], ts[0] + len(ts))), ts[:5]
    assert ts[0] > 0          # the ring wrapped: stamps start at 0 at boot
    smap = system_map(tb.env.kdir)
    lo, hi = smap[2]
    core = [l for l in klines if lo <= l[2] < hi]
    assert len(core) > 100, (len(core), len(klines))   # the rest: ramoops.ko
    for cpu, _, ip, _, name, _ in core:
        assert cpu == 0
        assert name in names_at(smap, ip), (hex(ip), name, names_at(smap, ip))

    # the same raw region read on the host (Python reader) gives the same files
    region = run.files["region"]
    assert len(region) == REGION_SIZE
    host = os.path.join(tb.tmp, "host-extract")
    img = os.path.join(tb.tmp, "region.bin")
    with open(img, "wb") as f:
        f.write(region)
    r = subprocess.run([sys.executable, "-m", "crashkeep", "ramoops", "extract", img,
                        "--board", BOARD, "--out", host],
                       capture_output=True, env=dict(os.environ, PYTHONPATH=harness.ROOT),
                       cwd=harness.ROOT)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(host)) == sorted(ext)
    for n in ext:
        with open(os.path.join(host, n), "rb") as f:
            assert f.read() == ext[n], n

    # crashkeep boot put the kernel's files on flash, unchanged
    bs = bundles(run)
    assert len(bs) == 1, bs
    meta, saved = bundle_files(run, bs[0])
    for n in ("console-ramoops-0", "pmsg-ramoops-0", "ftrace-ramoops-0", "dmesg-ramoops-0"):
        assert saved[n] == kern[n], n

