"""Build build/out/crashkeep: one fully static executable, for the host or
for other targets.

  mkbinary.py                         -> out/crashkeep (the host's arch)
  mkbinary.py --target T [--target U] -> out/crashkeep-T, out/crashkeep-U
      T: aarch64 | armhf | mipsel | x86_64

Run by `make -C build` with the build venv's Python (made from Debian's
/usr/bin/python3.11, the version of the static libpython3.11.a it links).
Everything up to the C sources (Cython, the frozen closure, the inittab) is
made once on the host and shared by every target: host and targets are all
Debian's CPython 3.11.2 (same config.c; checked). Only compiling and linking
are per target, with Debian's cross gcc and the target's libpython3.11.a from
a sysroot that sysroot.sh builds from Debian packages (cached outside the
repo).

What goes in:
- every crashkeep module (crashkeep/**/*.py, found at build time) and every
  accelerator (crashkeep/**/_*_c.pyx), each compiled to C by Cython and to an
  object by gcc, registered with PyImport_AppendInittab under its dotted name
  (gen/modules.c); the launcher installs a meta-path finder that maps those
  dotted names (and packages) to the BuiltinImporter;
- the pure-Python stdlib and CLI modules (typer-slim, click, annotated-doc)
  that crashkeep can import, found with modulefinder over the crashkeep
  sources (every import, also the ones inside functions), minus EXCLUDE;
  frozen as marshalled code objects (gen/frozen.c, PyImport_FrozenModules);
- the CPython runtime from Debian's libpython3.11.a, with our own inittab
  (gen/config.c) listing only BUILTINS: builtin modules nobody imports are
  not linked in (the size lever);
- launcher.c: main() with an isolated PyConfig (no site, no sys.path, no
  environment, UTF-8 mode), which calls crashkeep.cli.main.main().

Incremental: a module is re-cythonized/re-compiled only when its source (or
the toolchain) changed; `make -C build` with nothing changed takes ~1 s.
Environment: CRASHKEEP_CFLAGS overrides the optimisation flags (default -Os).
"""
import concurrent.futures
import functools
import hashlib
import marshal
import modulefinder
import os
import re
import shutil
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work")
GEN = os.path.join(WORK, "gen")
OBJ = os.path.join(WORK, "obj")
OUT = os.path.join(HERE, "out", "crashkeep")
PYINC = "/usr/include/python3.11"
# target -> GNU triplet (Debian's cross gcc is <triplet>-gcc)
TARGETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
           "armhf": "arm-linux-gnueabihf", "mipsel": "mipsel-linux-gnu"}
CFLAGS = os.environ.get("CRASHKEEP_CFLAGS", "-Os").split()
# Plain (non-accelerator) modules: no cached global lookups (about 5% less
# code; a dict lookup per global name is nothing next to the I/O they do).
SMALL_DEFINES = ["-DCYTHON_USE_DICT_VERSIONS=0"]
# Nothing unwinds through our code (no C++ exceptions, no thread cancellation).
CFLAGS_EXTRA = ["-fno-asynchronous-unwind-tables", "-fno-unwind-tables"]

# Builtin (C) modules linked in. Everything CPython's startup needs, plus what
# crashkeep and its frozen closure import. Not listed (so not linked):
# unicodedata, pyexpat, _elementtree, the hashes, _socket, _pickle, _csv,
# _datetime, array, cmath, _statistics, spwd, syslog, grp, xxsubtype, _symtable.
BUILTINS = [
    # core (no init function or always needed by the interpreter itself)
    "marshal", "_imp", "_ast", "_tokenize", "builtins", "sys", "gc", "_warnings", "_string",
    "posix", "errno", "_io", "_codecs", "_thread", "_signal", "_weakref", "_abc",
    "_functools", "_operator", "_collections", "itertools", "_sre", "_stat", "time",
    "atexit", "_tracemalloc", "faulthandler", "_locale", "pwd",
    # used by crashkeep or the frozen closure
    "fcntl", "zlib", "binascii", "select", "_struct", "math", "_bisect", "_heapq",
    "_opcode", "_posixsubprocess",
]
# Init function names that are not PyInit_<name>.
INIT_FUNC = {"marshal": "PyMarshal_Init", "_warnings": "_PyWarnings_Init",
             "builtins": None, "sys": None}

