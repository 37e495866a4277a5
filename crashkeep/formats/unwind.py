"""Backtraces from a core without debug info: .eh_frame CFI, then frame pointers, then a marked scan.

Layout source: the DWARF 4 spec ch. 6.4 "Call Frame Information" and ch. 2.5
"DWARF Expressions"; the Linux Standard Base Core spec ch. 10.6 ".eh_frame"
and 10.6.2 ".eh_frame_hdr" for the GNU pointer encodings and the search table.

  CIE: length u32 (0xffffffff: u64 follows), CIE_id u32 = 0, version u8 (1 or 3),
       augmentation string, code_align uleb, data_align sleb, ra column (u8 in v1, uleb in v3),
       ['z': aug length uleb, then per letter: 'P' enc + personality, 'L' enc, 'R' enc], insns
  FDE: length, CIE_pointer u32 (back from this field to the CIE), pc_begin (R enc),
       pc_range (R enc, value part only), ['z': aug data], insns
  .eh_frame_hdr: version u8 = 1, eh_frame_ptr_enc, fde_count_enc, table_enc,
       eh_frame_ptr, fde_count, fde_count x (initial_location, fde_address) sorted

Everything about registers comes from crashkeep.formats.arch; this module knows only
DWARF columns. Frame kinds ("how"): regs (from the core's registers), cfi,
signal (a CIE with the 'S' augmentation: a sigreturn trampoline), call (a
call into an unmapped address), fp (frame pointer chain), scan (a guess: a
word on the stack that follows a call instruction; marked, never trusted).
"""
import struct

from crashkeep import limits
from crashkeep.errors import FormatError

DW_EH_PE_omit = 0xFF
DW_EH_PE_indirect = 0x80


class Frame:
    def __init__(self, pc, how, cfa=None):
        self.pc = pc
        self.how = how
        self.cfa = cfa
        self.module = None        # path of the mapped file, or None
        self.offset = None        # pc as a link-time address inside the module
        self.function = None
        self.sym_offset = None    # pc - function start
        self.lookup_pc = pc       # pc used for CFI and symbol lookup (pc - 1 for return addresses)

    def as_dict(self):
        return {"pc": "0x%x" % self.pc, "function": self.function, "module": self.module,
                "offset": None if self.offset is None else "0x%x" % self.offset,
                "function_offset": None if self.sym_offset is None else "0x%x" % self.sym_offset,
                "how": self.how}


class Module:
    """One mapped ELF file (or the vDSO): where it is, its bias, and its ElfFile once opened."""

    def __init__(self, path, start, end, offset):
        self.path = path
        self.ranges = [(start, end, offset)]
        self.elf = None          # for CFI
        self.symelf = None       # for symbols (a separate debug file when one was found)
        self.bias = None
        self.tried = False
        self.alt = None          # another path to the same bytes (/proc/<pid>/map_files/...)

    @property
    def start(self):
        return min(r[0] for r in self.ranges)

    def holds(self, addr):
        for s, e, _ in self.ranges:
            if s <= addr < e:
                return True
        return False


def _leb(b, p):
    """(value, bits, next offset) of the LEB128 at p; bounded like the rest."""
    r = 0
    shift = 0
    while True:
        if p >= len(b):
            raise FormatError("truncated LEB128")
        x = b[p]
        p += 1
        r |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return r, shift, p
        if shift > 70:
            raise FormatError("LEB128 too long")


def uleb(b, p):
    r, _, p = _leb(b, p)
    return r, p


def sleb(b, p):
    r, shift, p = _leb(b, p)
    if b[p - 1] & 0x40:
        r -= 1 << shift
    return r, p


