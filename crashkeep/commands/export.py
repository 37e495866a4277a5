"""`crashkeep export`: hand salvaged bundles to the board's transports (the spool in
crashkeep.ops.export), or write them to stdout for a pipe."""
import sys
import time

from crashkeep.commands.boot import BOARD, DIR, ROOT
from crashkeep.commands.show import bundles_dir
from crashkeep.commands.spec import Command, Param
from crashkeep.compat import monotonic, strerror
from crashkeep.errors import ConfigError, DeviceError
from crashkeep.ops.bundles import META, find_bundle, list_bundles, read_meta
from crashkeep.ops.export import bundles_in, mark, marked, run, transports
from crashkeep.system import storage


# ---------------------------------------------------------------- stdout formats

def bundle_files(bdir):
    """[(relative path, absolute path)] of a bundle's own files (no spool marks)."""
    import os
    out = []
    for n in sorted(os.listdir(bdir)):
        if n.startswith("."):
            continue
        p = bdir + "/" + n
        if storage.is_dir(p):
            for m in sorted(os.listdir(p)):
                if not m.startswith(".") and not storage.is_dir(p + "/" + m):
                    out.append((n + "/" + m, p + "/" + m))
        else:
            out.append((n, p))
    return out


def write_tar(out, bundles):
    """One ustar stream holding each bundle as <name>/..., as stored on flash."""
    import io
    import tarfile
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tf:
        for name, bdir in bundles:
            for rel, p in bundle_files(bdir):
                data = storage.read_file(p)
                ti = tarfile.TarInfo(name + "/" + rel)
                ti.size = len(data)
                ti.mode = 0o644
                try:
                    import os
                    ti.mtime = int(os.stat(p).st_mtime)
                except OSError:
                    ti.mtime = 0
                tf.addfile(ti, io.BytesIO(data))


def json_doc(name, bdir):
    """{"bundle", "meta", "files": [{"name", "size", "encoding", "data"}]}; records
    decompressed, text as UTF-8, anything else base64."""
    import base64
    meta = read_meta(bdir)
    if meta is None:
        raise DeviceError("Failed to read '%s/%s'" % (bdir, META))
    files = []
    for f in meta.get("files", []):
        data = storage.read_file(bdir + "/" + f["file"])
        if f["file"].endswith(".gz") and not f["name"].endswith(".gz"):
            data = storage.decompress(data)
        try:
            text, enc = bytes(data).decode("utf-8"), "utf-8"
        except UnicodeError:
            text, enc = base64.b64encode(data).decode(), "base64"
        files.append({"name": f["name"], "size": len(data), "encoding": enc, "data": text})
    return {"bundle": name, "meta": meta, "files": files}


# ---------------------------------------------------------------- the command

def _out():
    return getattr(sys.stdout, "buffer", sys.stdout)


def _to_stdout(fmt, bundles):
    import json
    out = _out()
    try:
        if fmt == "json":
            for name, bdir in bundles:
                out.write((json.dumps(json_doc(name, bdir), sort_keys=True) + "\n").encode())
        else:
            write_tar(out, bundles)
        out.flush()
    except OSError as e:
        raise DeviceError("Failed to write to stdout: %s" % strerror(e))


def export(opts):
    if opts.format not in (None, "tar", "json"):
        raise ConfigError("export: --format is tar or json, not %r" % opts.format)
    if bool(opts.id) == bool(opts.new):
        raise ConfigError("export: give a bundle ID or --new")
    if opts.timeout <= 0:
        raise ConfigError("export: --timeout must be above 0")
    spool = opts.new and opts.format is None
    board = None
    if spool or not opts.dir:
        from crashkeep.formats import boardconf
        board = boardconf.load(opts.board)
    path, target = bundles_dir(opts)
    try:
        if opts.id:
            name = find_bundle(path, opts.id)
            _to_stdout(opts.format or "tar", [(name, path + "/" + name)])
            return 0
        if not spool:
            todo = [(n, path + "/" + n) for _s, n in list_bundles(path)
                    if not marked(path + "/" + n, "stdout")]
            _to_stdout(opts.format, todo)
            now = time.time()
            for _n, bdir in todo:
                mark(bdir, "stdout", now)
            return 0
        if not transports(board):
            sys.stdout.write("crashkeep: export: no transport configured (export.syslog, "
                             "export.command)\n")
            return 0
        res = run(board, bundles_in(path), monotonic() + opts.timeout,
                  log=lambda line: sys.stderr.write(line + "\n"), root=opts.root or "/")
        sys.stdout.write("crashkeep: export: %d sent, %d failed, %d left for later\n"
                         % (len(res.sent), len(res.failed), res.left))
        return 1 if res.failed or res.left else 0
    finally:
        if target is not None:
            target.close()


COMMANDS = [
    Command("export", "Hand salvaged bundles to syslog / export.command, or write them to "
            "stdout.", [
                Param("id", positional=True, help="Bundle (sequence number or name)."),
                Param("new", kind="flag", help="Every bundle not yet exported: to the board's "
                      "transports (syslog, export.command), or with --format to stdout."),
                Param("format", help="Write to stdout as tar (the bundle as on flash) or json "
                      "(one object per bundle and line)."),
                Param("timeout", kind="float", default=60.0,
                      help="Leave what is not exported by then for the next run."),
                BOARD, DIR, ROOT], export, fast=True),
]