# Modules modulefinder sees but crashkeep never needs in the binary (Windows
# or optional back-ends, test/debug tooling, things a static build cannot
# load). Each entry also drops its submodules.
EXCLUDE = [
    # cannot work in a static build, or other platforms
    "ctypes", "_ctypes", "tkinter", "curses", "readline", "ssl", "_ssl", "sqlite3",
    "bz2", "lzma", "_compression", "hashlib", "_hashlib", "_winapi", "msvcrt", "winreg",
    "_winreg", "nt", "_overlapped", "vms_lib", "java", "_osx_support", "_aix_support",
    "_bootsubprocess", "nturl2path", "encodings.mbcs", "termios", "tty", "pty",
    "click._winconsole", "colorama", "micropython", "deflate",
    # optional back-ends typer/click try and do without (rich, shell detection)
    "rich", "shellingham", "pydantic", "typer.rich_utils",
    # tools and protocols nothing on crashkeep's paths imports: reached only
    # from `if __name__ == "__main__"` helpers or lazily from click's pager,
    # editor, progress bar and launch() (webbrowser, tempfile, random, glob)
    "unittest", "doctest", "pydoc", "pdb", "bdb", "cmd", "code", "codeop", "test",
    "lib2to3", "idlelib", "distutils", "setuptools", "pip", "ensurepip", "venv",
    "asyncio", "multiprocessing", "concurrent", "xml", "xmlrpc", "http", "email", "html",
    "urllib.request", "urllib.response", "urllib.error", "urllib.robotparser",
    "socket", "logging", "zipfile", "tarfile", "gzip", "pickle", "_pickle",
    "_compat_pickle", "decimal", "_pydecimal", "fractions", "statistics", "_strptime",
    "calendar", "pprint", "shlex", "netrc", "getpass", "sysconfig", "_sysconfigdata",
    "plistlib", "importlib.metadata", "importlib.resources", "importlib.readers",
    "zipimport", "runpy", "pkgutil", "tracemalloc", "uu", "quopri", "base64",
    "mimetypes", "py_compile", "compileall", "_pydatetime", "_pyio", "annotationlib",
    "_frozen_importlib", "_frozen_importlib_external", "argparse", "getopt",
    "webbrowser", "tempfile", "random", "glob", "click._termui_impl", "_py_abc",
    "_threading_local",
]
# Needed although no import statement names them: the codecs Python looks up
# by name at startup and for ASCII/Latin-1 I/O.
ALWAYS = ["encodings", "encodings.aliases", "encodings.utf_8", "encodings.ascii",
          "encodings.latin_1"]


# CPython's own frozen modules (Python/frozen.c), here as marshal data instead
# of libpython's deepfreeze.o (static objects, ~0.9 MB): same modules, same
# names and aliases, a third of the size, ~1 ms more unmarshalling at start.
# (name in the table, source module, table)
CPYTHON_TABLE = [
    ("_frozen_importlib", "importlib._bootstrap", "bootstrap"),
    ("_frozen_importlib_external", "importlib._bootstrap_external", "bootstrap"),
    ("zipimport", "zipimport", "bootstrap"),
    ("abc", "abc", "stdlib"),
    ("codecs", "codecs", "stdlib"),
    ("io", "io", "stdlib"),
    ("_collections_abc", "_collections_abc", "stdlib"),
    ("genericpath", "genericpath", "stdlib"),
    ("posixpath", "posixpath", "stdlib"),
    ("os.path", "posixpath", "stdlib"),
    ("os", "os", "stdlib"),
    ("stat", "stat", "stdlib"),
    ("importlib.util", "importlib.util", "stdlib"),
    ("importlib.machinery", "importlib.machinery", "stdlib"),
]
# In those tables already: not frozen again with the closure.
CPYTHON_FROZEN = {n for n, _, _ in CPYTHON_TABLE} | {src for _, src, _ in CPYTHON_TABLE}
CPYTHON_ALIASES = [("_frozen_importlib", "importlib._bootstrap"),
                   ("_frozen_importlib_external", "importlib._bootstrap_external"),
                   ("os.path", "posixpath")]


