"""ELF executables and shared libraries: the parts a backtrace needs, read on demand.

Layout source: the ELF spec (System V gABI ch. 4 "Object Files", ch. 5
"Program Loading") and elf(5). Only headers are read eagerly; symbol tables
and .eh_frame are read through `pread` when a frame asks, so a 2 MB libc costs
a few KiB of memory on a router.

  Elf64_Ehdr: 0 e_ident[16], 16 e_type u16, 18 e_machine u16, 24 e_entry, 32 e_phoff,
              40 e_shoff, 52 e_ehsize, 54 e_phentsize, 56 e_phnum, 58 e_shentsize,
              60 e_shnum, 62 e_shstrndx            (Elf32: 24 e_entry 28 e_phoff 32 e_shoff
                                                    42 e_phentsize 44 e_phnum 46 e_shentsize
                                                    48 e_shnum 50 e_shstrndx)
  Elf64_Shdr (64): sh_name u32, sh_type u32, sh_flags u64, sh_addr, sh_offset, sh_size,
                   sh_link u32, sh_info u32, sh_addralign, sh_entsize
  Elf32_Shdr (40): ten u32 in the same order
  Elf64_Sym (24): st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64
  Elf32_Sym (16): st_name u32, st_value u32, st_size u32, st_info u8, st_other u8, st_shndx u16
  Note: namesz, descsz, type (u32), name, desc (4-aligned); NT_GNU_BUILD_ID = 3, name "GNU"
"""
import struct

from crashkeep import limits
from crashkeep.formats.elfcore import parse_header, parse_phdr, PT_LOAD, PT_NOTE, iter_notes
from crashkeep.errors import FormatError

PT_GNU_EH_FRAME = 0x6474E550
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHF_EXECINSTR = 4
STT_NOTYPE = 0
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4
STT_GNU_IFUNC = 10
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
NT_GNU_BUILD_ID = 3
SYM_CHUNK = 64 << 10


class Section:
    def __init__(self, name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_entsize):
        self.name = name
        self.sh_type = sh_type
        self.sh_flags = sh_flags
        self.sh_addr = sh_addr
        self.sh_offset = sh_offset
        self.sh_size = sh_size
        self.sh_link = sh_link
        self.sh_entsize = sh_entsize


class Symbol:
    def __init__(self, name, value, size):
        self.name = name
        self.value = value
        self.size = size


