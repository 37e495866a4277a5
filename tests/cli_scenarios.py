"""The binary-level CLI scenarios: one list, several runners.

Everything here needs no kernel: board, save/dump/list/clear/copy on file
devices, ramoops list/extract of the kernel fixtures, core analyze of a core
made on the host. A scenario is a few files (Inputs) and the command lines to
run on them, in order, in a fresh directory; its transcript is each step's
(exit status, stdout, stderr) plus what the directory holds afterwards. Two
runners that agree give byte-identical transcripts:
  tests/test_binary.py          host binary == `python -m crashkeep`
  tests/test_binary_targets.py  each target's binary under qemu-user == host binary

Every scenario is deterministic: the keep areas are written with fixed times
and boot ids (a `save` stamps the wall clock and uptime, so scenarios that save
read back only payloads), paths are relative to the scenario's directory.
"""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "ramoops")
BOARDS = os.path.join(ROOT, "board-configs")
AREA_SIZE = 512 << 10


class Scenario:
    def __init__(self, id, steps, core=False):
        self.id = id
        # [(argv, stdin bytes or None)]
        self.steps = [(s, None) if isinstance(s, list) else s for s in steps]
        self.core = core        # needs the host-made core (gcc, a crash)

    def __repr__(self):
        return self.id


def _board_scenarios():
    out = []
    for conf in sorted(os.listdir(BOARDS)):
        if not conf.endswith(".conf"):
            continue
        name = conf[:-5]
        c = "boards/" + conf
        out.append(Scenario("board-" + name, [
            ["board", "show", c], ["board", "show", "--json", c], ["board", "check", c],
            ["board", "cmdline", c], ["board", "dts", c], ["board", "modules", c]]))
    out.append(Scenario("board-errors", [
        ["board", "show", "missing.conf"], ["board", "check", "bad.conf"],
        ["board", "cmdline", "bad.conf"], ["board", "show", "--json", "garbage.bin"]]))
    return out


def _fixture_cases():
    return sorted(d for d in os.listdir(FIX) if os.path.exists(os.path.join(FIX, d, "case.json")))


def _size_args(meta):
    p = meta["params"]
    args = ["--mem-size", str(p["mem_size"])]
    for k in ("record_size", "console_size", "ftrace_size", "pmsg_size", "ecc"):
        args += ["--" + k.replace("_", "-"), "0x%x" % p[k]]
    return args + ["--cpus", str(meta["cpus"])]


def _ramoops_scenarios():
    out = []
    for case in _fixture_cases():
        meta = json.load(open(os.path.join(FIX, case, "case.json")))
        img = "ramoops/%s.img" % case
        args = _size_args(meta)
        extra = ["--no-inflate"] if "pstore.compress=none" in meta["cmdline"] else []
        out.append(Scenario("ramoops-" + case, [
            ["ramoops", "list", img] + args,
            ["ramoops", "list", "--json", img] + args,
            ["ramoops", "extract", img, "--out", "out"] + args + extra]))
    out.append(Scenario("ramoops-errors", [
        ["ramoops", "list", "missing.img"],
        ["ramoops", "extract", "garbage.bin", "--out", "out", "--mem-size", "0x100000"],
        ["ramoops", "list", "garbage.bin", "--record-size", "0x3"]]))
    return out


def _record_scenarios():
    dev = ["--device", "area.img"]
    empty = ["--device", "empty.img"]
    return [
        Scenario("records-read", [
            ["list"] + dev, ["list", "--json"] + dev, ["dump", "messages"] + dev,
            ["dump", "note", "--json"] + dev, ["dump", "--all"] + dev,
            ["dump", "--all", "--json"] + dev, ["dump", "--all", "--out", "dumped"] + dev,
            ["dump", "--raw", "--out", "raw.bin"] + dev, ["dump", "nosuch"] + dev]),
        Scenario("records-clear", [
            ["clear", "note"] + dev, ["clear", "note"] + dev, ["list", "--json"] + dev,
            ["clear", "--all"] + dev, ["list"] + dev, ["list", "--json"] + dev]),
        Scenario("records-save", [
            ["save", "messages.log", "--name", "messages", "--max-bytes", "4K"] + empty,
            (["save", "-", "--name", "note"] + empty, b"hello from stdin\n"),
            ["save", "messages.log", "--name", "messages", "--max-bytes", "16K"] + empty,
            ["dump", "messages"] + empty, ["dump", "note"] + empty,
            ["save", "messages.log", "--name", "bad name!"] + empty,
            ["save", "missing.log", "--name", "x"] + empty,
            ["save", "messages.log", "--name", "big", "--max-bytes", "1M"] + empty,
            ["clear", "--all"] + empty, ["list", "--json"] + empty]),
        Scenario("copy", [
            ["copy", "messages.log", "copy1"],
            ["copy", "--skip", "100", "--count", "5000", "--bs", "512", "messages.log", "copy2"],
            ["copy", "--tail", "4096", "messages.log", "copy3"],
            ["copy", "--seek", "4096", "--notrunc", "messages.log", "empty.img"],
            ["copy", "missing.log", "copy4"]]),
        Scenario("cli", [
            ["--version"], ["--help"], ["boot", "--help"], ["board", "--help"],
            ["no-such-command"], ["save"], ["dump", "--device"]]),
    ]


