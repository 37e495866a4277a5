"""`crashkeep dump`: print phram records (one, all, as JSON, or the raw region)."""
import sys

from crashkeep.commands.spec import BOARD, DEVICE, Command, Param
from crashkeep.errors import CrashkeepError, ConfigError


def _open(opts, write=False):
    from crashkeep.system import keeparea
    return keeparea.open_configured(opts.board, opts.device, write=write)


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
    blockcopy.copy(path, opts.out or "-", progress=progress, device_only=True)
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
]
