"""Kernel module loading for the boot path: ramoops, phram and their dependencies.

Loads `<name>.ko` from the board's module tree the way BusyBox insmod does:
finit_module(2) with an option string, init_module(2) when the kernel or a
seccomp filter refuses the first (ENOSYS). "Already loaded" (EEXIST) and
"built in" are success; a module already loaded with parameters other than
the board's is a warning, not an error. Every root path is a parameter.

The two system calls come from crashkeep.system.syscall.
"""
from crashkeep.compat import sysos, path_join, read_text, strerror, errno_of, exists, is_dir
from crashkeep.errors import DeviceError
from crashkeep.formats import boardconf
from crashkeep.limits import MODULE_TREE_ENTRIES_MAX, MODULE_FILE_MAX
from crashkeep.system import syscall

EEXIST = 17
ENOENT = 2
ENOSYS = 38
UNAME = "$(uname -r)"

LOADED = "loaded"        # this call inserted it
ALREADY = "already"      # it was loaded before
BUILTIN = "builtin"      # compiled into the kernel


def release(root="/"):
    """The running kernel's release (`uname -r`), from procfs or sysos.uname()."""
    try:
        return read_text(path_join(root, "proc/sys/kernel/osrelease")).strip()
    except OSError:
        pass
    try:
        return sysos.uname()[2]
    except (AttributeError, IndexError):
        return ""


def module_dir(board, root="/"):
    """The board's module tree with `$(uname -r)` expanded, under root."""
    d = board.get("board.modules") or boardconf.DEFAULT_MODULE_DIR
    if UNAME in d:
        d = d.replace(UNAME, release(root))
    if root not in ("", "/"):
        d = path_join(root, d.lstrip("/"))
    return d


def find(mdir, name, rel=None):
    """Path of name.ko in mdir: at its standard place, else by a bounded search."""
    if rel:
        p = path_join(mdir, rel)
        if exists(p):
            return p
    want = (name + ".ko", name.replace("_", "-") + ".ko")
    stack = [mdir]
    seen = 0
    while stack:
        d = stack.pop()
        try:
            names = sysos.listdir(d)
        except OSError:
            continue
        for n in names:
            seen += 1
            if seen > MODULE_TREE_ENTRIES_MAX:
                return None
            p = d + "/" + n
            if n in want:
                return p
            if "." not in n and is_dir(p):
                stack.append(p)
    return None


def state(name, root="/"):
    """'loaded', 'builtin' or None for a module name, from /sys/module."""
    d = path_join(root, "sys/module/" + name)
    if exists(d + "/initstate"):
        return ALREADY
    if is_dir(d):
        # built-in code with parameters has /sys/module/X but no initstate
        return BUILTIN
    return None


def _builtin_listed(name, root, mdir):
    """modules.builtin (one level above kernel/) names built-in modules by path."""
    base = mdir[:-len("/kernel")] if mdir.endswith("/kernel") else mdir
    try:
        text = read_text(path_join(base, "modules.builtin"), 1 << 20)
    except OSError:
        return False
    for line in text.split("\n"):
        if line.rsplit("/", 1)[-1] in (name + ".ko", name.replace("_", "-") + ".ko"):
            return True
    return False


def insert(path, params=""):
    """Insert one module file; True if inserted, False if it was already there."""
    try:
        syscall.finit_module(path, params)
        return True
    except OSError as e:
        err = errno_of(e)
        if err == EEXIST:
            return False
        if err != ENOSYS:
            raise DeviceError("Failed to load module '%s': %s" % (path, _why(e)))
    try:
        with open(path, "rb") as f:
            image = f.read(MODULE_FILE_MAX + 1)
    except OSError as e:
        raise DeviceError("Failed to read module '%s': %s" % (path, strerror(e)))
    if len(image) > MODULE_FILE_MAX:
        raise DeviceError("Failed to load module '%s': larger than %d bytes"
                          % (path, MODULE_FILE_MAX))
    try:
        syscall.init_module(image, params, path)
        return True
    except OSError as e:
        if errno_of(e) == EEXIST:
            return False
        raise DeviceError("Failed to load module '%s': %s" % (path, _why(e)))


def _why(e):
    err = errno_of(e)
    s = strerror(e)
    if err == 8:      # ENOEXEC: built for another kernel
        return s + " (module built for another kernel?)"
    if err in (22, 12, 16):
        return s + " (see dmesg)"
    return s


