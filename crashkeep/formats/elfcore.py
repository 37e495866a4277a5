"""ELF core files, read in ONE forward pass from a pipe, keeping only what a backtrace needs.

Layout source: the ELF spec (System V gABI ch. 4-5), the kernel's core writer
fs/binfmt_elf.c (elf_core_dump, fill_note_info, fill_files_note) and
include/uapi/linux/elf.h for the note types.

The kernel writes, in this order (offsets only grow):

  offset   what                                   size
  0        Elf{32,64}_Ehdr                        52 / 64
  e_phoff  e_phnum x Elf_Phdr (e_phentsize)       32 / 56 each
  ...      PT_NOTE segment: notes, 4-byte aligned  per thread: NT_PRSTATUS + regsets;
                                                   once: NT_PRPSINFO NT_SIGINFO NT_AUXV NT_FILE
  ...      PT_LOAD segments, page aligned, in vaddr order (p_filesz may be 0)
  [e_shoff one section header, only when e_phnum == PN_XNUM]

  Note: namesz u32, descsz u32, type u32, name (padded to 4), desc (padded to 4)
  NT_FILE desc: count, page_size, count x (start, end, file_ofs in pages), count NUL-terminated names
  NT_AUXV desc: (a_type, a_val) word pairs, AT_NULL ends

The first NT_PRSTATUS is the thread that took the signal. Nothing here seeks
on a pipe: after the notes we know every thread's stack pointer, so we plan the
byte ranges we want (stacks from sp up, the vDSO, the first page of each mapped
ELF for its build-id) and pick them up as the stream passes by. A caller may
ask for more while it streams (`more=`: the stack behind a signal frame on an
alternate stack), as long as those bytes are still ahead. From a seekable file
(`core analyze`) memory that was not kept is read on demand.
"""
import struct

from crashkeep.formats import arch as _arch
from crashkeep import limits
from crashkeep.errors import FormatError

ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
PN_XNUM = 0xFFFF
PF_X = 1
PF_W = 2
PF_R = 4

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45

AT_NULL = 0
AT_PHDR = 3
AT_ENTRY = 9
AT_EXECFN = 31
AT_SYSINFO_EHDR = 33


class Segment:
    """One program header of the core."""

    def __init__(self, p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz):
        self.p_type = p_type
        self.p_flags = p_flags
        self.p_offset = p_offset
        self.p_vaddr = p_vaddr
        self.p_filesz = p_filesz
        self.p_memsz = p_memsz

    def holds(self, addr):
        return self.p_vaddr <= addr < self.p_vaddr + self.p_memsz


class Thread:
    def __init__(self, tid, signo, cursig, regs, raw_regs):
        self.tid = tid
        self.signo = signo        # prstatus si_signo (the kernel leaves it 0; cursig is the one)
        self.cursig = cursig
        self.regs = regs          # name -> int (empty when the architecture is unknown)
        self.raw_regs = raw_regs  # tuple in pr_reg order


class MappedFile:
    """One NT_FILE entry: [start, end) maps `name` from byte `offset`."""

    def __init__(self, start, end, offset, name):
        self.start = start
        self.end = end
        self.offset = offset
        self.name = name


