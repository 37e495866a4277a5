"""Named limits on every count or size read from untrusted bytes or configs."""
from crashkeep._compat import const

PAGE_SIZE = const(4096)
CONFIG_BYTES_MAX = const(65536)      # a board config larger than this is not a config
CONFIG_LINES_MAX = const(2000)
ZONES_MAX = const(4096)              # ramoops zones in one region
REGION_SIZE_MAX = const(1 << 30)     # the largest reserved region we parse in memory
RECORD_INFLATED_MAX = const(4 << 20) # a dmesg record never inflates past this