def cpython_frozen_c():
    """Replaces libpython's frozen.o + deepfreeze.o (so neither is linked)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    lines = ["#include <Python.h>", "",
             "struct ck_module_alias { const char *name; const char *orig; };", ""]
    tables = {"bootstrap": [], "stdlib": []}
    total = 0
    for i, (name, src, table) in enumerate(CPYTHON_TABLE):
        path = os.path.join(stdlib, *src.split(".")) + ".py"
        # The import system itself keeps its asserts and docstrings (as stock).
        opt = 0 if table == "bootstrap" else 2
        blob = marshal.dumps(compile(read(path), "<frozen %s>" % src, "exec",
                                     dont_inherit=True, optimize=opt))
        total += len(blob)
        lines.append(c_bytes("C%d" % i, blob))
        tables[table].append('    {"%s", C%d, %d, 0, NULL},' % (name, i, len(blob)))
    for t in ("bootstrap", "stdlib"):
        lines.append("static const struct _frozen %s_modules[] = {" % t)
        lines += tables[t]
        lines.append("    {0, 0, 0, 0, 0}")
        lines.append("};")
    lines.append("static const struct _frozen test_modules[] = {{0, 0, 0, 0, 0}};")
    lines.append("static const struct ck_module_alias aliases[] = {")
    lines += ['    {"%s", "%s"},' % a for a in CPYTHON_ALIASES]
    lines.append("    {0, 0}")
    lines.append("};")
    lines.append("""
const struct _frozen *PyImport_FrozenModules;
const struct ck_module_alias *_PyImport_FrozenAliases = aliases;
const struct _frozen *_PyImport_FrozenBootstrap = bootstrap_modules;
const struct _frozen *_PyImport_FrozenStdlib = stdlib_modules;
const struct _frozen *_PyImport_FrozenTest = test_modules;

