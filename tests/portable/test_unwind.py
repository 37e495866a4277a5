"""CFI unwinding on a hand-built ELF (mapped like a vDSO, so it lives in the core's memory):
DWARF LEB128 and expressions, CFA programs, signal frames, the fp/call fallbacks
and the marked scan. Runs under pytest and MicroPython; gdb checks real cores in
tests/test_unwind_gdb.py."""
import struct

from _util import raises
from test_elfcore import make_core, Pipe

from crashkeep.formats import elfcore, unwind
from crashkeep.errors import FormatError

BASE = 0x7F0000100000
STACK = 0x7FFE0000
LEAF, MID, TOP, TRAMP, NOFDE, TAIL = 0x100, 0x120, 0x140, 0x160, 0x180, 0x1A0


def uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def cie(aug, insns):
    body = struct.pack("<I", 0) + b"\x01" + aug + b"\0" + b"\x01\x78\x10" + b"\x01\x1b" + insns
    while (len(body) + 4) % 8:
        body += b"\0"
    return struct.pack("<I", len(body)) + body


def fde(at, cie_at, begin, size, insns):
    body = struct.pack("<I", at + 4 - cie_at)
    body += struct.pack("<ii", begin - (at + 8), size) + b"\0" + insns
    while (len(body) + 4) % 8:
        body += b"\0"
    return struct.pack("<I", len(body)) + body


def eh_frame(at):
    """CIE (rsp+8, ra at cfa-8), signal CIE, and one FDE per function except NOFDE."""
    out = b""
    c1 = at
    out += cie(b"zR", b"\x0c\x07\x08\x90\x01")
    c2 = at + len(out)
    out += cie(b"zRS", b"")
    # leaf: nothing pushed
    out += fde(at + len(out), c1, LEAF, 0x20, b"")
    # mid: push rbp at +0 -> after +1: cfa = rsp+16, rbp at cfa-16
    out += fde(at + len(out), c1, MID, 0x20, b"\x41\x0e\x10\x86\x02")
    # top: the outermost frame, its return address is undefined (like _start)
    out += fde(at + len(out), c1, TOP, 0x18, b"\x07\x10")
    # trampoline: a sigreturn frame, registers saved in a context at rsp
    #   cfa = [rsp+0x28]; rip at rsp+0x30; rbp at rsp+0x38 (DW_OP_breg7 N, DW_OP_deref)
    out += fde(at + len(out), c2, TRAMP - 1, 0x11,
               b"\x0f\x03\x77\x28\x06" + b"\x10\x10\x02\x77\x30" + b"\x10\x06\x02\x77\x38")
    # tail: a PLT-like CFA expression: rsp + 8 + ((rip & 15) >= 11) << 3
    out += fde(at + len(out), c1, TAIL, 0x20,
               b"\x0f\x0b\x77\x08\x80\x00\x3f\x1a\x3b\x2a\x33\x24\x22")
    return out + struct.pack("<I", 0)


def strtab(names):
    b = b"\0"
    offs = {}
    for n in names:
        offs[n] = len(b)
        b += n.encode() + b"\0"
    return b, offs


