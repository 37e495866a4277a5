"""Salvage bundles on the flash target, and the ledger of what they hold.

A bundle is a directory `<seq>-<YYYYmmddTHHMMSSZ>-<reason>/` with the salvaged
files and `meta.json` (written last; the directory is renamed into place as
the commit). `.ledger` lists `<digest> <seq>` for every record a bundle holds;
with the meta.json of bundles it does not name yet, it says what is on flash.
Retention picks the oldest bundles to remove; removal hides a bundle first.
"""
import time

from crashkeep.system import storage
from crashkeep.compat import read_text
from crashkeep.system.kmod import sysos as os, is_dir
from crashkeep.errors import ConfigError

LEDGER = ".ledger"
STAGING = ".new-"
DOOMED = ".old-"              # a bundle being deleted: hidden first, so a cut never leaves half of one
META = "meta.json"
LEDGER_MAX = 1024            # ledger lines kept (oldest dropped; their bundles are long gone)
BUNDLES_SCAN_MAX = 10000     # directory entries looked at in the flash directory
META_MAX = 1 << 20           # a meta.json we wrote is far smaller


def bundle_seq(name):
    """Sequence number of a bundle directory name, or None."""
    head = name.split("-", 1)[0]
    if not head or not head.isdigit() or name.startswith("."):
        return None
    return int(head)


def bundle_name(seq, now, reason):
    t = time.gmtime(int(now))
    return "%04d-%04d%02d%02dT%02d%02d%02dZ-%s" % (seq, t[0], t[1], t[2], t[3], t[4], t[5], reason)


def list_bundles(path):
    """[(seq, name)] of the bundles in path, oldest first."""
    try:
        names = os.listdir(path)
    except OSError:
        return []
    out = []
    for n in names[:BUNDLES_SCAN_MAX]:
        s = bundle_seq(n)
        if s is not None and is_dir(path + "/" + n):
            out.append((s, n))
    out.sort()
    return out


def read_small(path, limit):
    """Text of a file we wrote, sized by stat: MicroPython allocates read(n) up front."""
    size = os.stat(path)[6]
    if size > limit:
        raise ValueError("'%s' is larger than %d bytes" % (path, limit))
    return read_text(path, size + 1)


def read_meta(bundle_dir):
    import json
    try:
        return json.loads(read_small(bundle_dir + "/" + META, META_MAX))
    except (OSError, ValueError):
        return None


_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jstr(s):
    out = []
    for ch in s:
        e = _ESC.get(ch)
        if e is None and ord(ch) < 0x20:
            e = "\\u%04x" % ord(ch)
        out.append(e or ch)
    return '"' + "".join(out) + '"'


def dumps(obj, indent=""):
    """JSON text of meta.json (dict, list, str, int, bool, None), keys sorted, one
    item a line. Written here, not with json: json imports re (and enum), which
    costs milliseconds and a megabyte at boot; MicroPython's json has no indent."""
    if obj is None:
        return "null"
    if obj is True or obj is False:
        return "true" if obj else "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, str):
        return _jstr(obj)
    inner = indent + " "
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [inner + _jstr(str(k)) + ": " + dumps(obj[k], inner) for k in sorted(obj)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in obj) + "\n" + indent + "]"
    raise TypeError("cannot write %s as JSON" % type(obj).__name__)


class Ledger:
    """Digests of records already durable on flash: `.ledger` + unnamed bundles' meta."""

    def __init__(self, path):
        self.path = path
        self.lines = []       # (digest, seq)
        try:
            text = read_small(path + "/" + LEDGER, LEDGER_MAX * 200)
        except (OSError, ValueError):
            text = ""
        for line in text.split("\n"):
            f = line.split()
            if len(f) == 2 and f[1].isdigit():
                self.lines.append((f[0], int(f[1])))

    def known(self, bundles):
        """digest -> the newest of `bundles` (live ones) that holds it."""
        have = {}
        seqs = {}
        live = {}
        for seq, _ in bundles:
            live[seq] = True
        for d, s in self.lines:
            seqs[s] = True
            if s in live and s > have.get(d, 0):    # a removed bundle holds nothing
                have[d] = s
        for seq, name in bundles:
            if seq in seqs:
                continue
            meta = read_meta(self.path + "/" + name)
            for f in (meta or {}).get("files", []):
                d = f.get("digest")
                if d:
                    if seq > have.get(d, 0):
                        have[d] = seq
                    self.lines.append((d, seq))
        return have

    def max_seq(self):
        return max([s for _, s in self.lines] or [0])

    def add(self, digests, seq):
        for d in digests:
            self.lines.append((d, seq))

    def save(self):
        lines = self.lines[-LEDGER_MAX:]
        text = "".join("%s %d\n" % (d, s) for d, s in lines)
        storage.write_durable(self.path, LEDGER, text.encode())


def retention(bundles, sizes, max_count, max_bytes, needed, free):
    """The oldest bundles to remove so that the new one (`needed` bytes; 0: none
    is written) fits the limits: count, total bytes and SLACK_BYTES left free
    (where removing bundles can reach it at all). Without a new bundle the
    newest stays: a bundle goes only for a newer one."""
    new = 1 if needed else 0
    total = 0
    for _, n in bundles:
        total += sizes[n]
    want = needed + storage.SLACK_BYTES if new else 0
    if free + total < want:
        want = needed       # the slack is out of reach: remove only what makes it fit
    left = list(bundles)
    out = []
    while len(left) > 1 - new:
        if len(left) + new <= max_count and total + needed <= max_bytes and free >= want:
            break
        _, n = left.pop(0)
        total -= sizes[n]
        free += sizes[n]
        out.append(n)
    return out


def remove_bundle(path, name):
    """Hide the bundle first (rename to .old-), so a cut never leaves half of one listed;
    the next run finishes the delete."""
    doomed = path + "/" + DOOMED + name
    try:
        os.rename(path + "/" + name, doomed)
        storage.fsync_dir(path)
    except OSError:
        doomed = path + "/" + name
    storage.remove_tree(doomed)


def bundle_summaries(path):
    """[meta dict (with 'bundle', 'seq', 'files')] of every bundle in path, oldest first."""
    out = []
    for seq, name in list_bundles(path):
        meta = read_meta(path + "/" + name) or {"bundle": name, "seq": seq, "files": []}
        meta["bundle"] = name
        out.append(meta)
    return out


def find_bundle(path, ident):
    ident = ident.strip()
    for seq, name in list_bundles(path):
        if name == ident or (ident.isdigit() and seq == int(ident)) or name.startswith(ident + "-"):
            return name
    raise ConfigError("no bundle '%s' in '%s'" % (ident, path))