/* deepfreeze.o's entry points: nothing is deep-frozen here. */
int _Py_Deepfreeze_Init(void) { return 0; }
void _Py_Deepfreeze_Fini(void) { }
""")
    return "\n".join(lines) + "\n", total


def log(msg):
    sys.stderr.write("mkbinary: %s\n" % msg)


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write_if_changed(path, data):
    if isinstance(data, str):
        data = data.encode()
    if os.path.exists(path) and read(path) == data:
        return False
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return True


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("mkbinary: failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r


# ---- crashkeep modules -> Cython -> objects --------------------------------

def crashkeep_modules():
    """[(dotted name, source path, is_package)] for every module to compile."""
    pkg = os.path.join(ROOT, "crashkeep")
    mods = []
    for d, dirs, files in os.walk(pkg):
        dirs[:] = sorted(x for x in dirs if not x.startswith((".", "__")) and
                         os.path.exists(os.path.join(d, x, "__init__.py")))
        rel = os.path.relpath(d, ROOT).split(os.sep)
        for f in sorted(files):
            if f.endswith(".py"):
                stem = f[:-3]
            elif f.endswith(".pyx") and f.startswith("_") and f[:-4].endswith("_c"):
                stem = f[:-4]
            else:
                continue
            if stem == "__main__" or not stem.replace("_", "a").isalnum():
                continue
            if stem == "__init__":
                mods.append((".".join(rel), os.path.join(d, f), True))
            else:
                mods.append((".".join(rel + [stem]), os.path.join(d, f), False))
    return mods


def c_ident(name):
    return "PyInit_ck_" + name.replace(".", "__")


def cython_version():
    import Cython
    return Cython.__version__


def cythonize_one(name, src, is_pkg):
    c = os.path.join(GEN, name + ".c")
    stamp = c + ".stamp"
    key = sha(read(src), name, cython_version(), "v4")
    if os.path.exists(c) and os.path.exists(stamp) and read(stamp).decode() == key:
        return c, False
    # Cython derives the qualified name from the package's __init__.py files.
    run([sys.executable, "-m", "cython", "-3", "--fast-fail", "-X", "binding=True",
         "-X", "embedsignature=False",
         # annotations stay Python metadata (typer reads them), never C types
         "-X", "annotation_typing=False",
         # ~4% less code per module; method calls are not on any hot path
         "-X", "optimize.unpack_method_calls=False", "-o", c, src], cwd=ROOT)
    write_if_changed(stamp, key)
    return c, True


def compile_one(tc, c_path, obj, defines=()):
    key = sha(read(c_path), " ".join(CFLAGS + CFLAGS_EXTRA), " ".join(defines), tc.cc,
              " ".join(tc.includes), "v2")
    stamp = obj + ".stamp"
    if os.path.exists(obj) and os.path.exists(stamp) and read(stamp).decode() == key:
        return obj, False
    cmd = ([tc.cc, "-c", "-o", obj, c_path] + ["-I" + i for i in tc.includes] +
           CFLAGS + ["-g0", "-DNDEBUG", "-fno-strict-aliasing", "-fwrapv", "-w",
                     "-ffunction-sections", "-fdata-sections"] + CFLAGS_EXTRA + list(defines))
    run(cmd)
    write_if_changed(stamp, key)
    return obj, True


# ---- frozen closure ----------------------------------------------------------

# What crashkeep modules may import (guarded) although no static build has it.
UNAVAILABLE = {"ctypes", "_ctypes", "micropython", "deflate", "mmap", "termios", "_hashlib",
               "_ssl", "_bz2", "_lzma", "_decimal", "resource", "_json"}


def excluded(name, excludes=None):
    for e in EXCLUDE if excludes is None else excludes:
        if name == e or name.startswith(e + "."):
            return True
    return False


def direct_imports(mods):
    """Top-level names of every module crashkeep's own sources import anywhere."""
    import ast
    names = set()
    for _, src, _ in mods:
        if not src.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(read(src))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return {n for n in names if not n.startswith("crashkeep")}


def find_closure(mods):
    """Pure-Python modules (name -> (path, is_package)) that crashkeep can import."""
    entry = os.path.join(WORK, "closure_entry.py")
    write_if_changed(entry, "".join("import %s\n" % n for n, _, _ in mods))
    path = [ROOT] + [p for p in sys.path if p and os.path.isdir(p)]
    # EXCLUDE trims what the CLI libraries might import; whatever crashkeep
    # itself imports (even inside a function) is always frozen.
    direct = direct_imports(mods)
    excludes = [e for e in EXCLUDE if e in UNAVAILABLE or
                not any(d == e or d.startswith(e + ".") for d in direct)]
    mf = modulefinder.ModuleFinder(path=path, excludes=excludes)
    # modulefinder does not read .pyx: the accelerators' imports are cimports
    # of C headers plus what their pure twins import (scanned anyway).
    mf.run_script(entry)
    for n in ALWAYS:
        mf.import_hook(n)
    out = {}
    for name, m in mf.modules.items():
        if name == "__main__" or name.startswith("crashkeep") or excluded(name, excludes):
            continue
        if name in CPYTHON_FROZEN or not m.__file__ or not m.__file__.endswith(".py"):
            continue
        out[name] = (m.__file__, bool(m.__path__))
    return out


