"""`crashkeep selftest`: a canary in the keep area; the next boot says whether RAM survived."""
import time

from crashkeep.commands.spec import BOARD, DEVICE_OR_KEEP, ROOT, Command
from crashkeep.errors import DeviceError
from crashkeep.ops import bootstate


def selftest(opts):
    """Canary in RAM, and a note on flash (if there is one) saying a test is pending."""
    from binascii import crc32
    board, area = bootstate.area_for(opts)
    try:
        st = area.boot_state() or bootstate.next_state(
            None, bootstate.CLEAN, bootstate.read_boot_id(opts.root), time.time())
        # boot id + time, not os.urandom: getrandom() blocks until the kernel's
        # entropy is ready, which early in boot on a quiet board can take seconds
        seed = ("%s %r" % (st.get("last_boot_id"), time.time())).encode()
        canary = (crc32(seed) | 1) & 0xFFFFFFFF
        st["canary"] = canary
        area.set_boot_state(st)
    finally:
        area.close()
    note = "no flash note"
    if board.get("flash.device") or board.get("flash.mountpoint"):
        from crashkeep.system import storage
        try:
            t = storage.open_target(board, opts.root)
            try:
                storage.write_durable(t.path, bootstate.SELFTEST_FILE, ("%08x\n" % canary).encode())
                note = "flash note in %s" % t.path
            finally:
                t.close()
        except DeviceError as e:
            note = "no flash note (%s)" % e
    print("crashkeep: selftest canary %08x written; reboot (warm) and run `crashkeep boot` "
          "to see whether RAM survives (%s)" % (canary, note))
    return 0


COMMANDS = [
    Command("selftest", "Write a canary that the next boot checks: does RAM survive reset?",
            [BOARD, ROOT, DEVICE_OR_KEEP], selftest, fast=True),
]