def read_encoded(b, p, enc, e, ptr, field_addr, datarel=0):
    """Decode a DW_EH_PE_* value at b[p]; field_addr is b[p]'s run-time/link address."""
    if enc == DW_EH_PE_omit:
        return None, p
    fmt = enc & 0x0F
    start = p
    if fmt == 0x00:
        n = ptr
        if p + n > len(b):
            raise FormatError("truncated encoded pointer")
        v = int.from_bytes(b[p:p + n], "little" if e == "<" else "big")
        p += n
    elif fmt == 0x01:
        v, p = uleb(b, p)
    elif fmt == 0x09:
        v, p = sleb(b, p)
    else:
        codes = {0x02: "H", 0x03: "I", 0x04: "Q", 0x0A: "h", 0x0B: "i", 0x0C: "q"}
        c = codes.get(fmt)
        if c is None:
            raise FormatError("unknown pointer encoding 0x%x" % enc)
        n = struct.calcsize(c)
        if p + n > len(b):
            raise FormatError("truncated encoded pointer")
        v = struct.unpack_from(e + c, b, p)[0]
        p += n
    app = enc & 0x70
    if app == 0x10:
        v += field_addr + start
    elif app == 0x30:
        v += datarel
    elif app not in (0x00,):
        raise FormatError("unsupported pointer application 0x%x" % app)
    return v & ((1 << (8 * ptr)) - 1), p


class CIE:
    pass


class FDE:
    pass


class EhFrame:
    """The .eh_frame (+ .eh_frame_hdr) of one ElfFile, read on demand."""

    def __init__(self, elf):
        self.elf = elf
        self.e = elf.endian
        self.ptr = elf.ptr_size
        self.cies = {}
        self.hdr = None
        self.eh = None          # (file_offset, vaddr, size)
        sec = elf.section(".eh_frame")
        if sec is not None:
            self.eh = (sec.sh_offset, sec.sh_addr, sec.sh_size)
        hsec = elf.section(".eh_frame_hdr")
        if hsec is not None:
            self.hdr = (hsec.sh_offset, hsec.sh_addr, hsec.sh_size)
        else:
            from crashkeep.formats.elffile import PT_GNU_EH_FRAME
            g = elf.segment(PT_GNU_EH_FRAME)
            if g is not None:
                self.hdr = (g.p_offset, g.p_vaddr, g.p_filesz)
        self.table = None
        if self.hdr is not None:
            self._read_hdr()

    def _read_hdr(self):
        off, addr, size = self.hdr
        b = self.elf.pread(off, 64)
        if len(b) < 8 or b[0] != 1:
            self.hdr = None
            return
        p = 4
        eh_ptr, p = read_encoded(b, p, b[1], self.e, self.ptr, addr, addr)
        count, p = read_encoded(b, p, b[2], self.e, self.ptr, addr, addr)
        if self.eh is None and eh_ptr is not None:
            o = self.elf.vaddr_to_offset(eh_ptr)
            if o is not None:
                self.eh = (o, eh_ptr, 1 << 30)
        # only the common table encoding (datarel sdata4) gets the binary search
        if b[3] == 0x3B and count is not None and 0 < count <= (size - p) // 8:
            self.table = (off + p, count, addr)

    def find(self, pc):
        """The FDE covering link-time address pc, or None."""
        if self.table is not None:
            toff, count, base = self.table
            lo, hi = 0, count - 1
            found = None
            while lo <= hi:
                mid = (lo + hi) // 2
                loc = struct.unpack(self.e + "i", self.elf.pread(toff + mid * 8, 4))[0] + base
                if loc <= pc:
                    found = mid
                    lo = mid + 1
                else:
                    hi = mid - 1
            if found is None:
                return None
            fde_addr = struct.unpack(self.e + "i", self.elf.pread(toff + found * 8 + 4, 4))[0] + base
            fde = self.parse_fde_at(fde_addr)
            if fde is not None and fde.pc_begin <= pc < fde.pc_begin + fde.pc_range:
                return fde
            return None
        return self._scan(pc)

    def _scan(self, pc):
        if self.eh is None:
            return None
        off, addr, size = self.eh
        size = min(size, limits.ELF_EH_FRAME_MAX)
        pos = 0
        n = 0
        while pos + 8 <= size:
            n += 1
            if n > limits.CFI_SCAN_ENTRIES_MAX:
                return None
            length = struct.unpack(self.e + "I", self.elf.pread(off + pos, 4) or b"\0\0\0\0")[0]
            if length == 0:
                break
            hl = 4
            if length == 0xFFFFFFFF:
                length = struct.unpack(self.e + "Q", self.elf.pread(off + pos + 4, 8))[0]
                hl = 12
            cid = struct.unpack(self.e + "I", self.elf.pread(off + pos + hl, 4))[0]
            if cid != 0:
                fde = self.parse_fde_at(addr + pos)
                if fde is not None and fde.pc_begin <= pc < fde.pc_begin + fde.pc_range:
                    return fde
            pos += hl + length
        return None

    def _entry(self, addr):
        """(bytes of the entry after its length field, vaddr of that point) at vaddr addr."""
        if self.eh is None:
            return None, 0
        off = self.eh[0] + (addr - self.eh[1])
        h = self.elf.pread(off, 4)
        if len(h) < 4:
            return None, 0
        length = struct.unpack(self.e + "I", h)[0]
        body = addr + 4
        if length == 0xFFFFFFFF:
            length = struct.unpack(self.e + "Q", self.elf.pread(off + 4, 8))[0]
            off += 8
            body += 8
        if length == 0 or length > (1 << 20):
            return None, 0
        b = self.elf.pread(off + 4, length)
        if len(b) < length:
            return None, 0
        return b, body

    def parse_cie(self, addr):
        c = self.cies.get(addr)
        if c is not None:
            return c
        b, body = self._entry(addr)
        if b is None or len(b) < 5 or struct.unpack_from(self.e + "I", b, 0)[0] != 0:
            raise FormatError("no CIE at 0x%x" % addr)
        c = CIE()
        version = b[4]
        j = b.find(b"\0", 5)
        if j < 0:
            raise FormatError("CIE at 0x%x: unterminated augmentation" % addr)
        aug = b[5:j].decode("ascii", "replace")
        p = j + 1
        if "eh" in aug:
            p += self.ptr
        c.code_align, p = uleb(b, p)
        c.data_align, p = sleb(b, p)
        if version == 1:
            if p >= len(b):
                raise FormatError("CIE at 0x%x: truncated" % addr)
            c.ra = b[p]
            p += 1
        else:
            c.ra, p = uleb(b, p)
        c.fde_enc = 0
        c.signal = "S" in aug
        c.aug_z = aug.startswith("z")
        if c.aug_z:
            alen, p = uleb(b, p)
            end = p + alen
            if end > len(b):
                raise FormatError("CIE at 0x%x: augmentation data past its end" % addr)
            q = p
            for ch in aug[1:]:
                if ch in "RPL" and q >= end:
                    raise FormatError("CIE at 0x%x: truncated augmentation data" % addr)
                if ch == "R":
                    c.fde_enc = b[q]
                    q += 1
                elif ch == "P":
                    penc = b[q]
                    q += 1
                    _, q = read_encoded(b, q, penc & 0x7F, self.e, self.ptr, body)
                elif ch == "L":
                    q += 1
                elif ch in "SBG":
                    pass
                else:
                    break
            p = end
        c.insns = b[p:]
        self.cies[addr] = c
        return c

    def parse_fde_at(self, addr):
        b, body = self._entry(addr)
        if b is None or len(b) < 8:
            return None
        cie_ptr = struct.unpack_from(self.e + "I", b, 0)[0]
        if cie_ptr == 0:
            return None
        cie = self.parse_cie(body - cie_ptr)
        f = FDE()
        f.cie = cie
        p = 4
        f.pc_begin, p = read_encoded(b, p, cie.fde_enc, self.e, self.ptr, body)
        f.pc_range, p = read_encoded(b, p, cie.fde_enc & 0x0F, self.e, self.ptr, 0)
        if cie.aug_z:
            alen, p = uleb(b, p)
            p += alen
        f.insns = b[p:]
        return f