# Frozen as plain marshal data in PyImport_FrozenModules: what the interpreter
# needs before the finder below can run. Everything else is stored zlib-
# compressed (about a third of the size) and loaded by the finder.
RAW = {"encodings", "encodings.aliases", "encodings.utf_8"}


def c_bytes(name, blob):
    return "static const unsigned char %s[] = {%s};" % (name, ",".join(map(str, blob)))


def frozen_c(closure, pkgs):
    """(C source of the frozen table and the compressed store, sizes)."""
    import zlib
    lines = ["#include <Python.h>", ""]
    table = []
    index = {}
    zparts = []
    zoff = 0
    raw_total = 0
    for i, name in enumerate(sorted(closure)):
        path, is_pkg = closure[name]
        code = compile(read(path), "<frozen %s>" % name, "exec", dont_inherit=True, optimize=2)
        blob = marshal.dumps(code)
        raw_total += len(blob)
        if name in RAW:
            lines.append(c_bytes("M%d" % i, blob))
            table.append('    {"%s", M%d, %d, %d, NULL},' % (name, i, len(blob), int(is_pkg)))
        else:
            z = zlib.compress(blob, 9)
            index[name] = (zoff, len(z), is_pkg)
            zparts.append(z)
            zoff += len(z)
    finder = compile(FINDER % (pkgs, index), "<frozen _crashkeep_finder>", "exec", optimize=2)
    fblob = marshal.dumps(finder)
    lines.append(c_bytes("FINDER", fblob))
    table.insert(0, '    {"_crashkeep_finder", FINDER, %d, 0, NULL},' % len(fblob))
    zblob = b"".join(zparts) or b"\0"
    lines.append(c_bytes("ZSTORE", zblob))
    lines.append("const unsigned char *ck_zstore = ZSTORE;")
    lines.append("const Py_ssize_t ck_zstore_size = %d;" % len(zblob))
    lines.append("")
    lines.append("const struct _frozen ck_frozen_table[] = {")
    lines += table
    lines.append("    {NULL, NULL, 0, 0, NULL}")
    lines.append("};")
    return "\n".join(lines) + "\n", raw_total, len(zblob) + len(fblob)


# Imported (frozen) by the launcher before crashkeep.cli.main.
FINDER = """
import sys
import marshal
import zlib
import _frozen_importlib as _bs
from _crashkeep_zstore import data as _ZSTORE

_PACKAGES = %r
# name -> (offset, length, is_package) in the compressed store
_ZINDEX = %r


class CrashkeepBuiltinFinder:
    # The builtin (inittab) modules with dotted names, and packages.

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in _PACKAGES or ("." in name and name in sys.builtin_module_names):
            return _bs.ModuleSpec(name, _bs.BuiltinImporter, origin="built-in",
                                  is_package=name in _PACKAGES)
        return None


class CrashkeepZFrozen:
    # Frozen modules kept zlib-compressed in the executable.

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        e = _ZINDEX.get(name)
        if e is None:
            return None
        return _bs.ModuleSpec(name, cls, origin="frozen", is_package=e[2])

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        off, n, _ = _ZINDEX[module.__spec__.name]
        exec(marshal.loads(zlib.decompress(_ZSTORE[off:off + n])), module.__dict__)


# Nothing may come from the file system: getpath() may have read a
# pyvenv.cfg or ._pth next to the executable (or one found on PATH).
sys.path[:] = []
sys.meta_path[:0] = [CrashkeepBuiltinFinder, CrashkeepZFrozen]
"""


