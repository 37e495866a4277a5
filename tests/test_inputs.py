"""Hostile command lines and unlucky files (issue 11): every bad input is one line
`crashkeep: ...` and a non-zero exit, checked before anything is opened or cut."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_CONF = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")


def ck(*args, input=None, env=None, timeout=60, **kw):
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.pop("CRASHKEEP_DEVICE", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "crashkeep", *args], input=input,
                          capture_output=True, env=e, cwd=ROOT, timeout=timeout, **kw)


def one_line_error(r, code=None):
    err = r.stderr.decode()
    assert r.returncode != 0, err
    if code is not None:
        assert r.returncode == code, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("crashkeep: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return err


@pytest.fixture
def area(tmp_path):
    p = tmp_path / "phram.img"
    p.write_bytes(bytes(512 << 10))
    return str(p)


# -- item 5: non-finite and out-of-range numbers -----------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e10", "-1", "NaN"])
def test_boot_timeout_rejects_nonfinite_at_parse_time(tmp_path, value):
    r = ck("boot", "--timeout", value, "--board", "/nonexistent.conf", "--root", str(tmp_path))
    err = one_line_error(r, 2)
    assert "--timeout" in err and "board" not in err.split("--timeout")[1]


@pytest.mark.parametrize("value", ["nan", "inf", "1e10", "0"])
def test_save_follow_interval_rejects_nonfinite(area, tmp_path, value):
    log = tmp_path / "log"
    log.write_bytes(b"x\n")
    r = ck("save", str(log), "--name", "x", "--follow", "--interval", value, "--device", area)
    err = one_line_error(r, 2)
    assert "--interval" in err


def test_typer_entry_checks_ranges_too(capsys):
    from crashkeep.cli.app import run_typer
    from crashkeep.cli.main import fast_main
    for entry in (fast_main, run_typer):
        rc = entry(["boot", "--timeout", "nan", "--board", "/nonexistent.conf"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "--timeout" in err, (entry, err)


# -- item 10: offsets that do not fit an off_t, checked before dst is touched --------
@pytest.mark.parametrize("flag,value", [("--skip", "0x8000000000000000"),
                                        ("--seek", str(1 << 64)),
                                        ("--count", str(1 << 64)),
                                        ("--tail", "0x8000000000000000")])
def test_copy_huge_offsets_leave_dst_alone(tmp_path, flag, value):
    src = tmp_path / "src"
    src.write_bytes(b"s" * 100)
    dst = tmp_path / "dst"
    dst.write_bytes(b"keep me\n")
    r = ck("copy", str(src), str(dst), flag, value)
    err = one_line_error(r, 2)
    assert flag in err
    assert dst.read_bytes() == b"keep me\n"


# -- item 12: usage errors are one line on the typer path too ------------------------
@pytest.mark.parametrize("argv", [["board", "check"], ["board", "check", "--bogus", "x"],
                                  ["board", "show"], ["ramoops", "list"],
                                  ["dump", "--bogus"], ["copy"]])
def test_usage_errors_are_one_line_both_entries(argv):
    one_line_error(ck(*argv), 2)


# -- item 6: a FIFO as --device or SOURCE is refused up front, naming it -------------
FIFO_CASES = [
    ["list", "--device", "{f}"],
    ["list", "--json", "--device", "{f}"],
    ["dump", "x", "--device", "{f}"],
    ["dump", "--raw", "--device", "{f}"],
    ["ramoops", "list", "{f}"],
    ["ramoops", "extract", "{f}", "--out", "{d}/out"],
    ["core", "analyze", "{f}"],
    ["save", "-", "--name", "x", "--device", "{f}"],
    ["clear", "x", "--device", "{f}"],
    ["clear", "--all", "--device", "{f}"],
    ["boot", "--board", QEMU_CONF, "--root", "{d}", "--keep", "{f}", "--dir", "{d}/flash"],
]


@pytest.mark.parametrize("argv", FIFO_CASES, ids=lambda a: "-".join(a[:2]))
def test_fifo_is_refused_and_named(tmp_path, argv):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    argv = [a.format(f=fifo, d=str(tmp_path)) for a in argv]
    try:
        r = ck(*argv, input=b"hi\n", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("%s blocked on a FIFO" % argv)
    if argv[0] == "boot":
        # boot goes on (pstore, then a note); the keep area is named in its one line
        assert "'%s'" % fifo in r.stderr.decode() + r.stdout.decode(), r
        return
    err = one_line_error(r, 4)
    assert "'%s'" % fifo in err and "FIFO" in err, err


# -- item 8: closed stdio is never a traceback, an internal error or a failed job ----
def _closed(argv, close=(1,), input_fd=None):
    """Run with the given fds closed in the child (a shell's `>&-`)."""
    def pre():
        for fd in close:
            os.close(fd)
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.pop("CRASHKEEP_DEVICE", None)
    keep_err = 2 not in close
    r = subprocess.run([sys.executable, "-m", "crashkeep", *argv], preexec_fn=pre,
                       stdin=subprocess.DEVNULL if 0 not in close else None,
                       stdout=subprocess.PIPE if 1 not in close else None,
                       stderr=subprocess.PIPE if keep_err else None, env=e, cwd=ROOT,
                       timeout=60)
    return r


@pytest.mark.parametrize("argv", [["--version"], ["save", "--help"], ["board", "--help"],
                                  ["list", "--device", "{a}"], ["dump", "x", "--device", "{a}"],
                                  ["board", "show", QEMU_CONF]],
                         ids=lambda a: "-".join(a[:2]))
@pytest.mark.parametrize("close", [(1,), (1, 2)], ids=["stdout", "stdout+stderr"])
def test_closed_stdout_is_not_an_error(area, argv, close):
    ck("save", "-", "--name", "x", "--device", area, input=b"hello\n")
    r = _closed([a.format(a=area) for a in argv], close)
    assert r.returncode == 0, r.stderr
    if r.stderr is not None:
        assert r.stderr == b"", r.stderr


def test_closed_stderr_error_keeps_exit_code():
    r = _closed(["board", "check", "/nonexistent.conf"], (2,))
    assert r.returncode == 2


def test_boot_with_all_stdio_closed_salvages_and_logs_to_kmsg():
    sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))
    import test_salvage as core
    root = core.make_root(core.RECORDS, core.KEEP)
    r = _closed(["boot", "--board", root + "/board.conf", "--root", root,
                 "--keep", root + "/keep.img"], (0, 1, 2))
    assert r.returncode == 0
    kmsg = open(root + "/dev/kmsg", "rb").read()
    assert kmsg.startswith(b"<5>crashkeep: boot #1 after panic") and kmsg.count(b"\n") == 1, kmsg
    assert sorted(n for n, _ in core.saved_files(root)) == \
        sorted([n for n, _ in core.RECORDS] + ["phram/" + n for n, _ in core.KEEP])


