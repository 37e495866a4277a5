"""A brief run of the core fuzzer in CI (the long run is done by hand: see tests/fuzz/fuzz_core.py)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_core_fuzzer_brief(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    r = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_core.py"),
                        "-runs=3000", "-seed=1", "-artifact_prefix=%s/" % tmp_path, str(corpus)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Done 3000 runs" in r.stderr
