"""Named limits on every count or size read from untrusted bytes or configs."""
from crashkeep.compat import const

PAGE_SIZE = const(4096)
CONFIG_BYTES_MAX = const(65536)      # a board config larger than this is not a config
CONFIG_LINES_MAX = const(2000)
ZONES_MAX = const(4096)              # ramoops zones in one region
REGION_SIZE_MAX = const(1 << 30)     # the largest reserved region we parse in memory
RECORD_INFLATED_MAX = const(4 << 20) # a dmesg record never inflates past this
PSTORE_FILE_MAX = const(64 << 20)    # a /sys/fs/pstore file read into memory (crashkeep/pstore.py)
MODULE_TREE_ENTRIES_MAX = const(200000)  # directory entries searched for a .ko
MODULE_FILE_MAX = const(64 << 20)        # a .ko read for init_module (ramoops.ko is ~60 KB)
# phram keep area (crashkeep/phramrec.py)
KEEP_NAME_MAX = const(64)            # record name bytes
KEEP_FIRMWARE_MAX = const(64)        # firmware version bytes kept in a record
KEEP_SOURCE_MAX = const(200)         # source path bytes kept (the tail of a longer path)
KEEP_HDR_MAX = const(512)            # a record header is never longer than this
KEEP_RECORDS_MAX = const(1024)       # live records `save` writes into one area (each costs memory)
KEEP_SCAN_MAX = const(1280)          # valid records read from one area: past KEEP_RECORDS_MAX,
                                     # so an area over-filled by an older writer still reads
                                     # (2048 is past MicroPython's 2 MiB heap)
KEEP_AREA_MAX = const(64 << 20)      # the largest keep area read into memory
# ELF cores and backtraces (crashkeep/elfcore.py, elffile.py, unwind.py)
CORE_SEGMENTS_MAX = const(65534)     # program headers in a core (e_phnum is 16 bits)
CORE_NOTES_BYTES = const(4 << 20)    # PT_NOTE bytes read; the rest of a huge note is skipped
CORE_NOTES_MAX = const(100000)       # notes parsed (about 6 per thread)
CORE_THREADS_MAX = const(256)        # threads kept from a core
CORE_FILES_MAX = const(65536)        # NT_FILE mappings
CORE_AUXV_MAX = const(128)           # auxv entries
CORE_STACK_CRASHED = const(256 << 10)  # stack bytes kept above sp, crashing thread
CORE_STACK_THREAD = const(64 << 10)  # stack bytes kept above sp, other threads
CORE_STACKS_TOTAL = const(4 << 20)   # all stacks together
CORE_VDSO_MAX = const(64 << 10)      # vDSO bytes kept
CORE_HEADER_PAGES_MAX = const(256)   # first pages of mapped ELF files kept (build-ids)
ELF_SECTIONS_MAX = const(4096)       # section headers read from a binary
ELF_SYMBOLS_MAX = const(500000)      # symbols indexed from one binary
ELF_EH_FRAME_MAX = const(16 << 20)   # .eh_frame bytes scanned linearly (no .eh_frame_hdr)
FRAMES_MAX = const(64)               # frames per thread
SCAN_FRAMES_MAX = const(16)          # frames guessed by the marked stack scan
CFI_INSNS_MAX = const(10000)         # CFA instructions run for one frame
DWARF_EXPR_OPS_MAX = const(1000)     # DWARF expression operations run for one rule
MODULES_MAX = const(512)             # mapped ELF files opened for one backtrace
CFI_SCAN_ENTRIES_MAX = const(20000)  # .eh_frame entries walked per lookup without .eh_frame_hdr
CORE_MORE_RANGES = const(8)          # extra memory ranges the unwinder may ask for while streaming
