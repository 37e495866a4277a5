"""Named limits on every count or size read from untrusted bytes or configs."""
from crashkeep._compat import const

PAGE_SIZE = const(4096)
CONFIG_BYTES_MAX = const(65536)      # a board config larger than this is not a config
CONFIG_LINES_MAX = const(2000)
ZONES_MAX = const(4096)              # ramoops zones in one region
REGION_SIZE_MAX = const(1 << 30)     # the largest reserved region we parse in memory
RECORD_INFLATED_MAX = const(4 << 20) # a dmesg record never inflates past this
MODULE_TREE_ENTRIES_MAX = const(200000)  # directory entries searched for a .ko
# phram keep area (crashkeep/phramrec.py)
KEEP_NAME_MAX = const(64)            # record name bytes
KEEP_FIRMWARE_MAX = const(64)        # firmware version bytes kept in a record
KEEP_SOURCE_MAX = const(200)         # source path bytes kept (the tail of a longer path)
KEEP_HDR_MAX = const(512)            # a record header is never longer than this
KEEP_RECORDS_MAX = const(1024)       # valid records in one area (each costs memory on a small board)
KEEP_AREA_MAX = const(64 << 20)      # the largest keep area read into memory