def load(name, params="", mdir="", rel=None, root="/"):
    """Make sure module `name` is in the kernel: LOADED, ALREADY or BUILTIN."""
    st = state(name, root)
    if st:
        return st
    path = find(mdir, name, rel) if mdir else None
    if path is None:
        if _builtin_listed(name, root, mdir):
            return BUILTIN
        raise DeviceError("Failed to find module '%s.ko' under '%s'" % (name, mdir))
    return LOADED if insert(path, params) else ALREADY


def param_mismatches(name, args, root="/"):
    """Warnings for parameters in /sys/module/NAME/parameters that differ from args."""
    out = []
    pdir = path_join(root, "sys/module/%s/parameters" % name)
    for a in args:
        key, _, want = a.partition("=")
        try:
            have = read_text(pdir + "/" + key).strip()
        except OSError:
            continue      # not exported (or not readable): nothing to compare
        try:
            same = int(have, 0) == int(want, 0)
        except ValueError:
            same = have == want
        if not same:
            out.append("%s is loaded with %s=%s, the board says %s" % (name, key, have, want))
    return out


class Result:
    def __init__(self):
        self.status = {}     # name -> LOADED / ALREADY / BUILTIN
        self.errors = {}     # name -> one-line message
        self.warnings = []

    def ok(self, name):
        return name in self.status


def load_for_board(board, root="/", want=("ramoops", "phram")):
    """Load what the board needs, in dependency order; never raises for one module."""
    res = Result()
    mdir = module_dir(board, root)
    need = []
    if "ramoops" in want and board.has_ramoops:
        need += ["reed_solomon", "ramoops"]
    if "phram" in want and board.has_phram:
        need += ["mtd", "phram"]
    deps = {"ramoops": "reed_solomon", "phram": "mtd"}
    for name, rel in boardconf.KERNEL_MODULES:
        if name not in need:
            continue
        dep = deps.get(name)
        if dep and dep in res.errors and name in deps:
            res.errors[name] = res.errors[dep]
            continue
        args = []
        if name == "ramoops":
            args = boardconf.ramoops_args(board)
        elif name == "phram":
            args = ["phram=" + boardconf.phram_arg(board)]
        try:
            res.status[name] = load(name, " ".join(args), mdir, rel, root)
        except DeviceError as e:
            res.errors[name] = str(e)
            continue
        if name == "ramoops" and res.status[name] != LOADED:
            res.warnings += param_mismatches(name, args, root)
        if name == "phram":
            _phram_device(board, res, root)
    return res


def _phram_device(board, res, root):
    """phram loaded earlier (or built in) may lack our device: add it through sysfs."""
    from crashkeep.system import mtd
    name = board.get("phram.name")
    got = mtd.by_name(name, root)
    if got is not None:
        if got[1] != board.get("phram.len"):
            res.warnings.append("phram device %s has size 0x%x, the board says 0x%x"
                                % (name, got[1], board.get("phram.len")))
        return
    if res.status.get("phram") == LOADED:
        return      # just created with our parameter; /proc/mtd may lag a moment
    p = path_join(root, "sys/module/phram/parameters/phram")
    try:
        with open(p, "w") as f:
            f.write(boardconf.phram_arg(board))
    except OSError as e:
        res.warnings.append("Failed to add phram device '%s' through '%s': %s"
                            % (name, p, strerror(e)))


def read_phys(path, address, size):
    """size bytes of physical memory at address through path (/dev/mem).

    read() first; where the kernel refuses it (EFAULT: 32-bit ARM reads /dev/mem
    through the linear map, which memory left out with mem= is not in; arm64
    for no-map regions) a read-only mmap of the same range, which the kernel
    allows for memory that is not System RAM. Raises OSError of the mmap when
    both fail."""
    try:
        with open(path, "rb") as f:
            f.seek(address)
            data = f.read(size)
    except OSError as e:
        first = e
    else:
        if len(data) != size:
            # past the end of what the device has: a mapping would fault (SIGBUS)
            raise OSError(5, "short read (%d of %d bytes)" % (len(data), size), path)
        return data
    try:
        return syscall.mmap_read(path, address, size)
    except OSError as e:
        if errno_of(e) == ENOSYS:
            raise first
        raise