def make_elf():
    """A small ET_DYN x86_64 ELF: .text (fake code), .eh_frame, .symtab, .strtab, .shstrtab."""
    img = bytearray(0x1000)
    img[0x100:0x200] = b"\x90" * 0x100
    # a `call rel32` ending right before MID+0x10 (what the scan looks for)
    img[MID + 0x10 - 5] = 0xE8
    eh = eh_frame(0x200)
    img[0x200:0x200 + len(eh)] = eh
    funcs = [("leaf", LEAF, 0x20), ("mid", MID, 0x20), ("top", TOP, 0x18), ("tramp", TRAMP, 0x10),
             ("nofde", NOFDE, 0x20), ("tail", TAIL, 0x20)]
    st, offs = strtab([f[0] for f in funcs])
    sym = bytes(24)
    for name, addr, size in funcs:
        sym += struct.pack("<IBBHQQ", offs[name], 0x12, 0, 1, addr, size)
    sym_at, str_at = 0x600, 0x600 + len(sym)
    img[sym_at:sym_at + len(sym)] = sym
    img[str_at:str_at + len(st)] = st
    sh_names, sho = strtab([".text", ".eh_frame", ".symtab", ".strtab", ".shstrtab"])
    shs_at = str_at + len(st)
    img[shs_at:shs_at + len(sh_names)] = sh_names
    shoff = (shs_at + len(sh_names) + 7) & ~7

    def sh(name, t, flags, addr, off, size, link=0, ent=0):
        return struct.pack("<IIQQQQIIQQ", sho[name] if name else 0, t, flags, addr, off, size,
                           link, 0, 8, ent)
    shdrs = bytes(64) + sh(".text", 1, 6, 0x100, 0x100, 0x100) + \
        sh(".eh_frame", 1, 2, 0x200, 0x200, len(eh)) + \
        sh(".symtab", 2, 0, 0, sym_at, len(sym), 4, 24) + sh(".strtab", 3, 0, 0, str_at, len(st)) + \
        sh(".shstrtab", 3, 0, 0, shs_at, len(sh_names))
    img[shoff:shoff + len(shdrs)] = shdrs
    img[0:4] = b"\x7fELF"
    img[4], img[5], img[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", img, 16, 3, 62, 1, 0, 64, shoff, 0, 64, 56, 1, 64, 6, 5)
    struct.pack_into("<IIQQQQQQ", img, 64, 1, 5, 0, 0, 0, 0x1000, 0x1000, 0x1000)
    return bytes(img)


def stack_with(words, sp):
    """A 64 KiB stack segment ending at STACK with `words` {address: value}."""
    b = bytearray(0x10000)
    for a in words:
        struct.pack_into("<Q", b, a - (STACK - 0x10000), words[a])
    return bytes(b)


def frames_for(regs, words):
    loads = [(BASE, make_elf(), 0x1000, 5),
             (STACK - 0x10000, stack_with(words, regs["rsp"]), 0x10000, 6)]
    core = elfcore.read_core(Pipe(make_core([(9, regs)], loads,
                                            auxv=[(elfcore.AT_SYSINFO_EHDR, BASE)])))
    mods = unwind.modules_from_maps([(BASE, BASE + 0x1000, 0, "[vdso]")])
    unwind.open_modules(core, mods)
    u = unwind.Unwinder(core, mods)
    fr = u.unwind(core.threads[0])
    unwind.symbolize([fr], mods)
    return fr


def show(fr):
    return [(f.function, f.how) for f in fr]


def test_leb128():
    assert unwind.uleb(b"\x02", 0) == (2, 1)
    assert unwind.uleb(b"\x80\x01", 0) == (128, 2)
    assert unwind.uleb(b"\xb9\x64", 0) == (12857, 2)
    assert unwind.sleb(b"\x7e", 0) == (-2, 1)
    assert unwind.sleb(b"\x81\x7f", 0) == (-127, 2)
    assert unwind.sleb(b"\x80\x7f", 0) == (-128, 2)
    raises(FormatError, unwind.uleb, b"\x80\x80", 0)


def test_plt_style_cfa_expression():
    # DW_OP_breg7 8; DW_OP_breg16 0; lit15; and; lit11; ge; lit3; shl; plus
    expr = b"\x77\x08\x80\x00\x3f\x1a\x3b\x2a\x33\x24\x22"
    assert unwind.eval_expr(expr, {7: 0x1000, 16: 0x4010}, None, 8) == 0x1008
    assert unwind.eval_expr(expr, {7: 0x1000, 16: 0x401B}, None, 8) == 0x1010
    assert unwind.eval_expr(expr, {7: 0x1000}, None, 8) is None       # rip unknown
    raises(FormatError, unwind.eval_expr, b"\x1a", {}, None, 8)       # stack underflow
    raises(FormatError, unwind.eval_expr, b"\xe0", {}, None, 8)       # unknown op


def test_cfa_program_rules_by_pc():
    elf = make_elf()
    from crashkeep.formats.elffile import ElfFile
    eh = unwind.EhFrame(ElfFile(elf))
    f = eh.find(MID)
    assert f.pc_begin == MID and f.pc_range == 0x20
    cfa, rules = unwind.run_cfa(f, MID, "<", 8)
    assert cfa == ("reg", 7, 8) and rules[16] == (unwind.OFFSET, -8) and 6 not in rules
    cfa, rules = unwind.run_cfa(f, MID + 1, "<", 8)
    assert cfa == ("reg", 7, 16) and rules[6] == (unwind.OFFSET, -16)
    assert eh.find(NOFDE) is None and eh.find(0x50) is None
    assert eh.find(TRAMP - 1).cie.signal


def test_cfi_chain_leaf_mid_top():
    sp = STACK - 0x1000
    fr = frames_for({"rip": BASE + LEAF + 8, "rsp": sp},
                    {sp: BASE + MID + 0x10, sp + 8: 0x1234, sp + 16: BASE + TOP + 0x10})
    assert show(fr) == [("leaf", "regs"), ("mid", "cfi"), ("top", "cfi")]
    assert fr[1].offset == MID + 0x10 and fr[1].module == "[vdso]"
    assert fr[1].sym_offset == 0x10


def test_signal_frame_then_exact_pc():
    sp = STACK - 0x1000
    ctx = sp + 8                     # rsp inside the trampoline frame
    saved_sp = STACK - 0x800
    words = {sp: BASE + TRAMP, ctx + 0x28: saved_sp, ctx + 0x30: BASE + MID + 4,
             ctx + 0x38: 0x5555, saved_sp + 8: BASE + TOP + 0x10}
    fr = frames_for({"rip": BASE + LEAF + 4, "rsp": sp}, words)
    assert show(fr) == [("leaf", "regs"), ("tramp", "signal"), ("mid", "cfi"), ("top", "cfi")]
    # after a signal frame the pc is where the signal hit, looked up as is
    assert fr[2].pc == BASE + MID + 4 and fr[2].lookup_pc == fr[2].pc


def test_plt_expression_frame():
    sp = STACK - 0x1000
    # rip & 15 = 0xb >= 11: cfa = rsp + 16, return address at cfa - 8
    fr = frames_for({"rip": BASE + TAIL + 0xB, "rsp": sp},
                    {sp + 8: BASE + MID + 0x10, sp + 16: 0x1, sp + 24: BASE + TOP + 0x10})
    assert show(fr) == [("tail", "regs"), ("mid", "cfi"), ("top", "cfi")]


def test_call_through_null_pointer():
    sp = STACK - 0x1000
    fr = frames_for({"rip": 0, "rsp": sp},
                    {sp: BASE + MID + 0x10, sp + 16: BASE + TOP + 0x10})
    assert show(fr) == [(None, "regs"), ("mid", "call"), ("top", "cfi")]
    assert fr[0].module is None


def test_frame_pointer_fallback_without_cfi():
    sp = STACK - 0x1000
    fp = sp + 0x40
    fr = frames_for({"rip": BASE + NOFDE + 4, "rsp": sp, "rbp": fp},
                    {fp: 0x99, fp + 8: BASE + MID + 0x10, fp + 24: BASE + TOP + 0x10})
    assert show(fr) == [("nofde", "regs"), ("mid", "fp"), ("top", "cfi")]


def test_marked_scan_when_nothing_else_works():
    sp = STACK - 0x1000
    # no CFI for nofde and no usable frame pointer: the scan finds MID+0x10 (after a call)
    # and skips MID+0x11 (no call before it)
    fr = frames_for({"rip": BASE + NOFDE + 4, "rsp": sp, "rbp": 0},
                    {sp + 0x18: BASE + MID + 0x11, sp + 0x20: BASE + MID + 0x10})
    assert show(fr) == [("nofde", "regs"), ("mid", "scan")]
    assert fr[1].cfa == sp + 0x20


def test_missing_stack_stops_cleanly():
    # sp outside every segment: one frame from the registers, nothing invented
    fr = frames_for({"rip": BASE + LEAF + 4, "rsp": 0x1000}, {})
    assert show(fr) == [("leaf", "regs")]


def test_advance_in_cie_instructions_is_harmless():
    """Fuzzer find: a CIE whose initial instructions advance the location."""
    c = unwind.CIE()
    c.insns, c.code_align, c.data_align, c.fde_enc, c.ra = b"\x41\x0c\x07\x08", 1, -8, 0x1B, 16
    f = unwind.FDE()
    f.cie, f.pc_begin, f.pc_range, f.insns = c, 0x100, 0x10, b"\x0e\x10"
    assert unwind.run_cfa(f, 0x104, "<", 8)[0] == ("reg", 7, 16)


def test_cie_with_truncated_augmentation_data_is_a_format_error():
    """Fuzzer find: 'zR' with an augmentation length that leaves no room for the encoding."""
    from crashkeep.formats.elffile import ElfFile
    img = bytearray(make_elf())
    # the first CIE (at 0x200): body = id, version, "zR\0", 01 78 10, aug len, enc, insns
    assert img[0x200 + 9:0x200 + 12] == b"zR\0"
    img[0x200 + 15] = 0x7F          # augmentation length far past the CIE
    eh = unwind.EhFrame(ElfFile(bytes(img)))
    raises(FormatError, eh.find, MID)
