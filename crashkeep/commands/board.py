"""`crashkeep board`: check a board config and print what bring-up needs."""
import sys

from crashkeep.formats import boardconf
from crashkeep.commands.spec import Command, Param
from crashkeep.errors import ConfigError

CONFIG = Param("config", positional=True, required=True, help="Board config file.")


def out(text):
    sys.stdout.write(text + "\n")


def regions(board):
    """[(name, start, size)] of the reserved regions, lowest first."""
    r = []
    if board.has_ramoops:
        r.append(("ramoops", board.get("ramoops.mem_address"), board.get("ramoops.mem_size")))
    if board.has_phram:
        r.append(("phram", board.get("phram.start"), board.get("phram.len")))
    r.sort(key=lambda x: x[1])
    return r


def reserved_ranges(board):
    """Regions merged where they touch: one memmap= per contiguous range."""
    merged = []
    for _, start, size in regions(board):
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + size)
        else:
            merged.append((start, size))
    return merged


def layout_dict(board):
    d = {"board": board.name, "config": board.path, "arch": board.get("board.arch"),
         "ramoops": None, "phram": None}
    if board.has_ramoops:
        base = board.get("ramoops.mem_address")
        zones = []
        for z in board.zones():
            zd = z.as_dict()
            zd["address"] = base + z.offset
            zones.append(zd)
        d["ramoops"] = {"mem_address": base, "mem_size": board.get("ramoops.mem_size"),
                        "ecc": board.get("ramoops.ecc"), "order": board.get("board.kernel"),
                        "cpus": board.get("board.cpus"), "zones": zones}
    if board.has_phram:
        d["phram"] = {"name": board.get("phram.name"), "start": board.get("phram.start"),
                      "len": board.get("phram.len"), "erasesize": board.phram_erasesize}
    return d


def show(opts):
    board = boardconf.load(opts.config)
    d = layout_dict(board)
    if opts.json:
        import json
        out(json.dumps(d, indent=2, sort_keys=True))
        return 0
    out("board %s (%s)" % (board.name, board.get("board.arch")))
    if d["ramoops"]:
        r = d["ramoops"]
        out("ramoops 0x%x-0x%x (0x%x bytes), ecc %d, zone order %s, %d cpu(s)"
            % (r["mem_address"], r["mem_address"] + r["mem_size"], r["mem_size"], r["ecc"],
               r["order"], r["cpus"]))
        out("  %-22s %-12s %-10s %-8s %s" % ("zone", "address", "offset", "size", "data"))
        end = 0
        for z in r["zones"]:
            out("  %-22s 0x%-10x 0x%-8x 0x%-6x %d" % (z["label"], z["address"], z["offset"],
                                                    z["size"], z["data_size"]))
            end = z["offset"] + z["size"]
        if end < r["mem_size"]:
            out("  %-22s 0x%-10x 0x%-8x 0x%-6x" % ("(unused)", r["mem_address"] + end, end,
                                                 r["mem_size"] - end))
    if d["phram"]:
        p = d["phram"]
        out("phram %s 0x%x-0x%x (0x%x bytes), erase size 0x%x"
            % (p["name"], p["start"], p["start"] + p["len"], p["len"], p["erasesize"]))
    for w in board.warnings:
        sys.stderr.write("warning: %s\n" % w)
    return 0


def check(opts):
    board = boardconf.load(opts.config)
    problems = live_problems(board, opts.root) if opts.live else []
    for w in board.warnings:
        sys.stderr.write("warning: %s\n" % w)
    for p in problems:
        sys.stderr.write("%s\n" % p)
    if problems:
        raise ConfigError("%s: %d problem(s) on the running system" % (board.path, len(problems)))
    out("%s: ok" % board.path)
    return 0


def cmdline(opts):
    board = boardconf.load(opts.config)
    words = []
    res = board.reserve
    if res == "memmap":
        for start, size in reserved_ranges(board):
            words.append("memmap=0x%x$0x%x" % (size, start))
    elif res == "mem":
        words += mem_banks(board)
    if board.has_ramoops:
        words += ["ramoops." + a for a in boardconf.ramoops_args(board)]
    if board.has_phram:
        words.append("phram.phram=" + boardconf.phram_arg(board))
    out(" ".join(words))
    if res == "dt":
        sys.stderr.write("note: the region is reserved by the device tree (crashkeep board dts)\n")
    elif res == "memmap":
        sys.stderr.write("note: escape '$' for your boot loader (GRUB: '\\$')\n")
    return 0


def mem_banks(board):
    """ARM/MIPS `mem=size@start` banks that leave the regions out of RAM."""
    start = board.get("board.ram_start")
    end = start + board.get("board.ram_size")
    words = []
    cur = start
    for rs, size in reserved_ranges(board):
        if not (start <= rs and rs + size <= end):
            raise ConfigError("%s: region 0x%x is outside board RAM 0x%x-0x%x"
                              % (board.path, rs, start, end))
        if rs > cur:
            words.append("mem=0x%x@0x%x" % (rs - cur, cur))
        cur = rs + size
    if cur < end:
        words.append("mem=0x%x@0x%x" % (end - cur, cur))
    return words


