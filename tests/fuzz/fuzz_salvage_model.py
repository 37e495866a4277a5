"""The long run of the salvage model (tests/portable/test_salvage_model.py).

    python3 tests/fuzz/fuzz_salvage_model.py [-runs=N] [-seed=S] [-max_total_time=SECONDS]

Runs sequences S, S+1, ... (default 1, 100000 sequences, no time limit) in
batches of 500 and prints progress; a failure names the seed and its steps
(replay: CRASHKEEP_MODEL_SEED=S CRASHKEEP_MODEL_SEQUENCES=1 pytest
tests/portable/test_salvage_model.py). CI runs DEFAULT_SEQUENCES of them.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "portable"))

import test_salvage_model as model  # noqa: E402

BATCH = 500


def main(argv):
    opts = {"runs": 100000, "seed": 1, "max_total_time": 0}
    for a in argv:
        k, _, v = a.lstrip("-").partition("=")
        if k not in opts or not v.isdigit():
            sys.stderr.write("usage: %s [-runs=N] [-seed=S] [-max_total_time=S]\n" % sys.argv[0])
            return 2
        opts[k] = int(v)
    t0 = time.monotonic()
    done = boots = 0
    seed = opts["seed"]
    while done < opts["runs"]:
        n = min(BATCH, opts["runs"] - done)
        boots += model.run_model(n, seed)
        seed += n
        done += n
        el = time.monotonic() - t0
        sys.stderr.write("#%d sequences, %d boots, %.0f s\n" % (done, boots, el))
        if opts["max_total_time"] and el >= opts["max_total_time"]:
            break
    sys.stderr.write("Done %d sequences (seeds %d..%d), %d boots\n"
                     % (done, opts["seed"], seed - 1, boots))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
