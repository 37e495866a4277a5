"""Block copier, both twins, against GNU dd's own output as the oracle."""
import itertools
import os
import random
import subprocess
import sys

import pytest

from crashkeep.system import blockcopy, _blockcopy_py

try:
    from crashkeep.system import _blockcopy_c
except ImportError:           # CRASHKEEP_PUREPYTHON=1 runs skip the compiled twin only
    _blockcopy_c = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWINS = [pytest.param(_blockcopy_py, id="py"),
         pytest.param(_blockcopy_c, id="c",
                      marks=pytest.mark.skipif(_blockcopy_c is None, reason="not compiled"))]
SIZE = 200_003                # odd: no block size divides it


@pytest.fixture(params=TWINS)
def twin(request, monkeypatch):
    monkeypatch.setattr(blockcopy, "copy_range", request.param.copy_range)
    return request.param


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    p = tmp_path_factory.mktemp("src") / "src.bin"
    p.write_bytes(random.Random(5).randbytes(SIZE))
    return str(p)


def dd(*args):
    subprocess.run(["dd", "status=none", *args], check=True)


def prior(path):
    with open(path, "wb") as f:
        f.write(b"\xee" * 70_000)     # what was there before: dd keeps it before seek


def dd_oracle(src, dst, skip, seek, count, bs, keep=False):
    # GNU dd truncates the whole output when seek < bs in seek_bytes mode (its
    # O_TRUNC test looks at whole records), so prior content is compared only
    # where dd itself keeps it (test_truncates_at_seek_like_dd).
    if keep:
        prior(dst)
    elif os.path.exists(dst):
        os.unlink(dst)
    args = ["if=" + src, "of=" + dst, "bs=%d" % bs, "iflag=skip_bytes,count_bytes",
            "oflag=seek_bytes", "skip=%d" % skip, "seek=%d" % seek]
    if count is not None:
        args.append("count=%d" % count)
    dd(*args)
    with open(dst, "rb") as f:
        out = f.read()
    if not keep and len(out) < seek:
        # same quirk: with O_TRUNC dd skips its ftruncate(seek), so an empty copy
        # leaves a shorter file than with whole-record seeks (bs=1 gives `seek` zeros)
        out += bytes(seek - len(out))
    return out


CASES = list(itertools.product(
    [0, 1, 511, 512, 4097, SIZE - 1, SIZE, SIZE + 9],      # skip
    [0, 7, 4096, 69_999],                                   # seek
    [None, 0, 1, 513, 65536, SIZE],                         # count
))
random.Random(1).shuffle(CASES)


@pytest.mark.parametrize("bs", [1, 7, 512, 4096, 1 << 20])
def test_offsets_match_dd(twin, src, tmp_path, bs):
    cases = CASES if bs >= 512 else CASES[:24]    # bs=1 through dd is slow: a sample
    for skip, seek, count in cases:
        want = dd_oracle(src, str(tmp_path / "dd.out"), skip, seek, count, bs)
        out = str(tmp_path / "ck.out")
        if os.path.exists(out):
            os.unlink(out)
        n = blockcopy.copy(src, out, skip=skip, seek=seek, count=count, bs=bs)
        with open(out, "rb") as f:
            got = f.read()
        assert got == want, (skip, seek, count, bs)
        assert n == len(want) - seek


@pytest.mark.parametrize("n", [0, 1, 4096, 65536, SIZE - 1, SIZE, SIZE * 2])
def test_tail_matches_dd_bs1_and_tail_c(twin, src, tmp_path, n):
    out = str(tmp_path / "ck.out")
    blockcopy.copy(src, out, tail=n, bs=4096)
    skip = max(0, SIZE - n)
    want = dd_oracle(src, str(tmp_path / "dd.out"), skip, 0, None, 65536)
    with open(out, "rb") as f:
        got = f.read()
    assert got == want
    tail_c = subprocess.run(["tail", "-c", str(n), src], capture_output=True, check=True).stdout
    assert got == tail_c