def modules_c(mods):
    lines = ["#include <Python.h>", ""]
    for name, _, _ in mods:
        lines.append("extern PyObject *%s(void);" % c_ident(name))
    lines.append("")
    lines.append("int ck_append_inittab(void) {")
    for name, _, _ in mods:
        lines.append('    if (PyImport_AppendInittab("%s", %s) < 0) return -1;'
                     % (name, c_ident(name)))
    lines.append("    return 0;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def debian_builtins(pyconf=None):
    """{name: init function} of every builtin module Debian's libpython3.11.a has."""
    src = read(os.path.join(pyconf or Toolchain.host().pyconf, "config.c")).decode()
    return dict(re.findall(r'\{"([A-Za-z0-9_.]+)", ([A-Za-z0-9_]+)\}', src))


class Toolchain:
    """How to compile and link for one target: the host's gcc and libpython,
    or Debian's cross gcc and a sysroot made by sysroot.sh."""

    def __init__(self, target, cc, includes, pyconf, libdirs, obj, out):
        self.target, self.cc, self.includes = target, cc, includes
        self.pyconf, self.libdirs, self.obj, self.out = pyconf, libdirs, obj, out

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def host_triplet():
        return run(["gcc", "-dumpmachine"]).stdout.strip()

    @classmethod
    def host(cls, out=OUT):
        triplet = cls.host_triplet()
        target = {v: k for k, v in TARGETS.items()}.get(triplet, triplet)
        pyconf = "/usr/lib/python3.11/config-3.11-%s" % triplet
        return cls(target, "gcc", [PYINC], pyconf, [pyconf], OBJ, out)

    @classmethod
    def for_target(cls, target):
        out = "%s-%s" % (OUT, target)
        triplet = TARGETS[target]
        if triplet == cls.host_triplet():
            return cls.host(out)
        r = subprocess.run(["sh", os.path.join(HERE, "sysroot.sh"), target],
                           stdout=subprocess.PIPE, text=True)
        root = r.stdout.strip()
        if r.returncode != 0 or not os.path.isfile(os.path.join(root, ".done")):
            raise SystemExit("mkbinary: failed to prepare the %s sysroot (build/sysroot.sh %s)"
                             % (target, target))
        pyconf = os.path.join(root, "usr/lib/python3.11/config-3.11-%s" % triplet)
        # The multiarch pyconfig.h includes <TRIPLET/python3.11/pyconfig.h>.
        includes = [os.path.join(root, "usr/include/python3.11"), os.path.join(root, "usr/include")]
        return cls(target, triplet + "-gcc", includes, pyconf,
                   [pyconf, os.path.join(root, "usr/lib", triplet)],
                   os.path.join(WORK, "obj-" + target), out)

    def check_same_python(self):
        """The shared C (Cython output, frozen bytecode, inittab) assumes the
        target's libpython is the host's CPython version with the same builtins."""
        host = Toolchain.host()
        if self.pyconf == host.pyconf:
            return
        if debian_builtins(self.pyconf) != debian_builtins(host.pyconf):
            raise SystemExit("mkbinary: %s's libpython has other builtin modules than the host's"
                             " (%s/config.c): the shared inittab would not link" %
                             (self.target, self.pyconf))
        ver = re.compile(rb'#define PY_VERSION\s+"([^"]+)"')
        hv = ver.search(read(os.path.join(PYINC, "patchlevel.h"))).group(1)
        tv = ver.search(read(os.path.join(self.includes[0], "patchlevel.h"))).group(1)
        if hv != tv:
            raise SystemExit("mkbinary: %s's libpython is CPython %s, the host's %s: the frozen"
                             " bytecode and Cython C are made for the host's" %
                             (self.target, tv.decode(), hv.decode()))


def config_c(mods):
    """Our inittab: BUILTINS plus any builtin crashkeep itself imports."""
    available = debian_builtins()
    names = list(BUILTINS)
    for n in sorted(direct_imports(mods)):
        if n in available and n not in names:
            names.append(n)
            INIT_FUNC.setdefault(n, available[n])
    lines = ["#include <Python.h>", ""]
    for n in names:
        f = INIT_FUNC.get(n, "PyInit_" + n)
        if f:
            lines.append("extern PyObject *%s(void);" % f)
    lines.append("")
    lines.append("struct _inittab _PyImport_Inittab[] = {")
    for n in names:
        f = INIT_FUNC.get(n, "PyInit_" + n)
        lines.append('    {"%s", %s},' % (n, f or "NULL"))
    lines.append("    {0, 0}")
    lines.append("};")
    return "\n".join(lines) + "\n"


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", action="append", choices=sorted(TARGETS),
                    help="build out/crashkeep-TARGET (repeatable); default: out/crashkeep "
                    "for the host")
    a = ap.parse_args(argv)
    # Several test processes (and people) may run `make -C build` at once.
    import fcntl
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build(a.target)