def dts(opts):
    board = boardconf.load(opts.config)
    wide = board.get("board.arch") in ("arm64", "x86_64", "riscv64")
    cells = 2 if wide else 1

    def reg(start, size):
        if wide:
            return "<0x%x 0x%x 0x%x 0x%x>" % (start >> 32, start & 0xffffffff,
                                              size >> 32, size & 0xffffffff)
        return "<0x%x 0x%x>" % (start, size)

    lines = ["/ {", "\treserved-memory {", "\t\t#address-cells = <%d>;" % cells,
             "\t\t#size-cells = <%d>;" % cells, "\t\tranges;"]
    if board.has_ramoops:
        a = board.get("ramoops.mem_address")
        ecc = board.get("ramoops.ecc")
        lines += ["", "\t\tramoops@%x {" % a, '\t\t\tcompatible = "ramoops";',
                  "\t\t\treg = %s;" % reg(a, board.get("ramoops.mem_size")),
                  "\t\t\trecord-size = <0x%x>;" % board.get("ramoops.record_size"),
                  "\t\t\tconsole-size = <0x%x>;" % board.get("ramoops.console_size"),
                  "\t\t\tftrace-size = <0x%x>;" % board.get("ramoops.ftrace_size"),
                  "\t\t\tpmsg-size = <0x%x>;" % board.get("ramoops.pmsg_size"),
                  # module ecc=1 means 16; DT ecc-size is taken literally
                  "\t\t\tecc-size = <%d>;" % (16 if ecc == 1 else ecc),
                  "\t\t\tmem-type = <%d>;" % board.get("ramoops.mem_type"),
                  "\t\t\tmax-reason = <%d>;" % board.get("ramoops.max_reason"),
                  "\t\t\tflags = <1>;\t/* per-CPU ftrace zones, as the module does */",
                  "\t\t\tno-map;", "\t\t};"]
    if board.has_phram:
        s = board.get("phram.start")
        lines += ["", "\t\tphram@%x {" % s, '\t\t\tcompatible = "phram";',
                  '\t\t\tlabel = "%s";' % board.get("phram.name"),
                  "\t\t\treg = %s;" % reg(s, board.get("phram.len")),
                  "\t\t\tno-map;", "\t\t};"]
    lines += ["\t};", "};"]
    out("\n".join(lines))
    return 0


def modules(opts):
    board = boardconf.load(opts.config)
    d = board.get("board.modules") or boardconf.DEFAULT_MODULE_DIR
    # reed_solomon is loaded even without ECC: ramoops.ko links against it
    for name, rel in boardconf.KERNEL_MODULES:
        if name in ("reed_solomon", "ramoops") and not board.has_ramoops:
            continue
        if name in ("mtd", "phram") and not board.has_phram:
            continue
        line = "insmod %s/%s" % (d, rel)
        # reserve = dt: the DT nodes carry the parameters (both would probe twice)
        if name == "ramoops" and board.reserve != "dt":
            line += " " + " ".join(boardconf.ramoops_args(board))
        elif name == "phram" and board.reserve != "dt":
            line += " phram=" + boardconf.phram_arg(board)
        out(line)
    return 0


def parse_iomem(text):
    """Top-level /proc/iomem ranges: [(start, end_inclusive, name)]."""
    out_ = []
    for line in text.split("\n"):
        if not line.strip() or line.startswith(" "):
            continue
        rng, _, name = line.partition(" : ")
        a, _, b = rng.strip().partition("-")
        try:
            out_.append((int(a, 16), int(b, 16), name.strip()))
        except ValueError:
            continue
    return out_


# `uname -m` prefixes of the kernels each board.arch names: armv7l, armv5tel
# for arm; aarch64 for arm64 (also to 32-bit programs: an arm board config
# fits a 32-bit userland on an arm64 kernel); mips for MIPS kernels of
# either byte order.
UNAME_PREFIXES = {
    "x86_64": ("x86_64",), "x86": ("i386", "i486", "i586", "i686"),
    "arm64": ("aarch64",), "arm": ("arm", "aarch64"), "mips": ("mips",),
    "mipsel": ("mips",), "powerpc": ("ppc",), "riscv64": ("riscv64",),
}
# The byte order a board.arch fixes (a program's is its kernel's; "mips"
# boards are either).
LITTLE_ENDIAN = ("x86_64", "x86", "arm64", "arm", "mipsel", "riscv64")


def arch_problems(board, machine, byteorder):
    """board.arch against the running machine (`uname -m`, this program's byte order)."""
    arch = board.get("board.arch")
    if not machine.lower().startswith(UNAME_PREFIXES.get(arch, ())):
        return ["%s: board.arch is %s but this machine is %s (uname -m)"
                % (board.where("board.arch"), arch, machine)]
    if arch in LITTLE_ENDIAN and byteorder != "little":
        return ["%s: board.arch is %s (little-endian) but this machine is %s-endian"
                % (board.where("board.arch"), arch, byteorder)]
    return []


