"""Board config: the file a bring-up engineer writes once per board.

Format: one `key = value` per line, `#` starts a comment, blank lines ignored.
Keys under `ramoops.` and `phram.` are the kernel's own parameter names; the
rest are crashkeep's. Numbers take 0x.., decimal and K/M/G suffixes (binary).
"""
from crashkeep.formats import ramoops
from crashkeep.errors import ConfigError
from crashkeep.limits import CONFIG_BYTES_MAX, CONFIG_LINES_MAX, PAGE_SIZE, REGION_SIZE_MAX

NUM = "number"
STR = "string"
BOOL = "bool"

# key: (type, default). A default of None means "not set".
KEYS = {
    "board.name": (STR, None),
    "board.arch": (STR, "x86_64"),           # x86_64, arm, arm64, mips
    "board.reserve": (STR, None),            # memmap, mem, dt, none (default by arch)
    "board.ram_start": (NUM, None),          # first RAM bank, for reserve = mem
    "board.ram_size": (NUM, None),
    "board.cpus": (NUM, 1),                  # possible CPUs: splits ftrace_size
    "board.kernel": (STR, "6.2"),            # ramoops zone order: 6.1 or 6.2 (6.2 and newer)
    "board.even_round": (BOOL, True),        # stable kernels since 2024 round zones to even
    "board.page_size": (NUM, PAGE_SIZE),
    "board.modules": (STR, None),            # directory of ramoops.ko, phram.ko, ...
    "board.firmware": (STR, None),           # firmware version if /etc/os-release has none
    "ramoops.mem_address": (NUM, None),
    "ramoops.mem_size": (NUM, None),
    "ramoops.record_size": (NUM, ramoops.DEFAULT_RECORD_SIZE),
    "ramoops.console_size": (NUM, ramoops.DEFAULT_CONSOLE_SIZE),
    "ramoops.ftrace_size": (NUM, ramoops.DEFAULT_FTRACE_SIZE),
    "ramoops.pmsg_size": (NUM, ramoops.DEFAULT_PMSG_SIZE),
    "ramoops.ecc": (NUM, 0),
    "ramoops.max_reason": (NUM, ramoops.DEFAULT_MAX_REASON),
    "ramoops.mem_type": (NUM, 0),
    "phram.name": (STR, None),
    "phram.start": (NUM, None),
    "phram.len": (NUM, None),
    "phram.erasesize": (NUM, None),          # default: page size
    "flash.device": (STR, None),             # block device to mount, or empty for a directory
    "flash.fstype": (STR, None),
    "flash.options": (STR, ""),
    "flash.mountpoint": (STR, "/run/crashkeep/flash"),
    "flash.dir": (STR, "crashkeep"),         # bundles go here, relative to the mount
    "retention.bundles": (NUM, 20),
    "retention.bytes": (NUM, 4 << 20),
    "core.log": (STR, None),                 # log file whose tail goes into a core record
    "core.log_bytes": (NUM, 4096),
    "core.dir": (STR, None),                 # where compressed cores go, if anywhere
    "core.max_bytes": (NUM, 16 << 20),
    "core.max_files": (NUM, 10),             # gzip cores kept in core.dir, oldest removed first
    "core.rate": (NUM, 10),                  # core records per hour
    "core.reboot_on": (STR, ""),             # comma-separated process names
    "export.syslog": (BOOL, True),           # one line per bundle to the syslog socket
    "export.socket": (STR, "/dev/log"),
    "export.command": (STR, None),           # sh command run once per bundle
    "export.timeout": (NUM, 30),             # seconds per command run
}

# Kernel modules in load order, with their place in a Debian-style kernel tree.
KERNEL_MODULES = [
    ("reed_solomon", "lib/reed_solomon/reed_solomon.ko"),
    ("ramoops", "fs/pstore/ramoops.ko"),
    ("mtd", "drivers/mtd/mtd.ko"),
    ("phram", "drivers/mtd/devices/phram.ko"),
]
DEFAULT_MODULE_DIR = "/lib/modules/$(uname -r)/kernel"

