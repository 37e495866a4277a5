"""Fuzz the core reader and everything a core's bytes reach (notes, plan, vDSO ELF, CFI, report).

    python tests/fuzz/fuzz_core.py [-runs=N | -max_total_time=S] [corpus_dir]

Seeds: synthetic kernel-layout cores from tests/portable (one with an in-memory ELF
that has .eh_frame and .symtab mapped as the vDSO, so CFI parsing is reached).
Any exception other than FormatError is a bug.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "portable"))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from crashkeep.commands import core as corehandler  # noqa: F401
    from crashkeep.formats import elfcore, unwind, elffile
from crashkeep.errors import FormatError  # noqa: E402
from test_elfcore import Pipe, sample, make_core  # noqa: E402
import test_unwind as tu  # noqa: E402


def seeds():
    sp = tu.STACK - 0x1000
    ctx = sp + 8
    saved = tu.STACK - 0x800
    words = {sp: tu.BASE + tu.TRAMP, ctx + 0x28: saved, ctx + 0x30: tu.BASE + tu.MID + 4,
             saved + 8: tu.BASE + tu.TOP + 0x10}
    small_stack = [(tu.BASE, tu.make_elf(), 0x1000, 5),
                   (tu.STACK - 0x2000, tu.stack_with(words, sp)[-0x2000:], 0x2000, 6)]
    vd = make_core([(9, {"rip": tu.BASE + tu.LEAF + 4, "rsp": sp})], small_stack,
                   auxv=[(elfcore.AT_SYSINFO_EHDR, tu.BASE)])
    return [vd, sample()[:0x3000]]


def one(data):
    try:
        more = corehandler.MoreMemory([], None)
        core = elfcore.read_core(Pipe(data, 65536), more=more)
        maps = corehandler.core_maps(core)
        tr = corehandler.backtraces(core, maps, strict=True, mods=more.mods)
        corehandler.render_text(corehandler.build_report(core, maps, tr))
        core.stream.drain()
    except FormatError:
        pass


def main():
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        corpus = os.path.join(os.environ.get("TMPDIR", "/tmp"), "crashkeep-core-corpus")
        os.makedirs(corpus, exist_ok=True)
        argv.append(corpus)
    corpus = [a for a in argv[1:] if not a.startswith("-")][0]
    for i, s in enumerate(seeds()):
        with open(os.path.join(corpus, "seed%d" % i), "wb") as f:
            f.write(s)
    for s in seeds():
        one(s)
    atheris.Setup(argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
