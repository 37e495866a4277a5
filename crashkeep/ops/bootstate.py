"""Reboot reason and counters kept in the keep area's boot-state record.

The keep area (phram) is RAM: if its boot-state record is intact at boot, RAM
survived the reset (warm boot); if it is gone, the board lost power (or never
ran crashkeep). With the pstore records and the clean-shutdown marker that
`crashkeep shutdown` sets, this gives the previous boot's end:

| evidence                                         | reason      |
|--------------------------------------------------|-------------|
| a new pstore dmesg record "Panic#N"              | panic       |
| a new dmesg record "Oops#N" (no panic)           | oops        |
| no boot-state record (RAM lost)                  | power-loss  |
| clean-shutdown marker set                        | clean       |
| none of these: watchdog or another silent reset  | reset       |

"New" means written after the previous boot's salvage started (record time >=
last_boot_time): a record left in RAM by a failed salvage was counted then.
`crashkeep selftest` puts a canary in the record; the next boot reports that
RAM survived (canary intact) or did not (canary gone; a note on flash says a
selftest was pending).
"""
from crashkeep.errors import DeviceError

PANIC = "panic"
OOPS = "oops"
POWER_LOSS = "power-loss"
CLEAN = "clean"
RESET = "reset"
REASONS = (PANIC, OOPS, RESET, CLEAN, POWER_LOSS)
SELFTEST_FILE = "selftest-pending"


def is_new(record_time, prev):
    """Was a record of this wall time written after the previous salvage began?"""
    if not prev or not record_time or not prev.get("last_boot_time"):
        return True
    # a clock without RTC may run from 1970: such times say nothing
    if record_time < 1000000000:
        return True
    return record_time >= prev["last_boot_time"]


def classify(prev, dmesg_reasons):
    """Reason the previous boot ended. prev: boot state or None; dmesg_reasons:
    the Why word ("Panic", "Oops", ...) of each NEW dmesg record."""
    if "Panic" in dmesg_reasons:
        return PANIC
    if "Oops" in dmesg_reasons:
        return OOPS
    if prev is None:
        return POWER_LOSS
    if prev.get("clean_shutdown"):
        return CLEAN
    return RESET


def next_state(prev, reason, boot_id, now):
    """The boot state this boot writes: counters advanced, markers cleared."""
    p = prev or {}
    return {
        "boot_count": int(p.get("boot_count", 0)) + 1,
        "panic_count": int(p.get("panic_count", 0)) + 1 if reason == PANIC else 0,
        "clean_shutdown": False,
        "canary": 0,
        "last_boot_id": boot_id,
        "last_boot_time": int(now),
    }


def selftest_result(prev, pending_on_flash):
    """'kept', 'lost' or None (no selftest pending)."""
    if prev is not None and prev.get("canary"):
        return "kept"
    if pending_on_flash:
        return "lost"
    return None


def reason_from_record(data):
    """'Panic', 'Oops', ... from a dmesg record's first line 'Panic#2 Part1'."""
    head = bytes(data[:64])
    if head.startswith(b"===="):
        nl = head.find(b"\n")
        head = head[nl + 1:] if nl >= 0 else b""
    word = head.split(b"#", 1)[0]
    if word and len(word) < 16 and word.isalpha():
        return word.decode()
    return None


def read_boot_id(root="/"):
    from crashkeep.compat import path_join, read_text
    try:
        return read_text(path_join(root, "proc/sys/kernel/random/boot_id")).strip()
    except OSError:
        return ""


def open_keep_area(board, root="/", override=None):
    """The keep area: --device/--keep, else $CRASHKEEP_DEVICE, else the board's
    phram (found in <root>/proc/mtd, opened as <root>/dev/mtdN); or DeviceError."""
    from crashkeep.system import keeparea, locate, mtd
    from crashkeep.compat import path_join
    named = locate.named_device(override)
    if named:
        return keeparea.open_area(named)
    if not board.has_phram:
        raise DeviceError("%s: no phram keep area configured" % board.path)
    got = mtd.by_name(board.get("phram.name"), root)
    if got is None:
        raise DeviceError("Failed to find MTD device '%s' in '%s'"
                          % (board.get("phram.name"), path_join(root, "proc/mtd")))
    return keeparea.open_area(path_join(root, "dev/mtd%d" % got[0]))


def area_for(opts):
    from crashkeep.system import locate
    board = locate.find_board(opts.board)
    return board, open_keep_area(board, opts.root, opts.device)