def _core_scenarios():
    return [Scenario("core-analyze", [
        ["core", "analyze", "core/core"], ["core", "analyze", "--json", "core/core"],
        ["core", "analyze", "--exe", "core/chain", "core/core"],
        ["core", "analyze", "messages.log"], ["core", "analyze", "missing.core"]], core=True)]


SCENARIOS = _board_scenarios() + _ramoops_scenarios() + _record_scenarios() + _core_scenarios()


# ---- inputs ------------------------------------------------------------------

def _log_text():
    return b"".join(b"Nov 26 06:%02d:00 router kernel: line %d\n" % (i % 60, i)
                    for i in range(3000))


def _area(path, records):
    """A keep area written through the library with fixed times: deterministic."""
    sys.path.insert(0, ROOT)
    from crashkeep.system import keeparea
    with open(path, "wb") as f:
        f.write(bytes(AREA_SIZE))
    area = keeparea.open_area(path, firmware="crashkeep-test 1")
    try:
        for i, (name, payload) in enumerate(records):
            area.put(name, payload, source="/var/log/" + name, wall_time=1795000000 + i,
                     uptime_ms=12345 + i, boot_id="6d2c4b8e-0f1a-4e2b-9c3d-1a2b3c4d5e6f")
    finally:
        area.close()


def _core(d):
    """An x86_64 core of a small crashing program (the kernel's, else gdb's)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import test_unwind_gdb as g
    src = os.path.join(d, "chain.c")
    with open(src, "w") as f:
        f.write(g.SRC_CHAIN)     # the gdb tests' own crashing program
    exe = os.path.join(d, "chain")
    subprocess.run(["gcc", "-O2", "-g0", "-o", exe, src], check=True, capture_output=True)
    core = g.capture_core(d, exe)
    os.rename(core, os.path.join(d, "core"))
    for n in os.listdir(d):
        if n not in ("core", "chain"):
            os.unlink(os.path.join(d, n))


class Inputs:
    """The files every scenario starts from, made once (a core only if asked)."""

    def __init__(self, base):
        self.base = base
        self.dir = os.path.join(base, "inputs")
        os.makedirs(os.path.join(self.dir, "ramoops"))
        shutil.copytree(BOARDS, os.path.join(self.dir, "boards"))
        with open(os.path.join(BOARDS, "qemu-x86_64.conf")) as f:
            conf = f.read()
        self._write("bad.conf", conf + "phram.bogus = 1\n")
        self._write("garbage.bin", bytes(range(256)) * 16)
        log = _log_text()
        self._write("messages.log", log)
        self._write("empty.img", bytes(AREA_SIZE))
        _area(os.path.join(self.dir, "area.img"),
              [("messages", log[-8192:]), ("note", b"a note\n"), ("bin", bytes(range(256)))])
        for case in _fixture_cases():
            data = gzip.open(os.path.join(FIX, case, "region.bin.gz")).read()
            self._write("ramoops/%s.img" % case, data)
        self.core_dir = None

    def _write(self, name, data):
        with open(os.path.join(self.dir, name), "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)

    def add_core(self):
        """core/core and core/chain, made on first use and kept apart: only the
        scenarios that ask get them (the files left behind are compared)."""
        if self.core_dir is None:
            d = os.path.join(self.base, "core")
            os.makedirs(d)
            _core(d)
            self.core_dir = d


# ---- running -----------------------------------------------------------------

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


def _tree(d, since, kept_times=("core/",)):
    """{relative path: (size, sha256[, mtime])} of every file under d. Times
    only where a program set one in the past (extract copies the kernel's);
    never for inputs copied in with their times kept (the core: its age depends
    on when the run happens, not on the program)."""
    out = {}
    for top, dirs, files in os.walk(d):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(top, n)
            st = os.lstat(p)
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            entry = (st.st_size, digest)
            rel = os.path.relpath(p, d)
            if st.st_mtime < since - 60 and not rel.startswith(kept_times):
                entry += (int(st.st_mtime),)
            out[rel] = entry
    return out


def run(scenario, prefix, inputs, workdir, env=None, timeout=120):
    """Run the scenario's steps with `prefix` (the command that is crashkeep)
    in a fresh copy of the inputs; return its transcript."""
    # shutil.copy, not copy2: fresh times, so that only times a program sets count
    shutil.copytree(inputs.dir, workdir, symlinks=True, copy_function=shutil.copy)
    if scenario.core:
        inputs.add_core()
        # copy2: core analyze prints the core's time (its mtime)
        shutil.copytree(inputs.core_dir, os.path.join(workdir, "core"))
    since = time.time()
    steps = []
    for argv, stdin in scenario.steps:
        r = subprocess.run(list(prefix) + argv, input=stdin or b"", capture_output=True,
                           cwd=workdir, env=dict(ENV, **(env or {})), timeout=timeout)
        steps.append((argv, r.returncode, r.stdout, r.stderr))
    return steps, _tree(workdir, since)


def assert_same(got, want, what):
    """Step by step, so that a failure names the command line."""
    for (argv, rc, out, err), (_, wrc, wout, werr) in zip(got[0], want[0]):
        assert (rc, err.decode(errors="replace")) == (wrc, werr.decode(errors="replace")), \
            "%s: crashkeep %s" % (what, " ".join(argv))
        assert out == wout, "%s: crashkeep %s: stdout differs" % (what, " ".join(argv))
    assert got[1] == want[1], "%s: the files left behind differ" % what
