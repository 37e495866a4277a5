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


# Modules a module asks for at run time (request_module), which depends= cannot
# show: pstore asks the crypto API for its compressor when a backend registers,
# and a BusyBox initramfs has no modprobe index to serve that. Loaded first when
# present as a module; a missing one only costs compression.
RUNTIME_PRE = {"pstore": ("deflate",)}
DEPTH_MAX = 16            # dependency chains are a few deep; a cycle stops here
MODINFO_MAX = 64 << 10    # a .modinfo section is a few hundred bytes


def modinfo(path):
    """{key: [values]} of a module file's .modinfo section (NUL-separated key=value)."""
    from crashkeep.formats.elffile import ElfFile
    from crashkeep.errors import CrashkeepError
    try:
        elf = ElfFile(path)
    except (OSError, CrashkeepError) as e:
        raise DeviceError("Failed to read module '%s': %s" % (path, _msg(e)))
    try:
        sec = elf.section(".modinfo")
        if sec is None:
            raise DeviceError("Failed to read module '%s': no .modinfo section" % path)
        if sec.sh_size > MODINFO_MAX:
            raise DeviceError("Failed to read module '%s': .modinfo of %d bytes (limit %d)"
                              % (path, sec.sh_size, MODINFO_MAX))
        raw = elf.pread(sec.sh_offset, sec.sh_size)
    except OSError as e:
        raise DeviceError("Failed to read module '%s': %s" % (path, strerror(e)))
    finally:
        elf.close()
    info = {}
    for item in raw.split(b"\0"):
        key, sep, val = item.partition(b"=")
        if sep:
            info.setdefault(key.decode("utf-8", "replace"), []).append(
                val.decode("utf-8", "replace"))
    return info


def _msg(e):
    return strerror(e) if isinstance(e, OSError) else str(e)


def _norm(name):
    return name.strip().replace("-", "_")


def depends_of(path):
    """(hard, soft) dependency names of a module file: depends= and softdep= pre:."""
    info = modinfo(path)
    hard = []
    for v in info.get("depends", []):
        hard += [_norm(d) for d in v.split(",") if d.strip()]
    soft = []
    for v in info.get("softdep", []):
        # "pre: a b post: c": only what must come first
        words = v.split()
        pre = False
        for w in words:
            if w.endswith(":"):
                pre = w == "pre:"
            elif pre:
                soft.append(_norm(w))
    return hard, soft


def modules_dep(mdir):
    """{name: (path, [dependency names])} from modules.dep beside kernel/, or {}.

    depmod writes it at install time (a Debian kernel package has none; an
    installed system, OpenWrt and Buildroot images do)."""
    base = mdir[:-len("/kernel")] if mdir.endswith("/kernel") else mdir
    try:
        text = read_text(path_join(base, "modules.dep"), 4 << 20)
    except OSError:
        return {}
    out = {}
    for line in text.split("\n"):
        mod, sep, deps = line.partition(":")
        if not sep:
            continue
        name = _norm(mod.rsplit("/", 1)[-1].split(".ko")[0])
        p = mod.strip()
        out[name] = (p if p.startswith("/") else path_join(base, p),
                     [_norm(d.rsplit("/", 1)[-1].split(".ko")[0]) for d in deps.split()])
    return out


class Result:
    def __init__(self):
        self.status = {}     # name -> LOADED / ALREADY / BUILTIN
        self.errors = {}     # name -> one-line message
        self.warnings = []
        self.order = []      # names in the order they were handled

    def ok(self, name):
        return name in self.status


class _Loader:
    """Loads a module after what it needs: modules.dep when the tree has one,
    else each .ko's own depends= (and softdep pre:), modules.builtin and
    /sys/module for what needs no file."""

    def __init__(self, mdir, root, res):
        self.mdir = mdir
        self.root = root
        self.res = res
        self.dep = modules_dep(mdir) if mdir else {}

    def _path(self, name):
        if name in self.dep and exists(self.dep[name][0]):
            return self.dep[name][0]
        rel = dict(boardconf.KERNEL_MODULES).get(name)
        return find(self.mdir, name, rel) if self.mdir else None

    def load(self, name, params="", depth=0):
        res = self.res
        if name in res.status or name in res.errors:
            return name in res.status
        st = state(name, self.root)
        if st:
            return self._done(name, st)
        path = self._path(name)
        if path is None:
            if _builtin_listed(name, self.root, self.mdir):
                return self._done(name, BUILTIN)
            return self._fail(name, "Failed to find module '%s.ko' under '%s'" % (name, self.mdir))
        if depth >= DEPTH_MAX:
            return self._fail(name, "Failed to load module '%s': dependencies deeper than %d "
                              "(a cycle?)" % (path, DEPTH_MAX))
        try:
            if name in self.dep:
                hard, soft = self.dep[name][1], []
            else:
                hard, soft = depends_of(path)
        except DeviceError as e:
            return self._fail(name, str(e))
        for d in soft + list(RUNTIME_PRE.get(name, ())):
            if d not in res.status and d not in res.errors:
                self._optional(d, depth)
        for d in hard:
            if not self.load(d, "", depth + 1):
                return self._fail(name, res.errors[d])
        try:
            return self._done(name, LOADED if insert(path, params) else ALREADY)
        except DeviceError as e:
            return self._fail(name, str(e))

    def _optional(self, name, depth):
        # a soft dependency that is absent or fails is not an error of its user
        if state(name, self.root) or self._path(name) is not None:
            if not self.load(name, "", depth + 1):
                self.res.warnings.append(self.res.errors.pop(name))

    def _done(self, name, st):
        self.res.status[name] = st
        self.res.order.append(name)
        return True

    def _fail(self, name, msg):
        self.res.errors[name] = msg
        self.res.order.append(name)
        return False


def load_for_board(board, root="/", want=("ramoops", "phram")):
    """Load what the board needs, in dependency order; never raises for one module.

    With `board.reserve = dt` the device tree's ramoops and phram nodes carry
    the parameters: the modules load without any (both would make the kernel
    probe twice and phram create a second MTD device over the same memory)."""
    res = Result()
    dt = board.reserve == "dt"
    loader = _Loader(module_dir(board, root), root, res)
    if "ramoops" in want and board.has_ramoops:
        args = [] if dt else boardconf.ramoops_args(board)
        if loader.load("ramoops", " ".join(args)) and res.status["ramoops"] != LOADED and args:
            res.warnings += param_mismatches("ramoops", args, root)
    if "phram" in want and board.has_phram:
        args = [] if dt else ["phram=" + boardconf.phram_arg(board)]
        if loader.load("phram", " ".join(args)):
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
    if board.reserve == "dt":
        # the DT node makes the device; adding one here would map the memory twice
        res.warnings.append("phram device %s not found (the device tree's phram node "
                            "should create it)" % name)
        return
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
