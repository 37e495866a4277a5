"""`crashkeep dump` and `crashkeep list`: show phram records.

`list` prints sections, one per kind of kept evidence. SECTIONS names the
function of each, imported only when `list` runs; another module adds its
own by appending ("crashkeep.module", "function") here. A section function
takes (opts, board) and returns a Section, or None when it has nothing to say.
`board` is the loaded board config (crashkeep.system.locate: --board,
$CRASHKEEP_BOARD, else /etc/crashkeep/board.conf if it exists). Sections are skipped when there is no
board config, except those listed with a third element False (needs no board:
the keep area also works from --device alone).
"""
import sys

from crashkeep.commands.spec import BOARD, DEVICE, Command, Param
from crashkeep.errors import CrashkeepError, ConfigError

SECTIONS = [("crashkeep.commands.dump", "keep_section", False), ("crashkeep.commands.show", "bundles_section")]


class Section:
    """title, column names, rows (lists of str), and the same data for --json."""

    def __init__(self, key, title, columns, rows, items):
        self.key = key
        self.title = title
        self.columns = columns
        self.rows = rows
        self.items = items


def when(t):
    if not t:
        return "-"
    import time
    y, mo, d, h, mi, s = time.gmtime(int(t))[:6]
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)


def _open(opts, write=False):
    from crashkeep.system import keeparea
    return keeparea.open_configured(opts.board, opts.device, write=write)


def keep_section(opts, board=None):
    from crashkeep.system import keeparea, locate
    if board is not None:
        area = keeparea.open_area(locate.device(board, opts.device), write=False, board=board)
    else:
        area, _board = _open(opts)
    try:
        recs = area.list()
    finally:
        area.close()
    rows = []
    for r in recs:
        rows.append([r.name, str(r.seq), str(r.length), str(r.orig_size), when(r.wall_time),
                     "%.1f" % r.uptime, r.boot_id[:8] or "-", r.source or "-"])
    return Section("records", "phram records (%s)" % area.path,
                   ["NAME", "SEQ", "BYTES", "OF", "SAVED", "UPTIME", "BOOT", "SOURCE"], rows,
                   [r.as_dict() for r in recs])


def _table(out, section):
    out.write(section.title + ":\n")
    if not section.rows:
        out.write("  (none)\n")
        return
    widths = [len(c) for c in section.columns]
    for row in section.rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [section.columns] + section.rows:
        out.write("  " + "  ".join(c + " " * (widths[i] - len(c)) for i, c in
                                   enumerate(row)).rstrip() + "\n")


def run_list(opts):
    from crashkeep.compat import import_module
    out = sys.stdout
    result = {}
    rc = 0
    first = True
    from crashkeep.system import locate
    board = locate.find_board(opts.board, required=False)
    for entry in SECTIONS:
        mod_name, fn_name = entry[0], entry[1]
        if board is None and (len(entry) < 3 or entry[2]):
            continue
        try:
            sec = getattr(import_module(mod_name), fn_name)(opts, board)
        except CrashkeepError as e:
            # one missing source (no phram loaded) must not hide the others
            sys.stderr.write("crashkeep: %s\n" % e)
            rc = e.exit_code
            continue
        if sec is None:
            continue
        if opts.json:
            result[sec.key] = sec.items
        else:
            if not first:
                out.write("\n")
            _table(out, sec)
            first = False
    if opts.json:
        import json
        out.write(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return rc


def _payload_json(info, payload):
    d = info.as_dict()
    try:
        d["text"] = payload.decode("utf-8")
    except UnicodeError:
        import binascii
        d["base64"] = binascii.b2a_base64(payload).decode().strip()
    return d


def _write(out_path, data):
    from crashkeep.compat import strerror
    from crashkeep.errors import DeviceError
    if out_path is None or out_path == "-":
        out = getattr(sys.stdout, "buffer", sys.stdout)
        out.write(data)
        out.flush()
        return
    try:
        with open(out_path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise DeviceError("Failed to write '%s': %s" % (out_path, strerror(e)))


def run_dump(opts):
    if opts.raw:
        return dump_raw(opts)
    area, _board = _open(opts)
    try:
        if opts.name and not opts.all:
            got = area.get(opts.name)
            if got is None:
                raise CrashkeepError("no record '%s' in %s" % (opts.name, area.path))
            chosen = [got]
        else:
            chosen = [area.get(r.name) for r in area.list()]
    finally:
        area.close()
    for info, _payload in chosen:
        if info.bad_name is not None:      # reported, and read under its safe name
            sys.stderr.write("crashkeep: %s\n" % info.bad_name_note())
    if opts.json:
        import json
        doc = [_payload_json(i, p) for i, p in chosen]
        _write(opts.out, (json.dumps(doc if opts.all or not opts.name else doc[0], indent=1,
                                     sort_keys=True) + "\n").encode())
        return 0
    if len(chosen) == 1 and opts.name:
        _write(opts.out, chosen[0][1])
        return 0
    if opts.out and opts.out != "-":
        # several records: --out names a directory, one file per record
        from crashkeep.system.storage import makedirs
        makedirs(opts.out)
        for info, payload in chosen:
            _write(opts.out.rstrip("/") + "/" + info.name, payload)
        return 0
    parts = []
    for info, payload in chosen:
        parts.append(b"==> %s <==\n" % info.name.encode())
        parts.append(payload)
        if payload and not payload.endswith(b"\n"):
            parts.append(b"\n")
    _write(None, b"".join(parts))
    return 0


def dump_raw(opts):
    """The whole region: the bytes of `dd if=/dev/mtdX bs=<len> count=1`."""
    from crashkeep.system import blockcopy, locate, mtd
    if opts.name or opts.all or opts.json:
        raise ConfigError("dump: --raw takes no NAME, --all or --json")
    _board, dev = locate.board_and_device(opts.board, opts.device)
    path = mtd.resolve(dev)
    progress = None
    if opts.out and opts.out != "-":
        from crashkeep.commands.copy import tty_progress
        from crashkeep.compat import exists
        import os
        progress = tty_progress(os.stat(path)[6] if exists(path) else None)
    blockcopy.copy(path, opts.out or "-", progress=progress)
    return 0


COMMANDS = [
    Command("dump", "Print a phram record (or all of them).", [
        Param("name", positional=True),
        Param("all", "flag", False, help="every record"),
        Param("json", "flag", False, help="records and their headers as JSON"),
        Param("out", help="write to FILE (a directory with several records)", metavar="FILE"),
        Param("raw", "flag", False, help="the whole region, as dd would read it"),
        BOARD, DEVICE,
    ], run_dump, fast=True),
    Command("list", "List phram records and salvaged bundles.", [
        Param("json", "flag", False, help="as JSON"),
        BOARD, DEVICE,
    ], run_list, fast=True),
]
