"""The phram keep area: named records and the boot-state slots on one device.

Format: crashkeep/phramrec.py. This module decides where records go, and in
which order bytes are written so that a save cut at any byte leaves the
previous version readable (payload first, header last, old version zapped
only after the new header is down).

    area = open_area("mtd:crashkeep")
    seq = area.put("messages", data, source="/var/log/messages")
    info, payload = area.get("messages")
"""
import time

from crashkeep.formats import phramrec as pr
from crashkeep.compat import read_text
from crashkeep.errors import DeviceError, NoSpaceError, FormatError
from crashkeep.limits import KEEP_AREA_MAX

MIN_RECORDS = 2     # an area must hold at least this many minimal records besides boot state
ZERO_CHUNK = 65536


class FileDevice:
    """Positioned reads and writes on an open file or MTD char device."""

    def __init__(self, f, info):
        self.f = f
        self.info = info
        self.path = info.path

    def read(self, off, n):
        buf = bytearray(n)
        self.f.seek(off)
        mv = memoryview(buf)
        got = 0
        while got < n:
            k = self.f.readinto(mv[got:])
            if not k:
                break
            got += k
        if got < n:
            raise DeviceError("Failed to read '%s': %d of %d bytes at 0x%x"
                              % (self.path, got, n, off))
        return buf

    def write(self, off, data):
        self.f.seek(off)
        mv = memoryview(data)
        done = 0
        while done < len(mv):
            try:
                k = self.f.write(mv[done:])
            except OSError as e:
                from crashkeep.compat import strerror
                raise DeviceError("Failed to write '%s' at 0x%x: %s" % (self.path, off + done,
                                                                        strerror(e)))
            if not k:
                raise DeviceError("Failed to write '%s' at 0x%x: device full"
                                  % (self.path, off + done))
            done += k

    def erase(self, off, n):
        from crashkeep.system import mtd
        mtd.erase(self.f, self.path, off, n)

    def lock(self):
        _flock(self.f, "LOCK_EX")

    def unlock(self):
        _flock(self.f, "LOCK_UN")

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None


def _flock(f, op):
    """Serialise writers (save --follow and the core handler may run at once)."""
    try:
        import fcntl
        fcntl.flock(f.fileno(), getattr(fcntl, op))
    except (ImportError, AttributeError, OSError):
        pass   # MicroPython / no flock on this device: single-writer assumption


def _first_line(path):
    try:
        return read_text(path, 256).split("\n", 1)[0].strip()
    except OSError:
        return ""


def firmware_version(board=None, root=""):
    """PRETTY_NAME / VERSION from /etc/os-release, else the board's board.firmware."""
    for p in ("/etc/os-release", "/usr/lib/os-release", "/etc/openwrt_release"):
        try:
            text = read_text(root + p, 8192)
        except OSError:
            continue
        vals = {}
        for line in text.split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                vals[k.strip()] = v.strip().strip("'\"")
        for key in ("PRETTY_NAME", "DISTRIB_DESCRIPTION", "VERSION"):
            if vals.get(key):
                return vals[key]
    if board is not None:
        return board.get("board.firmware") or ""
    return ""


def system_facts(root=""):
    """(uptime_ms, boot_id text) of the running system; 0/"" where unknown."""
    up = _first_line(root + "/proc/uptime")
    try:
        uptime_ms = int(float(up.split()[0]) * 1000)
    except (ValueError, IndexError):
        uptime_ms = 0
    boot_id = _first_line(root + "/proc/sys/kernel/random/boot_id")
    try:
        pr.boot_id_bytes(boot_id)
    except FormatError:
        boot_id = ""
    return uptime_ms, boot_id


