"""Build the Cython accelerators when possible; install pure Python otherwise.

Every accelerated unit has a pure twin with the same names (crashkeep/<pkg>/_X_py.py
beside crashkeep/<pkg>/_X_c.pyx), so a failed or skipped compile only costs speed.
CRASHKEEP_PUREPYTHON=1 skips the compile entirely.
"""
import glob
import os

from setuptools import Extension, setup


def extensions():
    if os.environ.get("CRASHKEEP_PUREPYTHON") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    exts = [Extension(p[:-4].replace("/", "."), [p], optional=True)
            for p in sorted(glob.glob("crashkeep/**/_*_c.pyx", recursive=True))]
    if not exts:
        return []
    return cythonize(exts, language_level=3, quiet=True)


setup(ext_modules=extensions())