# rule kinds
UNDEF = 0
SAME = 1
OFFSET = 2
VAL_OFFSET = 3
REGISTER = 4
EXPR = 5
VAL_EXPR = 6


def run_cfa(fde, pc, e, ptr):
    """(cfa, rules) at link-time pc: cfa = ("reg", r, off) or ("expr", bytes); rules: col -> (kind, arg)."""
    cie = fde.cie
    state = {"cfa": None, "rules": {}}
    _exec(cie.insns, cie, state, 0, None, e, ptr, None)
    init = dict(state["rules"])
    _exec(fde.insns, cie, state, fde.pc_begin, pc, e, ptr, init)
    return state["cfa"], state["rules"]


def _exec(b, cie, state, loc, target, e, ptr, init):
    p = 0
    stack = []
    rules = state["rules"]
    n = 0
    ca = cie.code_align
    da = cie.data_align
    while p < len(b):
        n += 1
        if n > limits.CFI_INSNS_MAX:
            raise FormatError("more than %d CFA instructions" % limits.CFI_INSNS_MAX)
        op = b[p]
        p += 1
        hi = op & 0xC0
        low = op & 0x3F
        if hi == 0x40:                       # DW_CFA_advance_loc
            loc += low * ca
            if target is not None and loc > target:
                return
            continue
        if hi == 0x80:                       # DW_CFA_offset
            off, p = uleb(b, p)
            rules[low] = (OFFSET, off * da)
            continue
        if hi == 0xC0:                       # DW_CFA_restore
            _restore(rules, init, low)
            continue
        if op == 0x00:
            continue
        if op == 0x01:                       # set_loc
            loc, p = read_encoded(b, p, cie.fde_enc, e, ptr, 0)
        elif op in (0x02, 0x03, 0x04):       # advance_loc1/2/4
            c = {0x02: "B", 0x03: "H", 0x04: "I"}[op]
            if p + struct.calcsize(c) > len(b):
                raise FormatError("truncated CFA instruction")
            loc += struct.unpack_from(e + c, b, p)[0] * ca
            p += struct.calcsize(c)
        elif op == 0x05:                     # offset_extended
            r, p = uleb(b, p)
            off, p = uleb(b, p)
            rules[r] = (OFFSET, off * da)
        elif op == 0x06:
            r, p = uleb(b, p)
            _restore(rules, init, r)
        elif op == 0x07:
            r, p = uleb(b, p)
            rules[r] = (UNDEF, None)
        elif op == 0x08:
            r, p = uleb(b, p)
            rules[r] = (SAME, None)
        elif op == 0x09:
            r, p = uleb(b, p)
            r2, p = uleb(b, p)
            rules[r] = (REGISTER, r2)
        elif op == 0x0A:                     # remember_state
            if len(stack) > 64:
                raise FormatError("CFA state stack too deep")
            stack.append((state["cfa"], dict(rules)))
        elif op == 0x0B:                     # restore_state
            if not stack:
                raise FormatError("restore_state with an empty stack")
            cfa, saved = stack.pop()
            state["cfa"] = cfa
            rules.clear()
            rules.update(saved)
        elif op == 0x0C:                     # def_cfa
            r, p = uleb(b, p)
            off, p = uleb(b, p)
            state["cfa"] = ("reg", r, off)
        elif op == 0x0D:                     # def_cfa_register
            r, p = uleb(b, p)
            c = state["cfa"]
            state["cfa"] = ("reg", r, c[2] if c and c[0] == "reg" else 0)
        elif op == 0x0E:                     # def_cfa_offset
            off, p = uleb(b, p)
            c = state["cfa"]
            state["cfa"] = ("reg", c[1] if c and c[0] == "reg" else 0, off)
        elif op == 0x0F:                     # def_cfa_expression
            ln, p = uleb(b, p)
            state["cfa"] = ("expr", b[p:p + ln])
            p += ln
        elif op in (0x10, 0x16):             # expression, val_expression
            r, p = uleb(b, p)
            ln, p = uleb(b, p)
            rules[r] = (EXPR if op == 0x10 else VAL_EXPR, b[p:p + ln])
            p += ln
        elif op == 0x11:                     # offset_extended_sf
            r, p = uleb(b, p)
            off, p = sleb(b, p)
            rules[r] = (OFFSET, off * da)
        elif op == 0x12:                     # def_cfa_sf
            r, p = uleb(b, p)
            off, p = sleb(b, p)
            state["cfa"] = ("reg", r, off * da)
        elif op == 0x13:                     # def_cfa_offset_sf
            off, p = sleb(b, p)
            c = state["cfa"]
            state["cfa"] = ("reg", c[1] if c and c[0] == "reg" else 0, off * da)
        elif op in (0x14, 0x15):             # val_offset(_sf)
            r, p = uleb(b, p)
            if op == 0x14:
                off, p = uleb(b, p)
            else:
                off, p = sleb(b, p)
            rules[r] = (VAL_OFFSET, off * da)
        elif op == 0x2E:                     # GNU_args_size
            _, p = uleb(b, p)
        elif op == 0x2F:                     # GNU_negative_offset_extended
            r, p = uleb(b, p)
            off, p = uleb(b, p)
            rules[r] = (OFFSET, -off * da)
        else:
            raise FormatError("unknown CFA instruction 0x%02x" % op)
        if target is not None and loc is not None and loc > target:
            return


