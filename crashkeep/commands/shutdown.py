"""`crashkeep shutdown`: mark a clean shutdown, so the next boot tells it from a crash."""
import time

from crashkeep.commands.spec import BOARD, DEVICE_OR_KEEP, ROOT, Command
from crashkeep.ops import bootstate


def shutdown(opts):
    board, area = bootstate.area_for(opts)
    try:
        st = area.boot_state() or bootstate.next_state(
            None, bootstate.CLEAN, bootstate.read_boot_id(opts.root), time.time())
        st["clean_shutdown"] = True
        area.set_boot_state(st)
    finally:
        area.close()
    return 0


COMMANDS = [
    Command("shutdown", "Mark a clean shutdown (for the shutdown script).",
            [BOARD, ROOT, DEVICE_OR_KEEP], shutdown, fast=True),
]
