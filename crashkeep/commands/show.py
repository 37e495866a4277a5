"""`crashkeep show` and the bundles section of `crashkeep list`: read salvaged bundles."""
import sys
import time

from crashkeep.system import storage
from crashkeep.commands.spec import BOARD, ROOT, Command, Param
from crashkeep.commands.boot import DIR
from crashkeep.errors import ConfigError, DeviceError
from crashkeep.ops.bundles import META, read_meta, dumps, bundle_summaries, find_bundle


def bundles_dir(opts):
    """(path, target-to-close or None) of the board's bundle directory."""
    if getattr(opts, "dir", None):
        return opts.dir, None
    from crashkeep.system import locate
    board = locate.find_board(opts.board)
    t = storage.open_target(board, getattr(opts, "root", "/") or "/", create=False)
    return t.path, t


def bundles_section(opts, board=None):
    """`crashkeep list`'s section for the bundles salvaged to flash (see list.SECTIONS)."""
    from crashkeep.ops.sections import Section, when
    if board is None:
        from crashkeep.system import locate
        board = locate.find_board(getattr(opts, "board", None))
    t = storage.open_target(board, "/", create=False)
    try:
        metas = bundle_summaries(t.path)
    finally:
        t.close()
    rows = []
    for m in metas:
        files = m.get("files", [])
        rows.append([str(m.get("seq", "?")), m.get("reason", "?"), when(m.get("salvaged_at")),
                     str(len(files)), str(sum(f.get("size", 0) for f in files)), m["bundle"]])
    return Section("bundles", "salvaged bundles (%s)" % t.path,
                   ["ID", "REASON", "SALVAGED", "FILES", "BYTES", "BUNDLE"], rows, metas)


def show(opts):
    path, target = bundles_dir(opts)
    try:
        name = find_bundle(path, opts.id)
        bdir = path + "/" + name
        meta = read_meta(bdir)
        if meta is None:
            raise DeviceError("Failed to read '%s/%s'" % (bdir, META))
        if opts.file:
            for f in meta.get("files", []):
                if opts.file in (f.get("name"), f.get("file")):
                    data = storage.read_file(bdir + "/" + f["file"])
                    if f["file"].endswith(".gz") and not f["name"].endswith(".gz"):
                        data = storage.decompress(data)
                    out = getattr(sys.stdout, "buffer", None)
                    if out is not None:
                        out.write(data)
                    else:
                        sys.stdout.write(data.decode())
                    return 0
            raise ConfigError("bundle %s has no file '%s'" % (name, opts.file))
        if opts.json:
            sys.stdout.write(dumps(meta) + "\n")
            return 0
        w = sys.stdout.write
        t = time.gmtime(int(meta.get("salvaged_at", 0)))
        w("bundle     %s\n" % name)
        w("board      %s\n" % meta.get("board"))
        w("reason     %s (boot ended: %s, %s boot)\n" % (meta.get("reason"), meta.get("boot_reason"),
                                                     "warm" if meta.get("warm") else "cold"))
        c = meta.get("counters", {})
        w("counters   boot #%s, %s panic(s) in a row\n" % (c.get("boot_count"), c.get("panic_count")))
        w("kernel     %s\n" % meta.get("kernel"))
        w("firmware   %s\n" % (meta.get("firmware") or "-"))
        w("boot id    %s\n" % (meta.get("boot_id") or "-"))
        w("salvaged   %04d-%02d-%02d %02d:%02d:%02d UTC\n" % t[:6])
        w("files:\n")
        for f in meta.get("files", []):
            extra = " (%s)" % f["reason"] if f.get("reason") else ""
            w("  %-28s %-7s %8d bytes  crc32 %08x%s\n" % (f.get("name"), f.get("source"),
                                                        f.get("size", 0), f.get("crc32", 0), extra))
        return 0
    finally:
        if target is not None:
            target.close()


COMMANDS = [
    Command("show", "Show one salvaged bundle (ID: sequence number or name).",
            [Param("id", positional=True, required=True), BOARD, DIR, ROOT,
             Param("json", kind="flag", help="Print meta.json."),
             Param("file", help="Print this file of the bundle (decompressed).")], show,
            fast=True),
]