SUFFIXES = {"k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_number(text):
    """'0x1f000000', '4096', '64K', '1M' -> int; ValueError otherwise."""
    s = text.strip().replace("_", "")
    mult = 1
    if s.endswith("iB"):
        s = s[:-2]
    elif s.endswith("B") and len(s) > 1 and s[-2] in SUFFIXES:
        s = s[:-1]
    if s and s[-1] in SUFFIXES:
        mult = SUFFIXES[s[-1]]
        s = s[:-1]
    if not s or s[0] == "-":
        raise ValueError("not a number: %r" % text)
    if s[:2].lower() == "0x":
        digits, base = s[2:], 16
    else:
        digits, base = s, 10
    allowed = "0123456789" if base == 10 else "0123456789abcdefABCDEF"
    if not digits or any(ch not in allowed for ch in digits):
        raise ValueError("not a number: %r" % text)
    return int(digits, base) * mult


def parse_bool(text):
    t = text.strip().lower()
    if t in ("1", "yes", "true", "on"):
        return True
    if t in ("0", "no", "false", "off"):
        return False
    raise ValueError("not yes/no: %r" % text)


class Board:
    """A parsed board config: `get(key)` gives the value or the key's default."""

    def __init__(self, path, values, lines):
        self.path = path
        self.values = values      # key -> value, only what the file set
        self.lines = lines        # key -> line number
        self.warnings = []

    def get(self, key):
        if key in self.values:
            return self.values[key]
        return KEYS[key][1]

    def has(self, key):
        return key in self.values

    def where(self, key):
        if key in self.lines:
            return "%s:%d" % (self.path, self.lines[key])
        return self.path

    @property
    def name(self):
        return self.get("board.name")

    @property
    def has_ramoops(self):
        return self.has("ramoops.mem_address") or self.has("ramoops.mem_size")

    @property
    def has_phram(self):
        return self.has("phram.start") or self.has("phram.len")

    @property
    def reserve(self):
        r = self.get("board.reserve")
        if r:
            return r
        return "memmap" if self.get("board.arch") == "x86_64" else "dt"

    @property
    def phram_erasesize(self):
        return self.get("phram.erasesize") or self.get("board.page_size")

    def ramoops_params(self):
        return ramoops.Params(
            self.get("ramoops.mem_size"),
            record_size=self.get("ramoops.record_size"),
            console_size=self.get("ramoops.console_size"),
            ftrace_size=self.get("ramoops.ftrace_size"),
            pmsg_size=self.get("ramoops.pmsg_size"),
            ecc=self.get("ramoops.ecc"),
            cpus=self.get("board.cpus"),
            order=ramoops.ORDER_6_1 if self.get("board.kernel") == "6.1" else ramoops.ORDER_6_2,
            even_round=self.get("board.even_round"),
            mem_address=self.get("ramoops.mem_address"))

    def zones(self):
        return ramoops.layout(self.ramoops_params())


def ramoops_args(board):
    keys = ("mem_address", "mem_size", "record_size", "console_size", "ftrace_size",
            "pmsg_size", "ecc", "mem_type", "max_reason")
    return ["%s=%s" % (k, _num(board.get("ramoops." + k), k)) for k in keys]


def _num(v, key=""):
    if key in ("ecc", "mem_type", "max_reason"):
        return "%d" % v
    return "0x%x" % v if v else "0"


def phram_arg(board):
    s = "%s,0x%x,0x%x" % (board.get("phram.name"), board.get("phram.start"), board.get("phram.len"))
    if board.has("phram.erasesize"):
        s += ",0x%x" % board.get("phram.erasesize")
    return s


def parse(text, path="<config>"):
    """Parse config text; ConfigError naming path:line for the first bad line."""
    values = {}
    lines = {}
    n = 0
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()          # the newline that ends the last line starts no line
    for raw in rows:
        n += 1
        if n > CONFIG_LINES_MAX:
            raise ConfigError("%s:%d: more than %d lines" % (path, n, CONFIG_LINES_MAX))
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise ConfigError("%s:%d: expected 'key = value', got %r" % (path, n, line))
        key, value = line.split("=", 1)
        key = key.strip()
        value = value.strip()
        if key not in KEYS:
            raise ConfigError("%s:%d: unknown key '%s'" % (path, n, key))
        if key in values:
            raise ConfigError("%s:%d: '%s' already set on line %d" % (path, n, key, lines[key]))
        kind = KEYS[key][0]
        try:
            if kind == NUM:
                value = parse_number(value)
            elif kind == BOOL:
                value = parse_bool(value)
            elif len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
        except ValueError:
            raise ConfigError("%s:%d: bad %s for '%s': %r" % (path, n, kind, key, value))
        values[key] = value
        lines[key] = n
    board = Board(path, values, lines)
    validate(board)
    return board


def load(path):
    try:
        with open(path, "rb") as f:
            data = f.read(CONFIG_BYTES_MAX + 1)
    except OSError as e:
        from crashkeep.compat import strerror
        raise ConfigError("Failed to read board config '%s': %s" % (path, strerror(e)))
    if len(data) > CONFIG_BYTES_MAX:
        raise ConfigError("%s: larger than %d bytes, not a board config" % (path, CONFIG_BYTES_MAX))
    try:
        text = data.decode("utf-8")
    except UnicodeError:
        raise ConfigError("%s: not UTF-8 text" % path)
    return parse(text, path)


# physical address bits by board.arch: what one DT cell pair (`board dts`:
# one cell on 32-bit arches, two on 64-bit) and the cmdline carry; an address
# or region end past them is truncated by the kernel, or wraps
ADDRESS_BITS = {"x86_64": 64, "arm64": 64, "riscv64": 64, "x86": 32, "arm": 32, "mips": 32,
                "mipsel": 32, "powerpc": 32}
ADDRESS_KEYS = ("board.ram_start", "ramoops.mem_address", "phram.start")
SIZE_KEYS = ("board.ram_size", "ramoops.mem_size", "ramoops.record_size", "ramoops.console_size",
             "ramoops.ftrace_size", "ramoops.pmsg_size", "phram.len", "phram.erasesize")
NUMBER_MAX = (1 << 63) - 1     # counts and byte budgets: what an off_t / ssize_t holds
PHRAM_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+@:"


def _check_numbers(board):
    bits = ADDRESS_BITS.get(board.get("board.arch"), 32)
    top = 1 << bits
    for key in board.values:
        if KEYS[key][0] != NUM:
            continue
        v = board.get(key)
        limit = top - 1 if (key in ADDRESS_KEYS or key in SIZE_KEYS) else NUMBER_MAX
        if v > limit:
            raise ConfigError("%s: %s 0x%x does not fit in %d bits (%s)"
                              % (board.where(key), key, v,
                                 bits if limit != NUMBER_MAX else 63, board.get("board.arch")))
    for start, size in (("board.ram_start", "board.ram_size"),
                        ("ramoops.mem_address", "ramoops.mem_size"),
                        ("phram.start", "phram.len")):
        if board.has(start) and board.has(size) and \
                board.get(start) + board.get(size) > top:
            raise ConfigError("%s: region 0x%x + 0x%x wraps past the %d-bit address space"
                              % (board.where(start), board.get(start), board.get(size), bits))


def _check_in_ram(board, regions):
    """reserve = mem cuts the region off the end of the RAM bank: it must lie inside it."""
    lo = board.get("board.ram_start")
    hi = lo + board.get("board.ram_size")
    for name, a, s, key in regions:
        if a < lo or a + s > hi:
            raise ConfigError("%s: %s region 0x%x-0x%x is outside the RAM bank 0x%x-0x%x "
                              "(reserve = mem)" % (board.where(key), name, a, a + s, lo, hi))


def _need(board, keys, why):
    for k in keys:
        if not board.has(k):
            raise ConfigError("%s: missing required key '%s' (%s)" % (board.path, k, why))


def validate(board):
    """Check one board; raise ConfigError on the first fault, collect warnings."""
    _need(board, ("board.name",), "every board has a name")
    if not (board.has_ramoops or board.has_phram):
        raise ConfigError("%s: neither ramoops.* nor phram.* is set" % board.path)
    page = board.get("board.page_size")
    if page <= 0 or page & (page - 1):
        raise ConfigError("%s: board.page_size must be a power of two" % board.where("board.page_size"))
    arch = board.get("board.arch")
    if arch not in ("x86_64", "x86", "arm", "arm64", "mips", "mipsel", "powerpc", "riscv64"):
        raise ConfigError("%s: unknown board.arch '%s'" % (board.where("board.arch"), arch))
    if board.reserve not in ("memmap", "mem", "dt", "none"):
        raise ConfigError("%s: board.reserve must be memmap, mem, dt or none"
                          % board.where("board.reserve"))
    if board.reserve == "mem":
        _need(board, ("board.ram_start", "board.ram_size"), "reserve = mem needs the RAM bank")
    if board.get("board.kernel") not in ("6.1", "6.2"):
        raise ConfigError("%s: board.kernel must be 6.1 (old zone order) or 6.2 (6.2 and newer)"
                          % board.where("board.kernel"))
    if board.get("board.cpus") < 1:
        raise ConfigError("%s: board.cpus must be at least 1" % board.where("board.cpus"))
    _check_numbers(board)
    regions = []
    if board.has_ramoops:
        _need(board, ("ramoops.mem_address", "ramoops.mem_size"), "the ramoops region")
        _check_ramoops(board, page)
        regions.append(("ramoops", board.get("ramoops.mem_address"),
                        board.get("ramoops.mem_size"), "ramoops.mem_address"))
    if board.has_phram:
        _need(board, ("phram.name", "phram.start", "phram.len"), "the phram region")
        _check_phram(board, page)
        regions.append(("phram", board.get("phram.start"), board.get("phram.len"), "phram.start"))
    if board.reserve == "mem":
        _check_in_ram(board, regions)
    if len(regions) == 2:
        (n1, a1, s1, k1), (n2, a2, s2, k2) = regions
        if a1 < a2 + s2 and a2 < a1 + s1:
            raise ConfigError("%s: phram region 0x%x-0x%x overlaps ramoops region 0x%x-0x%x"
                              % (board.where(k2), a2, a2 + s2, a1, a1 + s1))
    if board.has("flash.device") and not board.has("flash.fstype"):
        raise ConfigError("%s: flash.device needs flash.fstype" % board.where("flash.device"))
    if not 1 <= board.get("export.timeout") <= 3600:
        raise ConfigError("%s: export.timeout must be 1..3600 seconds" % board.where("export.timeout"))
    for key in ("retention.bundles", "retention.bytes", "core.max_files"):
        if board.get(key) < 1:
            raise ConfigError("%s: %s must be at least 1" % (board.where(key), key))


def _aligned(board, key, page):
    v = board.get(key)
    if v % page:
        raise ConfigError("%s: %s 0x%x is not page aligned (0x%x)" % (board.where(key), key, v, page))


def _check_ramoops(board, page):
    _aligned(board, "ramoops.mem_address", page)
    _aligned(board, "ramoops.mem_size", page)
    if board.get("ramoops.mem_size") > REGION_SIZE_MAX:
        # the raw reader holds the whole region in memory
        raise ConfigError("%s: ramoops.mem_size 0x%x is larger than crashkeep reads (0x%x)"
                          % (board.where("ramoops.mem_size"), board.get("ramoops.mem_size"),
                             REGION_SIZE_MAX))
    if board.get("ramoops.mem_size") == 0:
        raise ConfigError("%s: ramoops.mem_size is 0: the kernel ignores the region"
                          % board.where("ramoops.mem_size"))
    if board.get("ramoops.mem_type") not in (0, 1, 2):
        raise ConfigError("%s: ramoops.mem_type must be 0, 1 or 2" % board.where("ramoops.mem_type"))
    if not 0 <= board.get("ramoops.max_reason") <= 5:
        raise ConfigError("%s: ramoops.max_reason must be 0..5" % board.where("ramoops.max_reason"))
    for key in ("ramoops.record_size", "ramoops.console_size", "ramoops.ftrace_size",
                "ramoops.pmsg_size"):
        v = board.get(key)
        r = ramoops.rounddown_pow_of_two(v)
        if v != r:
            board.warnings.append("%s: %s 0x%x is not a power of two; the kernel rounds it down to 0x%x"
                                  % (board.where(key), key, v, r))
    try:
        board.zones()
    except ConfigError as e:
        raise ConfigError("%s: %s" % (board.where("ramoops.mem_size"), e))


def _check_phram(board, page):
    name = board.get("phram.name")
    # it goes into a cmdline (phram.phram=NAME,...), a DT string and mtd:NAME
    if not name or len(name) > 63 or any(c not in PHRAM_NAME_CHARS for c in name):
        raise ConfigError("%s: phram.name must be 1..63 characters of letters, digits and "
                          "-_.+@:" % board.where("phram.name"))
    _aligned(board, "phram.start", page)
    length = board.get("phram.len")
    if length == 0:
        raise ConfigError("%s: phram.len is 0" % board.where("phram.len"))
    es = board.phram_erasesize
    if es == 0 or es > length or length % es:
        key = "phram.erasesize" if board.has("phram.erasesize") else "phram.len"
        raise ConfigError("%s: phram.len 0x%x is not a multiple of its erase size 0x%x"
                          % (board.where(key), length, es))
