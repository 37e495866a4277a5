"""Run the portable tests (tests/portable/test_*.py) without pytest: under MicroPython,
which has no unittest, or under CPython as a cross-check.

    micropython tests/mp_runner.py [test_module ...]

Each test module's plain `test_*` functions are called in order; a failure is
reported with its exception and the run exits non-zero.
"""
import gc
import os
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
ROOT = HERE + "/.." if HERE != "." else ".."
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE + "/portable")


def modules(argv):
    if argv:
        return [a.rsplit("/", 1)[-1].replace(".py", "") for a in argv]
    return sorted(n[:-3] for n in os.listdir(HERE + "/portable")
                  if n.startswith("test_") and n.endswith(".py"))


def main(argv):
    passed = failed = skipped = 0
    for name in modules(argv):
        mod = __import__(name)
        tests = sorted(n for n in dir(mod) if n.startswith("test_"))
        for t in tests:
            fn = getattr(mod, t)
            gc.collect()    # a 2 MiB heap: leave each test an unfragmented one
            try:
                fn()
                passed += 1
            except Exception as e:  # report and go on: one failure must not hide the rest
                if type(e).__name__ == "Skip":
                    skipped += 1
                    print("SKIP %s.%s: %s" % (name, t, e))
                    continue
                failed += 1
                print("FAIL %s.%s: %s: %s" % (name, t, type(e).__name__, e))
                if hasattr(sys, "print_exception"):
                    sys.print_exception(e)
    impl = sys.implementation.name
    print("%s: %d passed, %d failed, %d skipped" % (impl, passed, failed, skipped))
    return 1 if failed or not passed else 0


sys.exit(main(sys.argv[1:]))