def live_problems(board, root="/"):
    """What the running kernel disagrees with: arch, RAM overlap, loaded parameters."""
    from crashkeep.compat import path_join, read_text, exists
    from crashkeep.system.mtd import sysos
    problems = []
    try:
        machine = sysos.uname()[4]
    except AttributeError:
        machine = None      # a MicroPython without uname: nothing to compare
    if machine:
        problems += arch_problems(board, machine, sys.byteorder)
    try:
        iomem = parse_iomem(read_text(path_join(root, "proc/iomem"), 1 << 20))
    except OSError:
        iomem = []
        problems.append("Failed to read '%s', cannot check the regions against RAM"
                        % path_join(root, "proc/iomem"))
    if iomem and all(a == 0 and b == 0 for a, b, _ in iomem):
        problems.append("/proc/iomem shows no addresses (run as root)")
        iomem = []
    for name, start, size in regions(board):
        for a, b, what in iomem:
            if what == "System RAM" and start <= b and a < start + size:
                problems.append("%s region 0x%x-0x%x overlaps System RAM 0x%x-0x%x: not reserved "
                                "(missing memmap=/reserved-memory?)" % (name, start, start + size, a, b + 1))
    problems += ramoops_param_problems(board, root)
    if board.has_phram:
        from crashkeep.system import mtd
        got = mtd.by_name(board.get("phram.name"), root)
        if got is not None and got[1] != board.get("phram.len"):
            problems.append('phram "%s" is loaded with size 0x%x, the board says 0x%x'
                            % (board.get("phram.name"), got[1], board.get("phram.len")))
    problems += pstore_problems(root)
    return problems


# /sys/module/ramoops/parameters: after a probe (module options, DT node or
# platform data) ram.c writes the values in use back into these.
RAMOOPS_PARAMS = ("mem_address", "mem_size", "mem_type", "record_size", "console_size",
                  "ftrace_size", "pmsg_size", "max_reason", "ecc")


def ramoops_param_problems(board, root="/"):
    """One line naming every ramoops parameter in use that differs from the board config."""
    from crashkeep.compat import path_join, read_text, exists
    from crashkeep.formats.ramoops import rounddown_pow_of_two
    pdir = path_join(root, "sys/module/ramoops/parameters")
    if not board.has_ramoops or not exists(pdir):
        return []
    diffs = []
    for key in RAMOOPS_PARAMS:
        try:
            loaded = int(read_text(path_join(pdir, key)).strip(), 0)
        except (OSError, ValueError):
            continue
        want = board.get("ramoops." + key)
        if key.endswith("_size") and key != "mem_size":
            want = rounddown_pow_of_two(want)
        if loaded != want:
            diffs.append("%s=0x%x, the board says 0x%x" % (key, loaded, want))
    if not diffs:
        return []
    return ["ramoops is loaded with %s: records are read from the wrong place (rmmod ramoops "
            "and load it with `crashkeep board modules`, or fix the board config)"
            % "; ".join(diffs)]


def pstore_problems(root="/"):
    """ramoops registered as the pstore backend, yet every record it shows is empty."""
    from crashkeep.compat import path_join, read_text
    from crashkeep.system.mtd import sysos
    try:
        backend = read_text(path_join(root, "sys/module/pstore/parameters/backend")).strip()
    except OSError:
        backend = ""
    if backend != "ramoops":
        # kernels that keep only the requested name there: a probed ramoops counts
        try:
            live = read_text(path_join(root, "sys/module/ramoops/initstate")).strip() == "live"
            size = int(read_text(path_join(root, "sys/module/ramoops/parameters/mem_size")), 0)
        except (OSError, ValueError):
            return []
        if not (live and size):
            return []
    try:
        mounts = read_text(path_join(root, "proc/mounts"), 1 << 20)
    except OSError:
        return []
    for line in mounts.split("\n"):
        f = line.split()
        if len(f) < 3 or f[2] != "pstore":
            continue
        d = path_join(root, f[1].lstrip("/") if root not in ("", "/") else f[1])
        try:
            names = sysos.listdir(d)
            sizes = [sysos.stat(d + "/" + n)[6] for n in names]
        except OSError:
            return []
        if names and not any(sizes):
            return ["pstore: ramoops is registered but all %d record(s) in %s are empty: the "
                    "kernel cannot read the region back (not reserved, or mapped in a way it "
                    "cannot read: CONFIG_IO_STRICT_DEVMEM, ramoops.mem_type)" % (len(names), f[1])]
        return []
    return []


JSON = Param("json", kind="flag", help="Print JSON.")

COMMANDS = [
    Command("board show", "Show the resolved layout: every ramoops zone as the kernel lays it "
            "out, and the phram region.", [CONFIG, JSON], show),
    Command("board check", "Check a board config; exit 0 or print the errors.",
            [CONFIG, Param("live", kind="flag", help="Also compare with /proc/iomem and the "
                           "loaded modules."),
             Param("root", default="/", help="Root of /proc and /sys (for tests).")], check),
    Command("board cmdline", "Print the kernel command line for this board.", [CONFIG], cmdline),
    Command("board dts", "Print a device-tree reserved-memory node for this board.", [CONFIG], dts),
    Command("board modules", "Print the insmod lines for this board.", [CONFIG], modules),
]