class Core:
    def __init__(self):
        self.ei_class = 64
        self.endian = "<"
        self.e_machine = 0
        self.arch = None
        self.segments = []
        self.threads = []         # crashing thread first, as the kernel writes them
        self.psinfo = None        # dict: uid gid pid ppid fname psargs
        self.siginfo = None       # dict: signo errno code addr
        self.auxv = []            # [(a_type, a_val)]
        self.files = []           # [MappedFile]
        self.memory = []          # [(vaddr, bytes)] sorted by vaddr
        self.notes_truncated = False
        self.bytes_read = 0       # of the stream, including what was drained
        self.lazy = None          # the seekable file, when there is one

    @property
    def pid(self):
        if self.psinfo:
            return self.psinfo["pid"]
        return self.threads[0].tid if self.threads else 0

    @property
    def signal(self):
        if self.siginfo and self.siginfo["signo"]:
            return self.siginfo["signo"]
        return self.threads[0].cursig if self.threads else 0

    def aux(self, a_type):
        for t, v in self.auxv:
            if t == a_type:
                return v
        return None

    def segment_at(self, addr):
        for s in self.segments:
            if s.p_type == PT_LOAD and s.holds(addr):
                return s
        return None

    def read(self, addr, n):
        """n bytes at addr from the memory we kept, or None when we did not keep them.

        A core read from a seekable file (analyze) has all of its memory: what
        was not kept is read from the file on demand."""
        for va, data in self.memory:
            if va <= addr and addr + n <= va + len(data):
                o = addr - va
                return data[o:o + n]
        if self.lazy is not None:
            s = self.segment_at(addr)
            if s is not None and addr + n <= s.p_vaddr + s.p_filesz:
                self.lazy.seek(s.p_offset + (addr - s.p_vaddr))
                b = self.lazy.read(n)
                if len(b) == n:
                    return b
        return None

    def read_word(self, addr):
        w = self.arch.ptr_size if self.arch else 8
        b = self.read(addr, w)
        if b is None:
            return None
        return struct.unpack(self.endian + ("Q" if w == 8 else "I"), b)[0]

    def file_at(self, addr):
        for m in self.files:
            if m.start <= addr < m.end:
                return m
        return None


class Stream:
    """Forward-only reader over a file object: a pipe, or a seekable file (then skips seek)."""

    def __init__(self, f, seekable=False, bufsize=65536):
        self.f = f
        self.pos = 0
        self.seekable = seekable
        self.buf = bytearray(bufsize)
        self.mv = memoryview(self.buf)
        self.eof = False
        self.sink = None            # callable(bytes-like): sees every byte read (a core copy)

    def read_exact(self, n, what="data"):
        # grow piece by piece: a lying header must not make us allocate before bytes arrive
        parts = []
        got = 0
        while got < n:
            piece = bytearray(min(n - got, 1 << 20))
            mv = memoryview(piece)
            have = 0
            while have < len(piece):
                k = self.f.readinto(mv[have:])
                if not k:
                    self.eof = True
                    if self.sink is not None:
                        self.sink(mv[:have])
                    raise FormatError("truncated core: %s ends at byte %d"
                                      % (what, self.pos + got + have))
                have += k
            if self.sink is not None:
                self.sink(piece)
            parts.append(piece)
            got += have
        self.pos += n
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def skip_to(self, off):
        if off < self.pos:
            if not self.seekable:
                raise FormatError("core is not in kernel order (offset 0x%x after 0x%x)"
                                  % (off, self.pos))
            self.f.seek(off)
            self.pos = off
            return
        if self.seekable:
            self.f.seek(off)
            self.pos = off
            return
        n = self._drop(off - self.pos)
        self.pos += n
        if self.pos < off:
            self.eof = True
            raise FormatError("truncated core: ends at byte %d before 0x%x" % (self.pos, off))

    def drain(self, limit=-1):
        """Read and drop the rest of the stream (at most limit bytes if >= 0)."""
        if self.eof:
            return 0
        n = self._drop(limit)
        self.pos += n
        if limit < 0 or n < limit:
            self.eof = True
        return n

    def _drop(self, limit):
        if self.sink is None:
            from crashkeep.formats.drain import drain
            return drain(self.f, self.mv, limit)
        n = 0
        size = len(self.mv)
        while limit < 0 or n < limit:
            want = size if limit < 0 or limit - n >= size else limit - n
            k = self.f.readinto(self.mv[:want])
            if not k:
                break
            self.sink(self.mv[:k])
            n += k
        return n


def _u(fmt, data, off=0):
    return struct.unpack_from(fmt, data, off)


def _cstr(b):
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    return b.decode("utf-8", "replace")


