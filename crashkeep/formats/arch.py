"""Everything architecture-specific the core reader and the unwinder need, in one table.

Layout sources: the kernel's `struct elf_prstatus` / `elf_prpsinfo`
(include/linux/elfcore.h, include/uapi/linux/elfcore.h), each arch's
`user_regs_struct` (arch/x86/include/asm/user_64.h), siginfo_t
(include/uapi/asm-generic/siginfo.h), the psABI DWARF register numbering
(System V AMD64 psABI, 3.6.2 "DWARF Register Number Mapping").

x86_64 `elf_prstatus` (336 bytes)           `elf_prpsinfo` (136 bytes)
  0  si_signo si_errno si_code (3 x i32)      0  pr_state pr_sname pr_zomb pr_nice
 12  pr_cursig (i16), pad                     8  pr_flag (u64)
 16  pr_sigpend, 24 pr_sighold (u64)         16  pr_uid, 20 pr_gid (u32)
 32  pr_pid pr_ppid pr_pgrp pr_sid (i32)     24  pr_pid, 28 pr_ppid, 32 pr_pgrp, 36 pr_sid
 48  4 x timeval (16 bytes each)             40  pr_fname[16]
112  pr_reg: 27 x u64 (user_regs_struct)     56  pr_psargs[80]
328  pr_fpvalid (i32)
siginfo_t: 0 si_signo, 4 si_errno, 8 si_code, 16 si_addr (for SIGSEGV/BUS/ILL/FPE/TRAP)

To add an architecture: one Arch object below (e_machine, register names in
pr_reg order, DWARF numbers, which register is sp/pc/fp/return address, how a
frame-pointer frame and a call-entry frame look), and nothing else changes.
"""

EM_X86_64 = 62
EM_AARCH64 = 183   # planned: register table below is not wired to a test yet
EM_ARM = 40
EM_MIPS = 8


class Arch:
    def __init__(self, name, e_machine, ptr_size, reg_names, dwarf_regs, sp, pc, fp, ra_column,
                 prstatus_reg_off, prstatus_pid_off, psinfo, siginfo_code_off, siginfo_addr_off,
                 fp_ra_off, fp_next_off, fp_sp_off, entry_ra_at_sp, red_zone,
                 call_window, after_call):
        self.name = name
        self.e_machine = e_machine
        self.ptr_size = ptr_size
        self.reg_names = reg_names          # pr_reg order
        self.dwarf_regs = dwarf_regs        # DWARF number -> reg name
        self.dwarf_of = {}
        for k in dwarf_regs:
            self.dwarf_of[dwarf_regs[k]] = k
        self.sp = sp                        # names in reg_names
        self.pc = pc
        self.fp = fp
        self.ra_column = ra_column          # DWARF column holding the return address
        self.prstatus_reg_off = prstatus_reg_off
        self.prstatus_pid_off = prstatus_pid_off
        self.psinfo = psinfo                # field -> (offset, size)
        self.siginfo_code_off = siginfo_code_off
        self.siginfo_addr_off = siginfo_addr_off
        self.fp_ra_off = fp_ra_off          # return address at fp + this
        self.fp_next_off = fp_next_off      # caller's fp at fp + this
        self.fp_sp_off = fp_sp_off          # caller's sp = fp + this
        self.entry_ra_at_sp = entry_ra_at_sp  # just after a call, the return address is at [sp]
        self.red_zone = red_zone            # bytes below sp a leaf may use (read them too)
        self.call_window = call_window      # code bytes before a return address to check
        self._after_call = after_call       # for a call instruction (the stack scan)

    def after_call(self, code):
        """True if `code` (the call_window bytes before a return address) ends with a call."""
        return self._after_call(code)

    @property
    def sp_dwarf(self):
        return self.dwarf_of[self.sp]

    @property
    def fp_dwarf(self):
        return self.dwarf_of[self.fp]


def _x86_after_call(code):
    # call rel32 (e8 xx xx xx xx), call *reg / *mem (ff /2) in its 2-, 3-, 6- and 7-byte forms
    if code[2] == 0xE8:
        return True
    for k in (5, 4, 1, 0):
        if code[k] == 0xFF and (code[k + 1] >> 3) & 7 == 2:
            return True
    return False


X86_64 = Arch(
    "x86_64", EM_X86_64, 8,
    ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
     "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base",
     "ds", "es", "fs", "gs"),
    {0: "rax", 1: "rdx", 2: "rcx", 3: "rbx", 4: "rsi", 5: "rdi", 6: "rbp", 7: "rsp",
     8: "r8", 9: "r9", 10: "r10", 11: "r11", 12: "r12", 13: "r13", 14: "r14", 15: "r15",
     16: "rip"},
    "rsp", "rip", "rbp", 16,
    112, 32,
    {"uid": (16, 4), "gid": (20, 4), "pid": (24, 4), "ppid": (28, 4), "fname": (40, 16),
     "psargs": (56, 80)},
    8, 16,
    8, 0, 16, True, 128,
    7, _x86_after_call)

ARCHES = (X86_64,)


def for_machine(e_machine):
    """The Arch for an ELF e_machine, or None when crashkeep cannot unwind it yet."""
    for a in ARCHES:
        if a.e_machine == e_machine:
            return a
    return None