class ElfFile:
    """An ELF file from a path (kept open, read with seek) or from bytes (the vDSO)."""

    def __init__(self, src, name=None):
        self.f = None
        self.data = None
        if isinstance(src, str):
            import os
            # paths may come from a core's NT_FILE note: never open a FIFO or a device
            if (os.stat(src)[0] & 0o170000) != 0o100000:
                raise FormatError("%s: not a regular file" % src)
            self.f = open(src, "rb")
            self.size = os.stat(src)[6]
            self.name = name or src
        else:
            self.data = src
            self.size = len(src)
            self.name = name or "<memory>"
        try:
            self._parse()
        except Exception:
            self.close()
            raise

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None

    def pread(self, off, n):
        if self.data is not None:
            return bytes(self.data[off:off + n])
        # sizes come from the file's own headers: never ask for more than it holds
        n = min(n, self.size - off)
        if n <= 0 or off < 0:
            return b""
        self.f.seek(off)
        return self.f.read(n)

    def _parse(self):
        h = self.pread(0, 64)
        if len(h) < 52:
            raise FormatError("%s: too short for an ELF header" % self.name)
        cls, e, self.e_type, self.e_machine, e_phoff, e_phentsize, e_phnum = parse_header(h)
        self.ei_class = cls
        self.endian = e
        self.ptr_size = 8 if cls == 64 else 4
        if cls == 64:
            e_shoff = struct.unpack_from(e + "Q", h, 40)[0]
            e_shentsize, e_shnum, e_shstrndx = struct.unpack_from(e + "HHH", h, 58)
        else:
            e_shoff = struct.unpack_from(e + "I", h, 32)[0]
            e_shentsize, e_shnum, e_shstrndx = struct.unpack_from(e + "HHH", h, 46)
        self.segments = []
        if e_phnum and (56 if cls == 64 else 32) <= e_phentsize <= 256:
            ph = self.pread(e_phoff, e_phentsize * e_phnum)
            for i in range(min(e_phnum, len(ph) // e_phentsize)):
                self.segments.append(parse_phdr(cls, e, ph, i * e_phentsize))
        self.sections = []
        if e_shoff and e_shnum and (64 if cls == 64 else 40) <= e_shentsize <= 256:
            if e_shnum > limits.ELF_SECTIONS_MAX:
                raise FormatError("%s: %d sections (limit %d)" % (self.name, e_shnum,
                                                                 limits.ELF_SECTIONS_MAX))
            sh = self.pread(e_shoff, e_shentsize * e_shnum)
            raw = []
            for i in range(len(sh) // e_shentsize):
                o = i * e_shentsize
                if cls == 64:
                    nm, t, fl, addr, off, size, link, _info, _al, ent = \
                        struct.unpack_from(e + "IIQQQQIIQQ", sh, o)
                else:
                    nm, t, fl, addr, off, size, link, _info, _al, ent = \
                        struct.unpack_from(e + "IIIIIIIIII", sh, o)
                raw.append((nm, t, fl, addr, off, size, link, ent))
            names = b""
            if e_shstrndx < len(raw):
                s = raw[e_shstrndx]
                names = self.pread(s[4], min(s[5], 1 << 20))
            for nm, t, fl, addr, off, size, link, ent in raw:
                j = names.find(b"\0", nm)
                name = names[nm:j if j >= 0 else len(names)].decode("utf-8", "replace")
                self.sections.append(Section(name, t, fl, addr, off, size, link, ent))
        self._build_id = False

    def section(self, name):
        for s in self.sections:
            if s.name == name and s.sh_type != SHT_NOBITS:
                return s
        return None

    def segment(self, p_type):
        for s in self.segments:
            if s.p_type == p_type:
                return s
        return None

    def load_bias_for(self, map_start, map_offset):
        """Load bias when the file byte `map_offset` is mapped at `map_start`."""
        for s in self.segments:
            if s.p_type == PT_LOAD and s.p_offset <= map_offset < s.p_offset + max(s.p_filesz, 1):
                return map_start - (s.p_vaddr + (map_offset - s.p_offset))
        # the first page (offset 0) is in the first PT_LOAD on every toolchain we know
        for s in self.segments:
            if s.p_type == PT_LOAD:
                return map_start - map_offset - (s.p_vaddr - s.p_offset)
        return map_start - map_offset

    def vaddr_to_offset(self, vaddr, n=1):
        for s in self.segments:
            if s.p_type == PT_LOAD and s.p_vaddr <= vaddr and vaddr + n <= s.p_vaddr + s.p_filesz:
                return s.p_offset + (vaddr - s.p_vaddr)
        for s in self.sections:
            if s.sh_type != SHT_NOBITS and s.sh_addr and s.sh_addr <= vaddr < s.sh_addr + s.sh_size:
                return s.sh_offset + (vaddr - s.sh_addr)
        return None

    def is_exec_vaddr(self, vaddr):
        for s in self.segments:
            if s.p_type == PT_LOAD and s.p_flags & 1 and s.p_vaddr <= vaddr < s.p_vaddr + s.p_memsz:
                return True
        return False

    def build_id(self):
        """Hex build-id from the PT_NOTE segments (or .note.gnu.build-id), or None."""
        if self._build_id is not False:
            return self._build_id
        self._build_id = None
        places = []
        for s in self.segments:
            if s.p_type == PT_NOTE:
                places.append((s.p_offset, s.p_filesz))
        sec = self.section(".note.gnu.build-id")
        if sec is not None:
            places.append((sec.sh_offset, sec.sh_size))
        for off, size in places:
            data = self.pread(off, min(size, 4096))
            try:
                for n_type, name, desc in iter_notes(data, self.endian):
                    if n_type == NT_GNU_BUILD_ID and name == "GNU" and desc:
                        self._build_id = "".join("%02x" % b for b in desc)
                        return self._build_id
            except FormatError:
                continue
        return None

    def debuglink(self):
        sec = self.section(".gnu_debuglink")
        if sec is None:
            return None
        data = self.pread(sec.sh_offset, min(sec.sh_size, 4096))
        j = data.find(b"\0")
        return data[:j].decode("utf-8", "replace") if j > 0 else None

    def symbol_table(self):
        """(symtab, strtab) Sections: .symtab if present, else .dynsym; or None."""
        for t in (SHT_SYMTAB, SHT_DYNSYM):
            for s in self.sections:
                if s.sh_type == t and s.sh_size and s.sh_link < len(self.sections):
                    return s, self.sections[s.sh_link]
        return None

    def lookup_many(self, addrs):
        """{addr: Symbol or None} for link-time addresses, by gdb's minimal-symbol rule.

        gdb (minsyms.c lookup_minimal_symbol_by_pc_section) walks down from the
        nearest symbol at or below the address, passing zero-sized ones; the
        first sized symbol wins if it covers the address, else the nearest
        zero-sized one, else nothing. Only symbols in executable sections count.
        """
        out = {}
        for a in addrs:
            out[a] = None
        tab = self.symbol_table()
        if tab is None or not addrs:
            return out
        symtab, strtab = tab
        exec_sec = set()
        for i, s in enumerate(self.sections):
            if s.sh_flags & SHF_EXECINSTR:
                exec_sec.add(i)
        e = self.endian
        ent = 24 if self.ei_class == 64 else 16
        count = symtab.sh_size // ent
        if count > limits.ELF_SYMBOLS_MAX:
            count = limits.ELF_SYMBOLS_MAX
        qs = sorted(set(addrs))
        qmax = qs[-1]
        names = {}
        sized = {}   # addr -> (value, size, st_name, rank)
        zero = {}
        per = SYM_CHUNK // ent
        i = 0
        while i < count:
            n = min(per, count - i)
            chunk = self.pread(symtab.sh_offset + i * ent, n * ent)
            n = len(chunk) // ent
            if n == 0:
                break
            for k in range(n):
                o = k * ent
                if ent == 24:
                    st_name, st_info, _oth, st_shndx, st_value, st_size = \
                        struct.unpack_from(e + "IBBHQQ", chunk, o)
                else:
                    st_name, st_value, st_size, st_info, _oth, st_shndx = \
                        struct.unpack_from(e + "IIIBBH", chunk, o)
                if st_value > qmax or st_name == 0 or st_shndx not in exec_sec:
                    continue
                typ = st_info & 15
                if typ not in (STT_FUNC, STT_NOTYPE, STT_GNU_IFUNC):
                    continue
                # among symbols at one address the greatest name wins, as in gdb (its
                # minimal symbols sort by address, then name; lookup takes the last one)
                best = sized if st_size else zero
                for q in qs:
                    if st_value > q:
                        continue
                    cur = best.get(q)
                    if cur is None or st_value > cur[0] or (
                            st_value == cur[0] and st_name != cur[2] and
                            self._name(strtab, st_name, names) > self._name(strtab, cur[2], names)):
                        best[q] = (st_value, st_size, st_name)
            i += n
        for q in qs:
            s = sized.get(q)
            z = zero.get(q)
            pick = None
            if s is not None and q < s[0] + s[1]:
                pick = s
            elif z is not None and (s is None or z[0] >= s[0]):
                pick = z
            if pick is None:
                continue
            out[q] = Symbol(self._name(strtab, pick[2], names), pick[0], pick[1])
        return out

    def _name(self, strtab, off, cache):
        nm = cache.get(off)
        if nm is None:
            nm = self._string(strtab, off)
            cache[off] = nm
        return nm

    def _string(self, strtab, off):
        if off >= strtab.sh_size:
            return "?"
        data = self.pread(strtab.sh_offset + off, min(512, strtab.sh_size - off))
        j = data.find(b"\0")
        return data[:j if j >= 0 else len(data)].decode("utf-8", "replace")