# -- item 9: one broken-pipe policy (BusyBox's): quiet, exit 0 -----------------------
def _piped(argv, nbytes=1, input=None):
    """argv | head -c nbytes, returning (exit code of argv, its stderr)."""
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.pop("PYTHONUNBUFFERED", None)
    p = subprocess.Popen([sys.executable, "-m", "crashkeep", *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.PIPE, env=e, cwd=ROOT)
    import threading

    def feed():
        try:
            if input is not None:
                p.stdin.write(input)
            p.stdin.close()
        except BrokenPipeError:
            pass
    t = threading.Thread(target=feed)
    t.start()
    if nbytes:
        p.stdout.read(nbytes)
    p.stdout.close()           # the reader goes away, like head after its byte
    t.join(60)
    err = p.stderr.read()
    return p.wait(timeout=60), err


@pytest.mark.parametrize("argv", [["list", "--device", "{a}"],
                                  ["list", "--json", "--device", "{a}"],
                                  ["dump", "big", "--device", "{a}"],
                                  ["dump", "--all", "--device", "{a}"],
                                  ["dump", "--raw", "--device", "{a}"],
                                  ["copy", "{big}", "-"],
                                  ["copy", "{big}", "-", "--tail", "300000"],
                                  ["copy", "-", "-", "--tail", "300000"],
                                  ["board", "show", QEMU_CONF],
                                  ["save", "--help"]],
                         ids=lambda a: "-".join(a[:3]))
def test_broken_pipe_is_quiet_and_exit_0(area, tmp_path, argv):
    big = tmp_path / "big"
    big.write_bytes(b"".join(b"line %d\n" % i for i in range(60000)))
    ck("save", str(big), "--name", "big", "--max-bytes", "200K", "--device", area)
    argv = [a.format(a=area, big=str(big)) for a in argv]
    # nbytes 0: the reader is gone before the first write (`| true`), so the
    # interpreter's final flush meets the broken pipe every time, not now and then
    for nbytes in (0, 1, 1):
        rc, err = _piped(argv, nbytes, input=big.read_bytes() if "-" in argv[1:2] else None)
        assert (rc, err) == (0, b""), (argv, nbytes, rc, err)


# -- item 7: buffers bounded by the destination and the source's real size ---------
RSS_MAX_KB = 16 << 10


def peak_rss_kb(argv, input=b"", cwd=None):
    """Peak RSS of one run, from the kernel's own accounting (RUSAGE_CHILDREN in a
    fresh helper process, so no earlier child counts). Python starts without site
    (-S), as the static binary does."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], input=%r, stdout=subprocess.DEVNULL,"
            " stderr=subprocess.PIPE)\n"
            "sys.stderr.buffer.write(r.stderr)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            % (input,))
    entry = ("import sys; sys.path.insert(0, %r); from crashkeep.cli.main import console_main; "
             "console_main()" % ROOT)
    r = subprocess.run([sys.executable, "-c", code, sys.executable, "-S", "-c", entry, *argv],
                       capture_output=True, cwd=cwd, timeout=120)
    rc, kb = r.stdout.split()
    return int(rc), int(kb), r.stderr.decode()


@pytest.mark.parametrize("argv", [
    ["save", "-", "--name", "x", "--device", "{small}", "--max-bytes", "1G"],
    ["save", "{big}", "--name", "y", "--device", "{small}", "--max-bytes", "1G"],
    ["copy", "-", "{d}/out", "--tail", "0x10000000000"],
    ["copy", "-", "{d}/out", "--bs", "0x10000000000"],
    ["copy", "{big}", "{d}/out", "--bs", "0x10000000000"],
    ["copy", "{big}", "{d}/out", "--tail", "0x10000000000", "--bs", "1G"],
    ["dump", "--raw", "--device", "{small}"],
    ["dump", "--all", "--device", "{small}"],
], ids=lambda a: "-".join(a[:1] + a[-2:-1]))
def test_peak_rss_is_bounded_whatever_the_flags(tmp_path, argv):
    small = tmp_path / "small.img"
    small.write_bytes(bytes(64 << 10))
    big = tmp_path / "big"
    big.write_bytes(b"b" * (3 << 20))
    argv = [a.format(small=small, big=big, d=tmp_path) for a in argv]
    rc, kb, err = peak_rss_kb(argv, input=b"hi\n" * 1000)
    assert rc in (0, 5), err       # 5: a 3 MiB tail does not fit a 64 KiB area
    assert kb <= RSS_MAX_KB, (argv, kb)


def test_boot_peak_rss_is_bounded(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))
    import test_salvage as core
    root = core.make_root(core.RECORDS, core.KEEP)
    rc, kb, err = peak_rss_kb(["boot", "--board", root + "/board.conf", "--root", root,
                               "--keep", root + "/keep.img", "--timeout", "30"])
    assert rc == 0, err
    assert kb <= RSS_MAX_KB, kb


def test_tail_stream_holds_only_what_arrived():
    import io
    from crashkeep.system import blockcopy
    data, total = blockcopy.tail_stream(io.BytesIO(b"hi\n"), 1 << 40)
    assert (data, total) == (b"hi\n", 3)
    data, total = blockcopy.tail_stream(io.BytesIO(bytes(range(256)) * 1000), 1000, bs=77)
    assert data == (bytes(range(256)) * 1000)[-1000:] and total == 256000


# -- item 3: the record limit: save refuses at it, readers read past it ---------------
def full_area(path, n, size=512 << 10):
    """A keep area holding n one-byte records r0..r(n-1), written directly."""
    from binascii import crc32
    from crashkeep.formats import phramrec as pr
    img = bytearray(size)
    off = pr.BOOT_SLOTS * pr.UNIT
    for i in range(n):
        hdr = pr.encode_header("r%d" % i, i + 1, 1, crc32(b"x"), wall_time=1700000000)
        img[off:off + len(hdr) + 1] = hdr + b"x"
        off += pr.align_up(len(hdr) + 1, pr.UNIT)
    assert off <= size
    open(path, "wb").write(img)
    return path


def test_save_refuses_the_record_past_the_limit(tmp_path):
    from crashkeep.formats import phramrec as pr
    area = full_area(str(tmp_path / "k.img"), pr.RECORDS_MAX)
    before = open(area, "rb").read()
    r = ck("save", "-", "--name", "one-too-many", "--device", area, input=b"x")
    err = one_line_error(r, 5)
    assert "%d records" % pr.RECORDS_MAX in err
    assert open(area, "rb").read() == before
    # a new version of a kept name is not a new record
    ck("save", "-", "--name", "r7", "--device", area, input=b"y").check_returncode()
    # --evict makes room by dropping the oldest
    ck("save", "-", "--name", "new", "--evict", "--device", area, input=b"z").check_returncode()
    names = [x.split()[0] for x in ck("list", "--device", area).stdout.decode().splitlines()[2:]]
    assert "r0" not in names and "new" in names and len(names) == pr.RECORDS_MAX


def test_over_full_area_still_lists_dumps_saves_clears_and_boots(tmp_path):
    from crashkeep.formats import phramrec as pr
    n = pr.RECORDS_MAX + 1              # what today's 1025th save leaves behind
    area = full_area(str(tmp_path / "k.img"), n)
    import json
    doc = json.loads(ck("list", "--json", "--device", area).stdout)
    assert len(doc["records"]) == n
    assert ck("dump", "r1024", "--device", area).stdout == b"x"
    ck("clear", "r1024", "--device", area).check_returncode()
    ck("save", "-", "--name", "r5", "--device", area, input=b"new").check_returncode()
    assert ck("dump", "r5", "--device", area).stdout == b"new"
    # boot reads it (today it salvaged none: "more than 1024 records"). Salvaging
    # 1025 records one file each takes longer than a short deadline; what is not
    # salvaged by then stays in RAM for the next boot, which is the deadline's rule.
    sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))
    import test_salvage as core
    root = core.make_root(core.RECORDS)
    full_area(root + "/keep.img", n)
    from crashkeep.cli import main as entry
    from crashkeep.system import keeparea
    import io
    import contextlib
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        entry.main(["boot", "--board", root + "/board.conf", "--root", root,
                    "--keep", root + "/keep.img", "--timeout", "3"])
    assert "more than" not in out.getvalue(), out.getvalue()
    phram = [name for name, _ in core.saved_files(root) if name.startswith("phram/")]
    a = keeparea.open_area(root + "/keep.img")
    left = len(a.list())
    a.close()
    assert len(phram) + left == n, (len(phram), left, out.getvalue())


# -- item 11: board configs: numbers, widths, wraps, RAM banks, names ----------------
def conf(tmp_path, text, name="b.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def qemu_with(**kv):
    text = open(QEMU_CONF).read()
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in kv:
            v = kv.pop(key)
            if v is not None:
                out.append("%s = %s" % (key, v))
            continue
        out.append(line)
    out += ["%s = %s" % kv_ for kv_ in kv.items() if kv_[1] is not None]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("kv,word", [
    ({"phram.start": "0x10000000000000000"}, "phram.start"),
    ({"retention.bytes": "0x10000000000000000"}, "retention.bytes"),
    ({"phram.start": "0xfffffffffffc0000"}, "wraps"),
    ({"ramoops.mem_address": "0xffffffffffff0000", "phram.start": "0x1f080000"}, "wraps"),
    ({"board.arch": "arm", "board.reserve": "dt", "phram.start": "0x100000000",
      "ramoops.mem_address": "0x1f000000"}, "32 bits"),
    ({"phram.name": 'a"b'}, "phram.name"),
    ({"phram.name": "a;b"}, "phram.name"),
    ({"phram.name": "a\\b"}, "phram.name"),
    ({"board.reserve": "mem", "board.ram_start": "0x0", "board.ram_size": "0x1f000000"},
     "outside the RAM bank"),
])
def test_board_check_refuses_what_the_kernel_cannot_take(tmp_path, kv, word):
    p = conf(tmp_path, qemu_with(**kv))
    for sub in ("check", "dts", "cmdline", "show"):
        err = one_line_error(ck("board", sub, p), 2)
        assert word in err and "b.conf" in err, (sub, err)


def test_board_reserve_mem_inside_the_bank_passes(tmp_path):
    p = conf(tmp_path, qemu_with(**{"board.reserve": "mem", "board.ram_start": "0x0",
                                    "board.ram_size": "0x20000000"}))
    assert ck("board", "check", p).returncode == 0
    assert ck("board", "cmdline", p).returncode == 0


def test_boot_with_ramoops_past_2_63_notes_it_and_salvages_phram(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))
    import test_salvage as core
    root = core.make_root(keep=core.KEEP)
    text = open(root + "/board.conf").read().replace("0x1f000000", "0x8000000000000000")
    text = text.replace("board.name = fake", "board.name = fake\nboard.arch = x86_64")
    open(root + "/board.conf", "w").write(text)
    import shutil
    shutil.rmtree(root + "/sys/module/ramoops")      # ramoops not loaded: /dev/mem is read
    open(root + "/dev/mem", "wb").close()
    r = ck("boot", "--board", root + "/board.conf", "--root", root, "--keep", root + "/keep.img")
    out = r.stdout.decode() + r.stderr.decode()
    assert "internal error" not in out and "Traceback" not in out, out
    assert "dev/mem" in out, out
    assert sorted(n for n, _ in core.saved_files(root)) == \
        sorted("phram/" + n for n, _ in core.KEEP), out


# -- item 12: a config of exactly CONFIG_LINES_MAX lines ------------------------------
def test_config_of_exactly_the_line_limit(tmp_path):
    from crashkeep.limits import CONFIG_LINES_MAX
    body = open(QEMU_CONF).read()
    pad = CONFIG_LINES_MAX - body.count("\n")
    p = conf(tmp_path, body + "#\n" * pad)
    assert open(p).read().count("\n") == CONFIG_LINES_MAX
    r = ck("board", "check", p)
    assert r.returncode == 0, r.stderr
    p = conf(tmp_path, body + "#\n" * (pad + 1), "c.conf")
    err = one_line_error(ck("board", "check", p), 2)
    assert "more than %d lines" % CONFIG_LINES_MAX in err


# -- item 10: core analyze of a core with offsets past 2^63 ---------------------------
def tiny_core(phoff=64, load_off=0x1000):
    import struct
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, 2, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, 64 + 112, 0, 0, 0, 0, 4)        # PT_NOTE, empty
    ph += struct.pack("<IIQQQQQQ", 1, 5, load_off, 0x400000, 0, 0x1000, 0x1000, 0x1000)
    return eh + ph


def test_core_analyze_offset_past_2_63_is_one_line(tmp_path):
    p = tmp_path / "c.core"
    p.write_bytes(tiny_core(phoff=1 << 63))
    err = one_line_error(ck("core", "analyze", str(p)), 3)
    assert "c.core" in err


# -- item 12: --exe is the exe used, or an error ----------------------------------------
def test_core_analyze_missing_exe_is_an_error(tmp_path):
    p = tmp_path / "c.core"
    p.write_bytes(tiny_core())
    err = one_line_error(ck("core", "analyze", str(p), "--exe", "/nonexistent/exe"), 4)
    assert "'/nonexistent/exe'" in err


# -- item 12: a record time of 2^63 ----------------------------------------------------
def test_list_with_a_record_time_of_2_63(area):
    import json
    sys.path.insert(0, ROOT)
    from crashkeep.system import keeparea
    a = keeparea.open_area(area)
    a.put("far", b"x", wall_time=1 << 63, uptime_ms=1, boot_id="")
    a.close()
    r = ck("list", "--device", area)
    assert r.returncode == 0 and b"far" in r.stdout, r.stderr
    r = ck("list", "--json", "--device", area)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["records"][0]["wall_time"] == 1 << 63


# -- item 12: save --follow keeps the old tail over a log rotation ------------------------
def test_follow_keeps_the_tail_until_the_rotated_log_has_content(area, tmp_path):
    import time
    log = tmp_path / "messages"
    log.write_bytes(b"old line\n")
    e = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, "-m", "crashkeep", "save", str(log), "--name", "m",
                          "--follow", "--interval", "0.02", "--device", area], env=e, cwd=ROOT)

    def kept():
        return ck("dump", "m", "--device", area).stdout

    def wait_for(want):
        for _ in range(500):
            got = kept()
            if got == want:
                return got
            time.sleep(0.02)
        return got
    try:
        assert wait_for(b"old line\n") == b"old line\n"
        os.rename(str(log), str(log) + ".1")
        log.write_bytes(b"")
        # the follower sees the new empty file many times over in this many dumps
        for _ in range(30):
            assert kept() == b"old line\n"
        log.write_bytes(b"new line\n")
        assert wait_for(b"new line\n") == b"new line\n"
    finally:
        p.terminate()
        p.wait(30)


# -- core.max_files: the gzip cores in core.dir are capped, oldest removed first ------
def test_core_dir_keeps_at_most_max_files(tmp_path):
    import gzip
    t = str(tmp_path)
    img = t + "/keep.img"
    open(img, "wb").write(bytes(256 << 10))
    cores = t + "/cores"
    b = conf(tmp_path, "board.name = t\nphram.name = ck\nphram.start = 0x1f080000\n"
                       "phram.len = 512K\ncore.dir = %s\ncore.max_files = 3\n"
                       "core.rate = 1000\n" % cores)
    os.makedirs(cores)
    open(cores + "/unrelated.txt", "w").write("not a core\n")
    for i in range(5):
        blob = b"core %d " % i * 2000
        r = ck("core", "--board", b, "--device", img, "--proc", t + "/noproc", "--",
               str(100 + i), str(100 + i), "11", str(1700000000 + i), "prog", input=blob)
        assert r.returncode == 0, r.stderr
        # the mtime order is the write order even on a coarse clock
        os.utime(cores + "/core-prog-%d.gz" % (100 + i), (1700000000 + i, 1700000000 + i))
    kept = sorted(n for n in os.listdir(cores) if n.endswith(".gz"))
    assert kept == ["core-prog-102.gz", "core-prog-103.gz", "core-prog-104.gz"], kept
    assert gzip.decompress(open(cores + "/core-prog-104.gz", "rb").read()) == b"core 4 " * 2000
    assert os.path.exists(cores + "/unrelated.txt")
    bad = conf(tmp_path, open(b).read().replace("max_files = 3", "max_files = 0"), "bad.conf")
    one_line_error(ck("board", "check", bad), 2)
