"""`crashkeep ramoops`: read records from a raw ramoops region.

SOURCE is an image file, an MTD device (/dev/mtdN, mtd:NAME) or /dev/mem with
--mem-address. Options omitted take the ramoops module's defaults (mem_size:
the size of SOURCE), so the parameters given to insmod reproduce the kernel's
/sys/fs/pstore files byte for byte.
"""
import sys

from crashkeep.formats import ramoops
from crashkeep.compat import strerror, errno_of, makedirs
from crashkeep.commands.spec import Command, Param
from crashkeep.errors import ConfigError, DeviceError, FormatError
from crashkeep.limits import REGION_SIZE_MAX

DEV_MEM = "/dev/mem"
READ_CHUNK = 1 << 20


def out(text):
    sys.stdout.write(text + "\n")


def params_from(opts, source_size=None):
    """ramoops.Params from the board (see locate), then the explicit options over it."""
    from crashkeep.system import locate
    board = locate.find_board(opts.board, required=False)
    if board is not None and not board.has_ramoops:
        if locate.named_board(opts.board):
            raise ConfigError("%s: no ramoops.* keys" % board.path)
        board = None        # the default board config describes no region here
    if board is not None:
        p = board.ramoops_params()
    else:
        p = ramoops.Params(0, order=ramoops.ORDER_AUTO)
    for key in ("mem_size", "record_size", "console_size", "ftrace_size", "pmsg_size",
                "ecc", "mem_address", "cpus"):
        v = getattr(opts, key, None)
        if v is not None:
            setattr(p, key, v)
    if opts.kernel:
        if opts.kernel not in ("6.1", "6.2", "auto"):
            raise ConfigError("--kernel must be 6.1, 6.2 (6.2 and newer) or auto, not %r"
                              % opts.kernel)
        p.order = opts.kernel
    if not p.mem_size:
        if source_size is None:
            raise ConfigError("--mem-size is needed for this source")
        p.mem_size = source_size
    if p.mem_size > REGION_SIZE_MAX:
        raise ConfigError("mem_size 0x%x is larger than the 0x%x we read" % (p.mem_size,
                                                                        REGION_SIZE_MAX))
    return p


def source_path(source):
    if source.startswith("mtd:"):
        from crashkeep.system import mtd
        return mtd.resolve(source)
    return source


def _size_of(path, f):
    if path.startswith("/dev/mtd"):
        try:
            from crashkeep.system import mtd
            return mtd.device_info(path, f).size
        except (ImportError, DeviceError):
            pass
    try:
        end = f.seek(0, 2)
        f.seek(0)
        return end
    except OSError:
        return None


def read_source(opts):
    """(region bytes, Params) for the command's SOURCE and options."""
    path = source_path(opts.source)
    is_mem = path == DEV_MEM
    from crashkeep.system.mtd import open_checked
    try:
        f = open_checked(path)
    except OSError as e:
        raise DeviceError("Failed to open '%s': %s" % (path, strerror(e)))
    try:
        size = None if is_mem else _size_of(path, f)
        offset = opts.offset or 0
        if is_mem:
            if opts.mem_address is None and not opts.board:
                raise ConfigError("/dev/mem needs --mem-address (or --board)")
        p = params_from(opts, None if size is None else max(0, size - offset))
        if is_mem:
            offset = p.mem_address if opts.offset is None else opts.offset
        want = p.mem_size
        if size is not None:
            # never allocate past what the file holds (a wrong --mem-size)
            want = max(0, min(want, size - offset))
        data = _read_at(f, path, offset, want)
    finally:
        f.close()
    if not data:
        raise FormatError("'%s' holds no bytes at offset 0x%x" % (path, offset))
    return data, p


def _read_at(f, path, offset, size):
    if path == DEV_MEM:
        # read() or, where the kernel refuses it, a mapping (kmod.read_phys)
        from crashkeep.system import kmod
        try:
            return kmod.read_phys(path, offset, size)
        except OSError as e:
            raise DeviceError("Failed to read '%s' at 0x%x: %s" % (path, offset, strerror(e)))
    buf = bytearray(size)
    mv = memoryview(buf)
    got = 0
    try:
        if offset:
            f.seek(offset)
        while got < size:
            n = f.readinto(mv[got:got + READ_CHUNK])
            if not n:
                break
            got += n
    except OSError as e:
        raise DeviceError("Failed to read '%s' at 0x%x: %s" % (path, offset + got, strerror(e)))
    return bytes(buf[:got]) if got < size else buf


def _fmt_time(t):
    if not t:
        return "-"
    try:
        import time
        tm = time.gmtime(t)
        return "%04d-%02d-%02d %02d:%02d:%02d" % tuple(tm[:6])
    except (OverflowError, ValueError, OSError):
        return str(t)


def _what(rec):
    w = []
    if rec.reason:
        w.append("%s#%s" % (rec.reason, rec.count))
    if rec.encoded:
        w.append("still compressed")
    elif rec.compressed:
        w.append("inflated")
    if rec.ecc:
        w.append("ECC %d corrected, %d bad" % (rec.ecc.corrected, rec.ecc.bad_blocks))
    return ", ".join(w)