def _restore(rules, init, r):
    if init is not None and r in init:
        rules[r] = init[r]
    elif r in rules:
        del rules[r]


def eval_expr(b, regs, mem_word, ptr, push=None):
    """Run a DWARF expression (the subset CFI uses); the value on top, or None if unknown."""
    st = [] if push is None else [push]
    p = 0
    n = 0
    mask = (1 << (8 * ptr)) - 1
    while p < len(b):
        n += 1
        if n > limits.DWARF_EXPR_OPS_MAX:
            raise FormatError("DWARF expression runs too long")
        op = b[p]
        p += 1
        if 0x30 <= op <= 0x4F:
            st.append(op - 0x30)
        elif 0x50 <= op <= 0x6F:
            v = regs.get(op - 0x50)
            if v is None:
                return None
            st.append(v)
        elif 0x70 <= op <= 0x8F:
            off, p = sleb(b, p)
            v = regs.get(op - 0x70)
            if v is None:
                return None
            st.append((v + off) & mask)
        elif op == 0x92:                     # bregx
            r, p = uleb(b, p)
            off, p = sleb(b, p)
            v = regs.get(r)
            if v is None:
                return None
            st.append((v + off) & mask)
        elif op in (0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F):
            c = {0x08: "B", 0x09: "b", 0x0A: "H", 0x0B: "h", 0x0C: "I", 0x0D: "i",
                 0x0E: "Q", 0x0F: "q"}[op]
            k = struct.calcsize(c)
            if p + k > len(b):
                raise FormatError("truncated DWARF constant")
            st.append(struct.unpack_from("<" + c, b, p)[0])
            p += k
        elif op == 0x10:
            v, p = uleb(b, p)
            st.append(v)
        elif op == 0x11:
            v, p = sleb(b, p)
            st.append(v)
        elif op == 0x06:                     # deref
            if not st:
                raise FormatError("DWARF stack underflow")
            v = mem_word(st.pop())
            if v is None:
                return None
            st.append(v)
        elif op == 0x12:
            if not st:
                raise FormatError("DWARF stack underflow")
            st.append(st[-1])
        elif op == 0x13:
            if not st:
                raise FormatError("DWARF stack underflow")
            st.pop()
        elif op == 0x14:
            if len(st) < 2:
                raise FormatError("DWARF stack underflow")
            st.append(st[-2])
        elif op == 0x16:
            if len(st) < 2:
                raise FormatError("DWARF stack underflow")
            st[-1], st[-2] = st[-2], st[-1]
        elif op == 0x23:                     # plus_uconst
            v, p = uleb(b, p)
            if not st:
                raise FormatError("DWARF stack underflow")
            st.append((st.pop() + v) & mask)
        elif 0x1A <= op <= 0x2E and op not in (0x1F, 0x20, 0x23, 0x28):
            if len(st) < 2:
                raise FormatError("DWARF stack underflow")
            y = st.pop()
            x = st.pop()
            if op == 0x1A:
                v = x & y
            elif op == 0x1B:
                v = (x // y) if y else 0
            elif op == 0x1C:
                v = x - y
            elif op == 0x1D:
                v = (x % y) if y else 0
            elif op == 0x1E:
                v = x * y
            elif op == 0x21:
                v = x | y
            elif op == 0x22:
                v = x + y
            elif op == 0x24:
                v = x << (y & 127)
            elif op == 0x25:
                v = x >> (y & 127)
            elif op == 0x26:
                sx = x - (1 << (8 * ptr)) if x >> (8 * ptr - 1) else x
                v = sx >> (y & 127)
            elif op == 0x27:
                v = x ^ y
            else:                            # 0x29..0x2e: eq ge gt le lt ne
                v = int({0x29: x == y, 0x2A: x >= y, 0x2B: x > y, 0x2C: x <= y,
                         0x2D: x < y, 0x2E: x != y}[op])
            st.append(v & mask)
        elif op == 0x1F:
            if not st:
                raise FormatError("DWARF stack underflow")
            st.append((-st.pop()) & mask)
        elif op == 0x20:
            if not st:
                raise FormatError("DWARF stack underflow")
            st.append((~st.pop()) & mask)
        elif op == 0x2F:                     # skip
            if p + 2 > len(b):
                raise FormatError("truncated DW_OP_skip")
            p += 2 + struct.unpack_from("<h", b, p)[0]
        elif op == 0x28:                     # bra
            if p + 2 > len(b) or not st:
                raise FormatError("bad DW_OP_bra")
            d = struct.unpack_from("<h", b, p)[0]
            p += 2
            if st.pop():
                p += d
        elif op == 0x96:
            pass
        else:
            raise FormatError("unsupported DWARF op 0x%02x" % op)
        if p < 0:
            raise FormatError("DWARF branch out of range")
    return st[-1] if st else None


class Unwinder:
    """Unwinds the threads of an elfcore.Core using the mapped files it can open."""

    def __init__(self, core, modules, exec_ranges=None):
        self.core = core
        self.arch = core.arch
        self.modules = modules            # [Module]
        self.e = core.endian
        self.ptr = self.arch.ptr_size
        self.mask = (1 << (8 * self.ptr)) - 1
        if exec_ranges is None:
            exec_ranges = [(s.p_vaddr, s.p_vaddr + s.p_memsz) for s in core.segments
                           if s.p_type == 1 and s.p_flags & 1]
        self.exec_ranges = exec_ranges
        self.eh = {}
        self.missing = None

    def module_at(self, addr):
        for m in self.modules:
            if m.holds(addr):
                return m
        return None

    def is_exec(self, addr):
        for s, e in self.exec_ranges:
            if s <= addr < e:
                return True
        return False

    def word(self, addr):
        v = self.core.read_word(addr & self.mask)
        if v is None and self.missing is None:
            self.missing = addr & self.mask   # the first memory the unwind wanted and lacked
        return v

    def _ehframe(self, m):
        if m.elf is None:
            return None
        eh = self.eh.get(m.path)
        if eh is None:
            eh = EhFrame(m.elf)
            self.eh[m.path] = eh
        return eh

    def unwind(self, thread):
        a = self.arch
        regs = {}
        for num in a.dwarf_regs:
            regs[num] = thread.regs.get(a.dwarf_regs[num])
        pc = thread.regs.get(a.pc)
        frames = []
        f = Frame(pc, "regs")
        frames.append(f)
        prev_signal = True               # frame 0's pc is exact: look it up as is
        done = False
        while len(frames) < limits.FRAMES_MAX and not done:
            f.lookup_pc = pc if prev_signal else pc - 1
            sp = regs.get(a.sp_dwarf)
            nxt = None
            try:
                nxt = self._step_cfi(f, regs)
            except FormatError:
                nxt = None
            if nxt == "end":
                break
            if nxt is None:
                nxt = self._step_fallback(frames, regs)
            if nxt is None:
                self._scan(frames, sp)
                break
            new_regs, new_pc, how = nxt
            new_sp = new_regs.get(a.sp_dwarf)
            if new_pc is None or new_pc == 0 or new_sp is None or sp is None:
                break
            # stacks grow down: a caller's frame is above; equal sp only after a signal frame
            if new_sp < sp or (new_sp == sp and f.how != "signal"):
                break
            prev_signal = f.how == "signal"
            regs = new_regs
            pc = new_pc
            f = Frame(pc, how)
            frames.append(f)
        return frames

    def _step_cfi(self, f, regs):
        a = self.arch
        m = self.module_at(f.lookup_pc)
        if m is None or m.elf is None:
            return None
        eh = self._ehframe(m)
        if eh is None:
            return None
        link_pc = f.lookup_pc - m.bias
        fde = eh.find(link_pc)
        if fde is None:
            return None
        if fde.cie.signal:
            # a sigreturn trampoline: no call put us here, so its own pc names it (gdb does
            # the same for SIGTRAMP frames); the FDE starts a byte early for pc - 1 lookups
            f.how = "signal"
            if f.lookup_pc != f.pc and fde.pc_begin <= f.pc - m.bias < fde.pc_begin + fde.pc_range:
                f.lookup_pc = f.pc
        cfa_rule, rules = run_cfa(fde, link_pc, self.e, self.ptr)
        if cfa_rule is None:
            return None
        if cfa_rule[0] == "reg":
            base = regs.get(cfa_rule[1])
            if base is None:
                return None
            cfa = (base + cfa_rule[2]) & self.mask
        else:
            cfa = eval_expr(cfa_rule[1], regs, self.word, self.ptr)
            if cfa is None:
                return None
        f.cfa = cfa
        new = dict(regs)
        ra_col = fde.cie.ra
        for col in rules:
            kind, arg = rules[col]
            if kind == UNDEF:
                new[col] = None
            elif kind == SAME:
                pass
            elif kind == OFFSET:
                new[col] = self.word(cfa + arg)
            elif kind == VAL_OFFSET:
                new[col] = (cfa + arg) & self.mask
            elif kind == REGISTER:
                new[col] = regs.get(arg)
            elif kind == EXPR:
                addr = eval_expr(arg, regs, self.word, self.ptr, push=cfa)
                new[col] = None if addr is None else self.word(addr)
            elif kind == VAL_EXPR:
                new[col] = eval_expr(arg, regs, self.word, self.ptr, push=cfa)
        if ra_col in rules and rules[ra_col][0] == UNDEF:
            return "end"                 # the outermost frame (_start, clone): CFI says so
        if ra_col not in rules:
            return None
        ra = new.get(ra_col)
        new[a.sp_dwarf] = cfa
        if ra is None:
            return None
        new[a.dwarf_of[a.pc]] = ra
        return new, ra, "cfi"

    def _step_fallback(self, frames, regs):
        a = self.arch
        sp = regs.get(a.sp_dwarf)
        pc = frames[-1].pc
        if len(frames) == 1 and a.entry_ra_at_sp and sp is not None and not self.is_exec(pc):
            # a call through a bad pointer: nothing ran yet, the return address is at [sp]
            ra = self.word(sp)
            if ra is not None and self.is_exec(ra):
                new = dict(regs)
                new[a.sp_dwarf] = sp + a.ptr_size
                new[a.dwarf_of[a.pc]] = ra
                return new, ra, "call"
        fp = regs.get(a.fp_dwarf)
        if fp is None or sp is None or fp < sp:
            return None
        ra = self.word(fp + a.fp_ra_off)
        nfp = self.word(fp + a.fp_next_off)
        if ra is None or nfp is None or not self.is_exec(ra):
            return None
        new = dict(regs)
        new[a.fp_dwarf] = nfp
        new[a.sp_dwarf] = fp + a.fp_sp_off
        new[a.dwarf_of[a.pc]] = ra
        return new, ra, "fp"

    def _scan(self, frames, sp):
        """Words above sp that point just after a call instruction: marked guesses."""
        if sp is None:
            return
        a = self.arch
        n = 0
        addr = sp
        end = sp + limits.CORE_STACK_THREAD
        while addr < end and n < limits.SCAN_FRAMES_MAX and len(frames) < limits.FRAMES_MAX:
            w = self.word(addr)
            if w is None:
                break
            if self.is_exec(w) and self._after_call(w):
                f = Frame(w, "scan", addr)
                f.lookup_pc = w - 1
                frames.append(f)
                n += 1
            addr += a.ptr_size

    def _after_call(self, ra):
        m = self.module_at(ra)
        if m is None or m.elf is None:
            return False
        n = self.arch.call_window
        off = m.elf.vaddr_to_offset(ra - m.bias - n, n)
        if off is None:
            return False
        code = m.elf.pread(off, n)
        if len(code) < n:
            return False
        return self.arch.after_call(code)


def symbolize(frames_lists, modules):
    """Fill function/module/offset of every frame, one symbol-table pass per module."""
    want = {}
    for frames in frames_lists:
        for f in frames:
            for m in modules:
                if m.holds(f.lookup_pc):
                    f.module = m.path
                    if m.bias is not None:
                        f.offset = f.pc - m.bias
                        want.setdefault(id(m), (m, []))[1].append(f)
                    break
    for key in want:
        m, fl = want[key]
        elf = m.symelf or m.elf
        if elf is None:
            continue
        addrs = [f.lookup_pc - m.bias for f in fl]
        try:
            found = elf.lookup_many(addrs)
        except (FormatError, OSError):
            continue
        for f, q in zip(fl, addrs):
            s = found.get(q)
            if s is not None:
                # "memcpy@@GLIBC_2.14": the version suffix is not part of the name (gdb drops it)
                f.function = s.name.split("@", 1)[0] or s.name
                f.sym_offset = (f.pc - m.bias) - s.value


DELETED = " (deleted)"


def modules_from_maps(entries, map_files=None):
    """[Module] from [(start, end, offset, path)]: file mappings grouped by path, and the vDSO.

    map_files: /proc/<pid>/map_files while the process lives. A file replaced
    or removed since it was mapped (an upgrade under a running daemon) shows
    as "path (deleted)"; its bytes are still readable there.
    """
    by = {}
    order = []
    for start, end, offset, path in entries:
        if not path or (path[0] != "/" and path != "[vdso]"):
            continue
        alt = None
        if path.endswith(DELETED):
            path = path[:-len(DELETED)]
            if map_files:
                alt = "%s/%x-%x" % (map_files, start, end)
        m = by.get(path)
        if m is None:
            if len(order) >= limits.MODULES_MAX:
                continue
            m = Module(path, start, end, offset)
            by[path] = m
            order.append(m)
        else:
            m.ranges.append((start, end, offset))
        if alt and not m.alt:
            m.alt = alt
    return order


def preopen(modules):
    """Open now what only the live process can give (map_files of deleted files):
    an open file stays readable after the process is reaped."""
    from crashkeep.formats.elffile import ElfFile
    for m in modules:
        if m.alt and m.elf is None:
            try:
                m.elf = ElfFile(m.alt, m.path)
            except (OSError, FormatError, ValueError):
                m.elf = None


def _build_id_in_core(core, m):
    from crashkeep.formats.elffile import ElfFile
    for s, e, off in m.ranges:
        if off == 0:
            page = core.read(s, limits.PAGE_SIZE)
            if page is None:
                return None
            try:
                return ElfFile(page, m.path).build_id()
            except (FormatError, ValueError, IndexError):
                return None
    return None


def _candidates(m, search, exe):
    from crashkeep.compat import basename
    out = []
    if exe:
        out.append(exe)
    if m.alt:
        out.append(m.alt)
    out.append(m.path)
    for d in search:
        out.append(d.rstrip("/") + m.path)
        out.append(d.rstrip("/") + "/" + basename(m.path))
    return out


def open_modules(core, modules, search=(), exe_path=None, exe_module=None):
    """Open each module's file: the recorded path, else under the search paths
    (same path, same name, or .build-id/xx/rest[.debug]); a build-id recorded
    in the core must match. Separate .debug files only supply symbols."""
    from crashkeep.formats.elffile import ElfFile
    for m in modules:
        if m.tried:
            continue
        m.tried = True
        if m.path == "[vdso]":
            s, e, _ = m.ranges[0]
            data = core.read(s, min(e - s, limits.CORE_VDSO_MAX))
            if data is None:
                m.tried = False       # not streamed by yet: try again later
            else:
                try:
                    m.elf = ElfFile(data, "[vdso]")
                except (FormatError, ValueError, IndexError):
                    m.elf = None
        elif m.elf is None:
            want = _build_id_in_core(core, m)
            exe = exe_path if m is exe_module else None
            cands = _candidates(m, search, exe)
            if want:
                for d in search:
                    cands.append("%s/.build-id/%s/%s" % (d.rstrip("/"), want[:2], want[2:]))
            fallback = None
            for p in cands:
                try:
                    elf = ElfFile(p, m.path)
                except (OSError, FormatError, ValueError):
                    continue
                bid = elf.build_id()
                if want and bid and bid != want:
                    if fallback is None:
                        fallback = elf
                    else:
                        elf.close()
                    continue
                m.elf = elf
                break
            if m.elf is None:
                m.elf = fallback
            elif fallback is not None:
                fallback.close()
            if want:
                for d in search:
                    p = "%s/.build-id/%s/%s.debug" % (d.rstrip("/"), want[:2], want[2:])
                    try:
                        m.symelf = ElfFile(p, m.path)
                        break
                    except (OSError, FormatError, ValueError):
                        continue
        if m.elf is not None:
            low = min(m.ranges, key=lambda r: r[2])
            m.bias = m.elf.load_bias_for(low[0], low[2])
        elif m.symelf is not None:
            low = min(m.ranges, key=lambda r: r[2])
            m.bias = m.symelf.load_bias_for(low[0], low[2])


def close_modules(modules):
    for m in modules:
        for elf in (m.elf, m.symelf):
            if elf is not None:
                elf.close()