class KeepArea:
    def __init__(self, dev, size, unit=pr.UNIT, needs_erase=False, firmware="", root=""):
        self.dev = dev
        self.path = dev.path
        self.size = size
        self.unit = unit
        self.needs_erase = needs_erase
        self.firmware = firmware
        self.root = root
        self.heap_start = pr.BOOT_SLOTS * unit
        need = self.heap_start + MIN_RECORDS * pr.align_up(pr.FIXED_LEN + 8, unit)
        if size < need:
            raise DeviceError("'%s' is too small for a keep area: %d bytes, need at least %d"
                              % (self.path, size, need))
        if size > KEEP_AREA_MAX:
            self.size = KEEP_AREA_MAX      # keep memory bounded; the rest stays unused

    # -- reading ---------------------------------------------------------
    def _image(self):
        return self.dev.read(0, self.size)

    def _records(self, buf):
        return pr.scan(buf, self.heap_start, self.size, self.unit)

    def _live(self, buf):
        return pr.latest(self._records(buf))

    def list(self):
        """The newest version of each record, oldest first."""
        live = self._live(self._image())
        return sorted(live.values(), key=lambda r: r.seq)

    def get(self, name):
        buf = self._image()
        r = self._live(buf).get(name)
        if r is None:
            return None
        start = r.offset + r.hdr_len
        return r, bytes(buf[start:start + r.length])

    def capacity(self):
        """Bytes of the heap (records and their headers)."""
        return self.size - self.heap_start

    def max_payload(self, name, source="", rewrite=True):
        """The largest payload that `put(name, ...)` can store again and again.

        A torn-safe rewrite puts the new version beside the old one, so the
        free space around the other records must hold two: either the second
        largest gap, or half of the largest. rewrite=False: a record written
        once (a core record): the largest gap beside every live record.
        """
        live = self._live(self._image())
        if not rewrite:
            gaps = self._gaps(list(live.values()))
            best = max([e - s for s, e in gaps] or [0])
            return max(0, best - pr.header_len(name, self.firmware, source))
        others = [r for r in live.values() if r.name != name]
        sizes = sorted([e - s for s, e in self._gaps(others)], reverse=True)
        best = 0
        if sizes:
            best = sizes[0] // 2 // self.unit * self.unit
        if len(sizes) > 1 and sizes[1] > best:
            best = sizes[1]
        return max(0, best - pr.header_len(name, self.firmware, source))

    # -- writing ---------------------------------------------------------
    def _gaps(self, keep):
        """Free (start, end) ranges of the heap around the `keep` records' extents."""
        ext = sorted((r.offset, r.offset + r.extent) for r in keep)
        out = []
        pos = self.heap_start
        for s, e in ext:
            if s > pos:
                out.append((pos, s))
            pos = max(pos, e)
        if self.size - self.size % self.unit > pos:
            out.append((pos, self.size - self.size % self.unit))
        return out

    def _fit(self, keep, extent):
        best = None
        for s, e in self._gaps(keep):
            if e - s >= extent and (best is None or e - s < best[1] - best[0]):
                best = (s, e)   # best fit keeps large gaps for large records
        return best

    def _zap(self, r):
        # Zeroing magic and hdr_crc invalidates the header (8 bytes: one aligned word).
        self.dev.write(r.offset, bytes(8))

    def _locked(self, fn, *args, **kw):
        lock = getattr(self.dev, "lock", None)
        if lock is not None:
            lock()
        try:
            return fn(*args, **kw)
        finally:
            if lock is not None:
                self.dev.unlock()

    def put(self, name, payload, source="", orig_size=None, flags=0, evict=False,
            wall_time=None, uptime_ms=None, boot_id=None):
        """Store payload as the newest version of `name`; returns its seq.

        NoSpaceError when it does not fit beside the live records, unless
        evict=True, which drops the oldest other records (and, last, the old
        version of this name) until it fits.
        """
        return self._locked(self._put, name, payload, source, orig_size, flags, evict,
                            wall_time, uptime_ms, boot_id)

    def _put(self, name, payload, source, orig_size, flags, evict, wall_time, uptime_ms,
             boot_id):
        pr.check_name(name)
        buf = self._image()
        records = self._records(buf)
        live = pr.latest(records)
        seq = 1
        for r in records:
            if r.seq >= seq:
                seq = r.seq + 1
        if uptime_ms is None or boot_id is None:
            up, bid = system_facts(self.root)
            uptime_ms = up if uptime_ms is None else uptime_ms
            boot_id = bid if boot_id is None else boot_id
        if wall_time is None:
            wall_time = int(time.time())
        if orig_size is None:
            orig_size = len(payload)
        if orig_size > len(payload):
            flags |= pr.FLAG_TRUNCATED
        crc = pr.crc32(payload) & 0xFFFFFFFF
        hdr = pr.encode_header(name, seq, len(payload), crc, flags, wall_time, uptime_ms,
                               boot_id, self.firmware, source, orig_size)
        extent = pr.align_up(len(hdr) + len(payload), self.unit)
        if extent > self.capacity():
            raise NoSpaceError("Failed to save '%s' to '%s': %d bytes do not fit in a keep area "
                               "of %d" % (name, self.path, extent, self.capacity()))
        keep = list(live.values())
        if name not in live and len(live) >= pr.RECORDS_MAX and not evict:
            # refuse here, not after: every reader would then have one record too many
            raise NoSpaceError("Failed to save '%s' to '%s': the keep area holds %d records, "
                               "the most it keeps (clear some, or --evict)"
                               % (name, self.path, len(live)))
        spot = self._fit(keep, extent)
        evicted = []
        full = name not in live and len(live) >= pr.RECORDS_MAX
        if (spot is None or full) and evict:
            # oldest other records first; the old version of this name goes last
            order = sorted(keep, key=lambda r: (r.name == name, r.seq))
            while (spot is None or len(keep) >= pr.RECORDS_MAX) and order:
                victim = order.pop(0)
                keep.remove(victim)
                evicted.append(victim)
                spot = self._fit(keep, extent)
        if spot is None:
            free = sum(e - s for s, e in self._gaps(keep))
            raise NoSpaceError("Failed to save '%s' to '%s': no room for %d bytes (%d free in "
                               "pieces; --evict drops the oldest records)"
                               % (name, self.path, extent, free))
        for r in evicted:
            self._zap(r)
            for old in records:
                if old.name == r.name and old is not r:
                    self._zap(old)
        off = spot[0]
        if self.needs_erase:
            self.dev.erase(off, extent)
        # Payload first (zero padded to the extent), header last: the header is
        # the commit marker, and its CRC covers the payload CRC.
        body = bytearray(extent - len(hdr))
        body[:len(payload)] = payload
        self.dev.write(off + len(hdr), body)
        self.dev.write(off, hdr)
        # Only now drop the older versions, so a cut before this leaves them
        # (the newest valid seq wins when both are there). A stale version the
        # new record was written over is gone already: zapping its old offset
        # would write zeros into the new record.
        for r in records:
            if r.name == name and r not in evicted and \
                    (r.offset + r.extent <= off or r.offset >= off + extent):
                self._zap(r)
        return seq

    def remove(self, name, seq=None):
        """Zap the versions of `name` up to `seq` (every version when None); True
        if there was one. salvage passes the seq it read: a version saved after
        that is newer evidence and stays."""
        return self._locked(self._remove, name, seq)

    def _remove(self, name, seq):
        found = False
        for r in self._records(self._image()):
            if r.name == name and (seq is None or r.seq <= seq):
                self._zap(r)
                found = True
        return found

    def clear_all(self, boot_state=False):
        """Zero the record heap (like dd from /dev/zero); boot state stays unless asked."""
        return self._locked(self._clear_all, boot_state)

    def _clear_all(self, boot_state):
        start = 0 if boot_state else self.heap_start
        if self.needs_erase:
            # flash: erased (0xFF) is empty; zeroing on top would only add wear
            end = self.size - self.size % self.unit
            self.dev.erase(start, end - start)
            return
        zero = bytes(min(ZERO_CHUNK, self.size - start))
        off = start
        while off < self.size:
            n = min(len(zero), self.size - off)
            self.dev.write(off, zero if n == len(zero) else zero[:n])
            off += n

    # -- boot state (for the boot issue) -------------------------------------
    def boot_state(self):
        buf = self.dev.read(0, self.heap_start)
        slot, gen, st = pr.newest_boot_state(buf, self.unit)
        return st

    def set_boot_state(self, state):
        """Write `state` (dict of phramrec.BOOT_KEYS) into the older slot."""
        return self._locked(self._set_boot_state, state)

    def _set_boot_state(self, state):
        buf = self.dev.read(0, self.heap_start)
        slot, gen, _st = pr.newest_boot_state(buf, self.unit)
        target = 0 if slot is None else 1 - slot
        data = pr.encode_boot_state(state, 1 if gen is None else gen + 1)
        off = target * self.unit
        if self.needs_erase:
            self.dev.erase(off, self.unit)
        self.dev.write(off, data)

    def close(self):
        self.dev.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_area(path, write=True, firmware=None, board=None, root=""):
    """Open the keep area on `path` (/dev/mtdN, mtd:NAME or a file)."""
    from crashkeep.system import mtd
    real = mtd.resolve(path, root)
    f = mtd.open_device(real, write)
    try:
        info = mtd.device_info(real, f, root)
        unit = pr.UNIT
        if info.needs_erase:
            unit = max(pr.UNIT, info.erasesize)
        if firmware is None:
            firmware = firmware_version(board, root)
        return KeepArea(FileDevice(f, info), info.size, unit, info.needs_erase, firmware, root)
    except Exception:
        f.close()
        raise


def open_configured(board_given=None, device_given=None, write=True):
    """(area, board) for --board/--device as a command got them (the rule: locate)."""
    from crashkeep.system import locate
    board, dev = locate.board_and_device(board_given, device_given)
    return open_area(dev, write=write, board=board), board
