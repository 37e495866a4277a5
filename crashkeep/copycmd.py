"""`crashkeep copy`: dd-like byte-range copy with the block copier."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("copy", "Copy a byte range between files and devices.", [Param("src", positional=True, required=True), Param("dst", positional=True, required=True)], not_yet, fast=True),
]