def build(targets=None):
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("mkbinary: run with the build venv made from /usr/bin/python3.11")
    ver = "%d.%d.%d" % sys.version_info[:3]
    # Toolchains first: a missing cross compiler or sysroot fails before the
    # minutes of Cython.
    tcs = [Toolchain.for_target(t) for t in targets] if targets else [Toolchain.host()]
    for tc in tcs:
        tc.check_same_python()
    for d in [GEN, os.path.dirname(OUT)] + [tc.obj for tc in tcs]:
        os.makedirs(d, exist_ok=True)
    mods = crashkeep_modules()
    pkgs = [n for n, _, is_pkg in mods if is_pkg]
    log("%d crashkeep modules (Python %s, Cython %s)" % (len(mods), ver, cython_version()))

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        cfiles = list(ex.map(lambda m: cythonize_one(*m), mods))
        ncy = sum(1 for _, changed in cfiles if changed)
        jobs = []
        for (name, _, _), (c, _) in zip(mods, cfiles):
            last = name.split(".")[-1]
            jobs.append((c, name + ".o",
                         ["-DPyInit_%s=%s" % (last, c_ident(name))] +
                         ([] if last.endswith("_c") else SMALL_DEFINES)))
        closure = find_closure(mods)
        fsrc, fsize, zsize = frozen_c(closure, pkgs)
        write_if_changed(os.path.join(GEN, "frozen.c"), fsrc)
        write_if_changed(os.path.join(GEN, "modules.c"), modules_c(mods))
        write_if_changed(os.path.join(GEN, "config.c"), config_c(mods))
        write_if_changed(os.path.join(GEN, "cpython_frozen.c"), cpython_frozen_c()[0])
        for n in ("frozen", "modules", "config", "cpython_frozen"):
            jobs.append((os.path.join(GEN, n + ".c"), "_%s.o" % n, []))
        jobs.append((os.path.join(HERE, "launcher.c"), "_launcher.o", []))
        log("cythonized %d; frozen %d modules (%d KiB marshalled, %d KiB stored)"
            % (ncy, len(closure), fsize // 1024, zsize // 1024))
        write_if_changed(os.path.join(WORK, "frozen-modules.txt"),
                         "\n".join(sorted(closure)) + "\n")
        for tc in tcs:
            link(tc, list(ex.map(lambda j: compile_one(tc, j[0], os.path.join(tc.obj, j[1]),
                                                       j[2]), jobs)))
    return 0


def link(tc, objs):
    ncc = sum(1 for _, changed in objs if changed)
    log("%s: compiled %d with %s" % (tc.target, ncc, tc.cc))
    # The host's arch shares one object directory between out/crashkeep and
    # out/crashkeep-<arch>: the other one may have compiled what changed.
    if os.path.exists(tc.out) and \
            max(os.path.getmtime(o) for o, _ in objs) <= os.path.getmtime(tc.out):
        log("%s is up to date" % os.path.relpath(tc.out, ROOT))
        return
    tmp = "%s.tmp%d" % (tc.out, os.getpid())
    run([tc.cc, "-static", "-s", "-Wl,--gc-sections", "-o", tmp] + [o for o, _ in objs] +
        ["-L" + d for d in tc.libdirs] +
        ["-lpython3.11", "-lz", "-lm", "-lpthread", "-lutil", "-ldl"])
    os.replace(tmp, tc.out)
    log("%s: %d bytes" % (os.path.relpath(tc.out, ROOT), os.path.getsize(tc.out)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