def parse_header(ident_rest):
    """(ei_class, endian, e_type, e_machine, e_phoff, e_phentsize, e_phnum) from the Ehdr bytes."""
    b = ident_rest
    if b[:4] != b"\x7fELF":
        raise FormatError("not an ELF file (magic %r)" % (bytes(b[:4]),))
    if b[4] not in (1, 2) or b[5] not in (1, 2):
        raise FormatError("bad ELF class/data bytes %d/%d" % (b[4], b[5]))
    cls = 64 if b[4] == 2 else 32
    e = "<" if b[5] == 1 else ">"
    if cls == 64:
        e_type, e_machine = _u(e + "HH", b, 16)
        e_phoff = _u(e + "Q", b, 32)[0]
        e_phentsize, e_phnum = _u(e + "HH", b, 54)
    else:
        e_type, e_machine = _u(e + "HH", b, 16)
        e_phoff = _u(e + "I", b, 28)[0]
        e_phentsize, e_phnum = _u(e + "HH", b, 42)
    return cls, e, e_type, e_machine, e_phoff, e_phentsize, e_phnum


def parse_phdr(cls, e, b, off):
    if cls == 64:
        p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz = _u(e + "IIQQQQQ", b, off)
    else:
        p_type, p_offset, p_vaddr, _pa, p_filesz, p_memsz, p_flags = _u(e + "IIIIIII", b, off)
    return Segment(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz)


def iter_notes(data, e):
    """(n_type, name, desc) of each note in a PT_NOTE payload; stops at a torn note."""
    off = 0
    n = 0
    end = len(data)
    while off + 12 <= end:
        n += 1
        if n > limits.CORE_NOTES_MAX:
            raise FormatError("more than %d notes" % limits.CORE_NOTES_MAX)
        namesz, descsz, n_type = _u(e + "III", data, off)
        noff = off + 12
        doff = noff + ((namesz + 3) & ~3)
        dend = doff + descsz
        if dend > end or namesz > 256:
            return
        yield n_type, _cstr(data[noff:noff + namesz]), data[doff:dend]
        off = (dend + 3) & ~3