def extract(opts):
    data, p = read_source(opts)
    recs = ramoops.read_region(data, p, inflate=not opts.no_inflate)
    makedirs(opts.out)
    for r in recs:
        _write(opts.out, r)
        out("%-26s %7d  %s  %s" % (r.name, len(r.data), _fmt_time(r.time), _what(r)))
    if not recs:
        out("no records")
    return 0


def _write(dirpath, rec):
    """Durable write (temp, fsync, rename, fsync dir), then the record's mtime."""
    import os
    from crashkeep.system import storage
    storage.write_durable(dirpath, rec.name, rec.data)
    if rec.time and hasattr(os, "utime"):
        path = dirpath + "/" + rec.name
        try:
            if 0 <= rec.usec < 1000000:
                # the kernel's inode time: sec and usec * 1000 ns
                ns = rec.time * 1000000000 + rec.usec * 1000
                os.utime(path, ns=(ns, ns))
            else:
                os.utime(path, (rec.time, rec.time))
        except TypeError:              # no ns= (MicroPython)
            try:
                os.utime(path, (rec.time, rec.time))
            except (OSError, OverflowError, ValueError):
                pass
        except (OSError, OverflowError, ValueError):
            pass                       # a time the filesystem cannot hold: keep "now"


def list_zones(opts):
    data, p = read_source(opts)
    zones, order = ramoops._layout_for(data, p)
    states, recs = ramoops.scan(data, p.copy(order=order), inflate=not opts.no_inflate)
    if opts.json:
        import json
        d = {"source": opts.source, "mem_size": p.mem_size, "mem_address": p.mem_address,
             "ecc": ramoops.ecc_bytes(p.ecc), "order": order, "cpus": p.cpus,
             "bytes_read": len(data), "zones": [s.as_dict() for s in states],
             "records": [{"name": r.name, "size": len(r.data), "zone": r.zone.label,
                          "time": r.time, "usec": r.usec, "reason": r.reason,
                          "count": r.count, "compressed": r.compressed,
                          "encoded": r.encoded,
                          "ecc": r.ecc.as_dict() if r.ecc else None} for r in recs]}
        out(json.dumps(d, indent=2, sort_keys=True))
        return 0
    out("region 0x%x bytes (read 0x%x), ecc %d, zone order %s, %d cpu(s)"
        % (p.mem_size, len(data), ramoops.ecc_bytes(p.ecc), order, p.cpus))
    out("%-20s %-9s %-7s %-10s %-10s %-6s %-14s %-19s %s" % (
        "zone", "offset", "size", "status", "start/used", "endian", "ecc", "time", "record"))
    for s in states:
        z = s.zone
        su = "%d/%d" % (s.start, s.size) if s.start is not None else "-"
        ecc = "%d fixed %d bad" % (s.ecc.corrected, s.ecc.bad_blocks) if s.ecc else "-"
        r = s.record
        rec = "-"
        if r:
            rec = r.name
            if r.compressed:
                rec += " (compressed)"
            if r.reason:
                rec += " %s#%s" % (r.reason, r.count)
        line = "%-20s 0x%-7x 0x%-5x %-10s %-10s %-6s %-14s %-19s %s" % (
            z.label[8:], z.offset, z.size, s.status, su,
            {"<": "le", ">": "be"}.get(s.endian, "-"), ecc,
            _fmt_time(r.time if r else 0), rec)
        out(line.rstrip())
        if s.note:
            out("    note: " + s.note)
    return 0


def _params():
    return [
        Param("source", positional=True, required=True,
              help="Image file, /dev/mtdN, mtd:NAME or /dev/mem."),
        Param("board", metavar="CONFIG", help="Board config with the ramoops.* keys [default: "
              "$CRASHKEEP_BOARD, else /etc/crashkeep/board.conf if it exists]."),
        Param("mem-size", kind="size", help="Region size (default: the source's size)."),
        Param("record-size", kind="size", help="ramoops record_size [4096]."),
        Param("console-size", kind="size", help="ramoops console_size [4096]."),
        Param("ftrace-size", kind="size", help="ramoops ftrace_size [4096]."),
        Param("pmsg-size", kind="size", help="ramoops pmsg_size [4096]."),
        Param("ecc", kind="size", help="ramoops ecc (1 means 16 parity bytes) [0]."),
        Param("mem-address", kind="size", help="Physical address (where /dev/mem is read)."),
        Param("offset", kind="size", help="Where the region starts in SOURCE [0]."),
        Param("cpus", kind="size", help="Possible CPUs (splits ftrace_size) [1]."),
        Param("kernel", help="Zone order: 6.1, 6.2 (6.2 and newer) or auto [auto]."),
        Param("no-inflate", kind="flag",
              help="Keep compressed records as .enc.z (a kernel without a decompressor)."),
    ]


COMMANDS = [
    Command("ramoops extract", "Extract records from a raw region into a directory, as "
            "/sys/fs/pstore would show them.",
            _params() + [Param("out", required=True, help="Directory for the records.")],
            extract),
    Command("ramoops list", "List every zone of a raw region.",
            _params() + [Param("json", kind="flag", help="Print JSON.")], list_zones),
]
