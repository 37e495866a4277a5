"""ramoops reserved-memory region: zone layout.

Layout source: Linux fs/pstore/ram.c (ramoops_probe, ramoops_init_przs) and
fs/pstore/ram_core.c (persistent_ram_init_ecc), 6.1 and 6.12.

The region is carved from mem_address upward, zones packed with no padding:

| group   | count                 | zone size                       |
|---------|-----------------------|---------------------------------|
| dmesg   | cnt = D // R          | Z = D // cnt (even-rounded)     |
| console | 1 if C                | C                               |
| pmsg    | 1 if P (6.2+: here)   | P                               |
| ftrace  | cpus (per-CPU flag)   | F // cpus (even-rounded)        |
| pmsg    | 1 if P (6.1: here)    | P                               |

with D = mem_size - C - F - P and R, C, F, P rounded down to powers of two.
"""
from crashkeep.errors import ConfigError

# Module-parameter defaults (fs/pstore/ram.c: MIN_MEM_SIZE for each size).
DEFAULT_RECORD_SIZE = 4096
DEFAULT_CONSOLE_SIZE = 4096
DEFAULT_FTRACE_SIZE = 4096
DEFAULT_PMSG_SIZE = 4096
DEFAULT_MAX_REASON = 2
ECC_BLOCK_SIZE = 128
PRZ_HEADER_SIZE = 12            # struct persistent_ram_buffer: sig, start, size

ORDER_6_1 = "6.1"               # dmesg, console, ftrace, pmsg
ORDER_6_2 = "6.2"               # dmesg, console, pmsg, ftrace


def rounddown_pow_of_two(n):
    if n <= 0:
        return 0
    p = 1
    while p * 2 <= n:
        p *= 2
    return p


def ecc_bytes(ecc):
    """The module parameter `ecc=1` means 16 parity bytes (ramoops_register_dummy)."""
    return 16 if ecc == 1 else ecc


def ecc_geometry(zone_size, ecc_size):
    """(B, nblocks): the ring capacity and the parity block count of one zone.

    persistent_ram_init_ecc: nblocks = ceil((B0 - E) / (128 + E)) with
    B0 = zone_size - 12; parity for every block plus one for the header.
    """
    b0 = zone_size - PRZ_HEADER_SIZE
    if ecc_size == 0:
        return b0, 0
    nblocks = (b0 + ECC_BLOCK_SIZE - 1) // (ECC_BLOCK_SIZE + ecc_size)
    total = (nblocks + 1) * ecc_size
    if total >= b0:
        raise ConfigError("zone of %d bytes is too small for ecc=%d" % (zone_size, ecc_size))
    return b0 - total, nblocks


class Zone:
    """One persistent_ram_zone: where it is and how big its ring is."""

    def __init__(self, kind, index, count, offset, size, ecc_size):
        self.kind = kind          # "dmesg", "console", "ftrace", "pmsg"
        self.index = index        # index within its group
        self.count = count        # zones in its group
        self.offset = offset      # from mem_address
        self.size = size
        self.ecc_size = ecc_size
        self.data_size, self.ecc_blocks = ecc_geometry(size, ecc_size)

    @property
    def label(self):
        # ramoops_init_przs/prz labels, as in /proc/iomem
        if self.kind in ("dmesg", "ftrace") and (self.kind == "dmesg" or self.count > 1):
            return "ramoops:%s(%d/%d)" % (self.kind, self.index, self.count - 1)
        return "ramoops:" + self.kind

    def as_dict(self):
        return {"kind": self.kind, "index": self.index, "offset": self.offset,
                "size": self.size, "data_size": self.data_size, "label": self.label}


class Params:
    """The ramoops module parameters that decide a layout (module defaults)."""

    def __init__(self, mem_size, record_size=DEFAULT_RECORD_SIZE,
                 console_size=DEFAULT_CONSOLE_SIZE, ftrace_size=DEFAULT_FTRACE_SIZE,
                 pmsg_size=DEFAULT_PMSG_SIZE, ecc=0, cpus=1, order=ORDER_6_2,
                 even_round=True, ftrace_per_cpu=True, mem_address=0):
        self.mem_address = mem_address
        self.mem_size = mem_size
        self.record_size = record_size
        self.console_size = console_size
        self.ftrace_size = ftrace_size
        self.pmsg_size = pmsg_size
        self.ecc = ecc
        self.cpus = cpus
        self.order = order
        self.even_round = even_round
        self.ftrace_per_cpu = ftrace_per_cpu


def layout(p):
    """Zones exactly as ramoops_probe() carves them; ConfigError where probe fails."""
    if p.mem_size <= 0:
        raise ConfigError("mem_size is 0: ramoops ignores the region")
    r = rounddown_pow_of_two(p.record_size)
    c = rounddown_pow_of_two(p.console_size)
    f = rounddown_pow_of_two(p.ftrace_size)
    pm = rounddown_pow_of_two(p.pmsg_size)
    if not (r or c or f or pm):
        raise ConfigError("every ramoops zone size is 0")
    e = ecc_bytes(p.ecc)
    if e < 0 or e > ECC_BLOCK_SIZE - 1:
        raise ConfigError("ecc must be 0..127 parity bytes, not %d" % e)
    dmesg_area = p.mem_size - c - f - pm
    if dmesg_area < 0:
        raise ConfigError("console + ftrace + pmsg (0x%x) exceed mem_size (0x%x)"
                          % (c + f + pm, p.mem_size))
    zones = []
    cursor = 0

    def group(kind, total, n):
        nonlocal cursor
        if total == 0 or n == 0:
            return
        zsize = total // n
        if p.even_round:
            zsize &= ~1
        if cursor + zsize * n > p.mem_size:
            raise ConfigError("no room for %s mem region (0x%x@0x%x) in 0x%x"
                              % (kind, zsize * n, cursor, p.mem_size))
        for i in range(n):
            zones.append(Zone(kind, i, n, cursor, zsize, e))
            cursor += zsize

    if r and dmesg_area:
        cnt = dmesg_area // r
        if cnt == 0:
            raise ConfigError("record_size 0x%x does not fit the 0x%x left for dmesg"
                              % (r, dmesg_area))
        group("dmesg", dmesg_area, cnt)
    group("console", c, 1)
    nftrace = p.cpus if p.ftrace_per_cpu else 1
    if p.order == ORDER_6_1:
        group("ftrace", f, nftrace)
        group("pmsg", pm, 1)
    else:
        group("pmsg", pm, 1)
        group("ftrace", f, nftrace)
    return zones