def test_the_notes_formula_case(twin, tmp_path):
    """The note keeps 64 KiB with dd bs=1; its bs=512 formula copies the wrong bytes.

    Reconstructed formula: skip=$(( (fsize - len) / 512 + 1 )) count=$(( len / 512 )).
    With (fsize - len) % 512 == 336 it copies 65360 bytes starting 176 bytes past
    the wanted offset; crashkeep copy --tail gives dd bs=1's bytes exactly.
    """
    length = 65536
    fsize = length + 512 * 300 + 336
    path = str(tmp_path / "messages")
    data = random.Random(7).randbytes(fsize)
    with open(path, "wb") as f:
        f.write(data)
    want_off = fsize - length
    dd("if=" + path, "of=" + str(tmp_path / "bs1"), "bs=1", "count=%d" % length,
       "skip=%d" % want_off)
    dd("if=" + path, "of=" + str(tmp_path / "formula"), "bs=512", "count=%d" % (length // 512),
       "skip=%d" % ((fsize - length) // 512 + 1))
    blockcopy.copy(path, str(tmp_path / "ck"), tail=length)
    bs1 = open(tmp_path / "bs1", "rb").read()
    formula = open(tmp_path / "formula", "rb").read()
    assert bs1 == data[want_off:]
    assert len(formula) == 65360 and formula == data[want_off + 176:]
    assert open(tmp_path / "ck", "rb").read() == bs1


def test_truncates_at_seek_like_dd(twin, src, tmp_path):
    for seek, count in ((4096, 100), (8192, None), (69_632, 10)):
        want = dd_oracle(src, str(tmp_path / "dd.out"), 3, seek, count, 4096, keep=True)
        out = str(tmp_path / "ck.out")
        prior(out)
        blockcopy.copy(src, out, skip=3, seek=seek, count=count)
        assert open(out, "rb").read() == want
        assert want[:seek] == b"\xee" * seek


def test_notrunc_keeps_bytes_after_the_range(twin, src, tmp_path):
    out = str(tmp_path / "out")
    prior(out)
    blockcopy.copy(src, out, skip=10, seek=100, count=50, notrunc=True)
    dd("if=" + src, "of=" + str(tmp_path / "dd"), "bs=4096", "iflag=skip_bytes,count_bytes",
       "oflag=seek_bytes", "conv=notrunc", "skip=10", "seek=100", "count=50")
    # dd's oracle file started from the same prior content
    ref = str(tmp_path / "ref")
    prior(ref)
    dd("if=" + src, "of=" + ref, "bs=4096", "iflag=skip_bytes,count_bytes",
       "oflag=seek_bytes", "conv=notrunc", "skip=10", "seek=100", "count=50")
    assert open(out, "rb").read() == open(ref, "rb").read()


class Flaky:
    """A file that reads and writes at most `step` bytes a call, as pipes,
    signals and some drivers make real files do."""

    def __init__(self, f, step):
        self.f = f
        self.step = step

    def readinto(self, mv):
        return self.f.readinto(mv[:self.step])

    def write(self, mv):
        return self.f.write(mv[:self.step])

    def seek(self, *a):
        return self.f.seek(*a)


def test_short_reads_and_writes_pure(src, tmp_path):
    out = str(tmp_path / "out")
    with open(src, "rb", buffering=0) as s, open(out, "wb", buffering=0) as d:
        n = _blockcopy_py.copy_range(Flaky(s, 333), Flaky(d, 97), 5, 0, 10_000, 4096, 0,
                                     True, True)
    assert n == 10_000
    assert open(out, "rb").read() == open(src, "rb").read()[5:10_005]


def test_pipes_short_reads_and_stream_skip(twin, src, tmp_path):
    """A pipe source delivers short reads; skip on it reads and drops bytes."""
    out = str(tmp_path / "out")
    feeder = ("import sys,time\nd=open(%r,'rb').read()\n"
              "for i in range(0,len(d),1000):\n sys.stdout.buffer.write(d[i:i+1000]);"
              " sys.stdout.flush()\n" % src)
    p = subprocess.Popen([sys.executable, "-c", feeder], stdout=subprocess.PIPE)
    with open(out, "wb", buffering=0) as d:
        n = twin.copy_range(p.stdout, d, 12_345, 0, -1, 65536, 0, False, True)
    p.wait()
    assert n == SIZE - 12_345
    assert open(out, "rb").read() == open(src, "rb").read()[12_345:]


def test_tail_of_a_pipe(src, tmp_path):
    data = open(src, "rb").read()
    for n in (0, 1, 999, 1000, 65536, SIZE, SIZE + 1):
        r = subprocess.run([sys.executable, "-m", "crashkeep", "copy", "-", str(tmp_path / "o"),
                            "--tail", str(n)], input=data, capture_output=True,
                           env=dict(os.environ, PYTHONPATH=ROOT))
        assert r.returncode == 0, r.stderr
        assert open(tmp_path / "o", "rb").read() == (data[-n:] if n else b"")


def test_tail_stream_ring():
    import io
    data = bytes(range(256)) * 50
    for n in (1, 7, 255, 256, 1000, len(data), len(data) + 3):
        for bs in (1, 5, 256, 4096):
            got, total = blockcopy.tail_stream(io.BytesIO(data), n, bs)
            assert got == data[-n:] and total == len(data), (n, bs)


def test_erase_block_alignment_of_writes(twin, tmp_path):
    """With align set, every write after the first starts on an erase block."""
    src = str(tmp_path / "s")
    with open(src, "wb") as f:
        f.write(os.urandom(50_000))
    offsets = []

    class Rec:
        def __init__(self, f):
            self.f = f
            self.pos = 0

        def fileno(self):
            return self.f.fileno()

        def seek(self, p, w=0):
            self.pos = self.f.seek(p, w)
            return self.pos

        def write(self, mv):
            offsets.append(self.pos)
            k = self.f.write(mv)
            self.pos += k
            return k
    if twin is _blockcopy_py:
        with open(src, "rb", buffering=0) as s, open(tmp_path / "d", "wb", buffering=0) as d:
            twin.copy_range(s, Rec(d), 0, 1000, -1, 8192, 4096, True, True)
        assert offsets[0] == 1000 and all(o % 4096 == 0 for o in offsets[1:])
        assert offsets[1] == 4096
    data = open(src, "rb").read()
    with open(src, "rb", buffering=0) as s, open(tmp_path / "d2", "wb", buffering=0) as d:
        assert twin.copy_range(s, d, 0, 1000, -1, 8192, 4096, True, True) == 50_000
    assert open(tmp_path / "d2", "rb").read() == bytes(1000) + data


def test_missing_source_is_one_clear_error(tmp_path):
    from crashkeep.errors import DeviceError
    with pytest.raises(DeviceError, match="Failed to open '.*nope'"):
        blockcopy.copy(str(tmp_path / "nope"), str(tmp_path / "o"))


def test_dispatcher_picks_compiled_unless_pure():
    code = "from crashkeep.system import blockcopy; print(blockcopy.IMPL)"
    env = dict(os.environ, PYTHONPATH=ROOT, CRASHKEEP_PUREPYTHON="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "py"
    if _blockcopy_c is not None:
        env.pop("CRASHKEEP_PUREPYTHON")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert r.stdout.strip() == "c"


def test_eintr_is_retried(twin, src, tmp_path):
    """A signal every millisecond while reading a slow pipe: reads get EINTR
    (Python installs handlers without SA_RESTART) and the copy goes on."""
    import signal
    ticks = []
    old = signal.signal(signal.SIGALRM, lambda *a: ticks.append(1))
    feeder = ("import sys,time\nd=open(%r,'rb').read()\n"
              "for i in range(0,len(d),20000):\n sys.stdout.buffer.write(d[i:i+20000]);"
              " sys.stdout.flush(); time.sleep(0.01)\n" % src)
    p = subprocess.Popen([sys.executable, "-c", feeder], stdout=subprocess.PIPE)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        with open(tmp_path / "o", "wb", buffering=0) as d:
            n = twin.copy_range(p.stdout, d, 0, 0, -1, 1 << 20, 0, False, True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    p.wait()
    assert n == SIZE
    assert open(tmp_path / "o", "rb").read() == open(src, "rb").read()