def parse_notes(core, data):
    e = core.endian
    w = 8 if core.ei_class == 64 else 4
    wf = e + ("Q" if w == 8 else "I")
    a = core.arch
    for n_type, name, desc in iter_notes(data, e):
        if name != "CORE":
            continue
        if n_type == NT_PRSTATUS:
            if len(core.threads) >= limits.CORE_THREADS_MAX:
                continue
            if len(desc) < 16:
                raise FormatError("NT_PRSTATUS of %d bytes" % len(desc))
            signo = _u(e + "i", desc, 0)[0]
            cursig = _u(e + "h", desc, 12)[0]
            pid_off = a.prstatus_pid_off if a else (32 if w == 8 else 24)
            tid = _u(e + "i", desc, pid_off)[0] if len(desc) >= pid_off + 4 else 0
            regs = {}
            raw = ()
            if a is not None:
                ro = a.prstatus_reg_off
                nr = len(a.reg_names)
                if len(desc) < ro + nr * w:
                    raise FormatError("NT_PRSTATUS of %d bytes, registers need %d"
                                      % (len(desc), ro + nr * w))
                raw = struct.unpack_from(e + ("Q" if w == 8 else "I") * nr, desc, ro)
                for i in range(nr):
                    regs[a.reg_names[i]] = raw[i]
            core.threads.append(Thread(tid, signo, cursig, regs, raw))
        elif n_type == NT_PRPSINFO and a is not None:
            p = {}
            for k in a.psinfo:
                o, size = a.psinfo[k]
                if o + size > len(desc):
                    raise FormatError("NT_PRPSINFO of %d bytes" % len(desc))
                if k in ("fname", "psargs"):
                    p[k] = _cstr(desc[o:o + size])
                else:
                    p[k] = _u(e + ("I" if size == 4 else "H"), desc, o)[0]
            core.psinfo = p
        elif n_type == NT_SIGINFO:
            if len(desc) < 12:
                raise FormatError("NT_SIGINFO of %d bytes" % len(desc))
            co = a.siginfo_code_off if a else 8
            ao = a.siginfo_addr_off if a else (16 if w == 8 else 12)
            si = {"signo": _u(e + "i", desc, 0)[0], "code": _u(e + "i", desc, co)[0],
                  "errno": _u(e + "i", desc, 12 - co)[0], "addr": None}
            if len(desc) >= ao + w:
                si["addr"] = _u(wf, desc, ao)[0]
            core.siginfo = si
        elif n_type == NT_AUXV:
            n = min(len(desc) // (2 * w), limits.CORE_AUXV_MAX)
            for i in range(n):
                t, v = _u(e + ("QQ" if w == 8 else "II"), desc, i * 2 * w)
                if t == AT_NULL:
                    break
                core.auxv.append((t, v))
        elif n_type == NT_FILE:
            parse_nt_file(core, desc, w, e)


def parse_nt_file(core, desc, w, e):
    if len(desc) < 2 * w:
        raise FormatError("NT_FILE of %d bytes" % len(desc))
    count, page = _u(e + ("QQ" if w == 8 else "II"), desc, 0)
    if count > limits.CORE_FILES_MAX:
        raise FormatError("NT_FILE claims %d mappings (limit %d)" % (count, limits.CORE_FILES_MAX))
    tab = 2 * w
    names = tab + count * 3 * w
    if names > len(desc):
        raise FormatError("NT_FILE of %d bytes for %d mappings" % (len(desc), count))
    pos = names
    for i in range(count):
        start, end, pgoff = _u(e + ("QQQ" if w == 8 else "III"), desc, tab + i * 3 * w)
        j = desc.find(b"\0", pos)
        if j < 0:
            raise FormatError("NT_FILE name %d is not terminated" % i)
        name = desc[pos:j].decode("utf-8", "replace")
        pos = j + 1
        if end < start:
            raise FormatError("NT_FILE mapping %d ends before it starts" % i)
        core.files.append(MappedFile(start, end, pgoff * page, name))


def plan(core):
    """Byte ranges [(file_offset, vaddr, size)] of memory to keep, sorted by file offset.

    Stacks from sp (minus the red zone) up, the crashing thread's more generously;
    the vDSO (its .eh_frame unwinds signal trampolines on some arches); the first
    page of each file mapping at offset 0 (its ELF headers hold the build-id).
    """
    want = []
    a = core.arch
    total = 0
    if a is not None:
        for i, t in enumerate(core.threads):
            sp = t.regs.get(a.sp, 0)
            size = limits.CORE_STACK_CRASHED if i == 0 else limits.CORE_STACK_THREAD
            size = min(size, limits.CORE_STACKS_TOTAL - total)
            if size <= 0:
                break
            got = _range(core, sp - a.red_zone, size + a.red_zone, want)
            total += got
    vdso = core.aux(AT_SYSINFO_EHDR)
    if vdso:
        _range(core, vdso, limits.CORE_VDSO_MAX, want)
    n = 0
    for m in core.files:
        if m.offset == 0 and n < limits.CORE_HEADER_PAGES_MAX:
            if _range(core, m.start, limits.PAGE_SIZE, want):
                n += 1
    return merge(want)


def _range(core, vaddr, size, want):
    """Append the part of [vaddr, vaddr+size) that the core holds; bytes added."""
    s = core.segment_at(vaddr)
    if s is None:
        s = core.segment_at(vaddr + size - 1) if size > 0 else None
        if s is None:
            return 0
        size -= s.p_vaddr - vaddr
        vaddr = s.p_vaddr
    lo = max(vaddr, s.p_vaddr)
    hi = min(vaddr + size, s.p_vaddr + s.p_filesz)
    if hi <= lo:
        return 0
    want.append((s.p_offset + (lo - s.p_vaddr), lo, hi - lo))
    return hi - lo


def merge(ranges):
    ranges = sorted(ranges)
    out = []
    for off, va, size in ranges:
        if out and off <= out[-1][0] + out[-1][2] and va - off == out[-1][1] - out[-1][0]:
            o0, v0, s0 = out[-1]
            out[-1] = (o0, v0, max(s0, off + size - o0))
        else:
            out.append((off, va, size))
    return out


def read_core(f, seekable=False, planner=plan, sink=None, more=None):
    """Read a core from file object f (pipe: forward only). Returns a Core.

    The stream is left after the last byte we wanted; call `core.stream.drain()`
    to consume the rest (a core_pattern handler must, so the kernel finishes).
    """
    s = Stream(f, seekable)
    s.sink = sink
    core = Core()
    core.stream = s
    ident = s.read_exact(16, "ELF header")
    if ident[:4] != b"\x7fELF":
        raise FormatError("not an ELF file (magic %r)" % (ident[:4],))
    rest = s.read_exact(48 if ident[4] == 2 else 36, "ELF header")
    cls, e, e_type, e_machine, e_phoff, e_phentsize, e_phnum = parse_header(ident + rest)
    if e_type != ET_CORE:
        raise FormatError("ELF type %d is not a core (4)" % e_type)
    core.ei_class = cls
    core.endian = e
    core.e_machine = e_machine
    a = _arch.for_machine(e_machine)
    if a is not None and (a.ptr_size * 8 != cls):
        a = None
    core.arch = a
    want_ent = 56 if cls == 64 else 32
    if e_phnum == PN_XNUM:
        raise FormatError("core has more than 65534 segments (PN_XNUM), not supported")
    if e_phnum == 0 or e_phentsize < want_ent or e_phentsize > 4 * want_ent:
        raise FormatError("core has %d program headers of %d bytes" % (e_phnum, e_phentsize))
    if e_phnum > limits.CORE_SEGMENTS_MAX:
        raise FormatError("core has %d segments (limit %d)" % (e_phnum, limits.CORE_SEGMENTS_MAX))
    s.skip_to(e_phoff)
    ph = s.read_exact(e_phentsize * e_phnum, "program headers")
    for i in range(e_phnum):
        core.segments.append(parse_phdr(cls, e, ph, i * e_phentsize))
    notes = [g for g in core.segments if g.p_type == PT_NOTE]
    notes.sort(key=lambda g: g.p_offset)
    budget = limits.CORE_NOTES_BYTES
    for g in notes:
        size = min(g.p_filesz, budget)
        if size < g.p_filesz:
            core.notes_truncated = True
        if size <= 0:
            continue
        budget -= size
        s.skip_to(g.p_offset)
        parse_notes(core, s.read_exact(size, "notes"))
    pending = planner(core)
    asked = 0
    while pending:
        off, va, size = pending.pop(0)
        if s.eof:
            break
        if off < s.pos and not seekable:
            # overlaps what already streamed by: keep the part still ahead
            if off + size <= s.pos:
                continue
            va += s.pos - off
            size -= s.pos - off
            off = s.pos
        try:
            s.skip_to(off)
            core.memory.append((va, s.read_exact(size, "memory")))
        except FormatError:
            # a core cut short (RLIMIT_CORE, disk full) still has its notes: keep going
            break
        if more is None:
            continue
        # the caller may ask for memory it found it needs (a signal frame on an
        # alternate stack points back to the interrupted stack): later bytes only
        for r in more(core, va, size) or ():
            if asked >= limits.CORE_MORE_RANGES or (not seekable and r[0] + r[2] <= s.pos):
                continue
            asked += 1
            pending.append(r)
        pending = merge(pending)
    core.memory.sort(key=lambda m: m[0])
    core.bytes_read = s.pos
    if seekable:
        core.lazy = f
    return core
