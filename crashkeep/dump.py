"""`crashkeep dump` and `crashkeep list`: show phram records."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("dump", "Print a phram record.", [Param("name", positional=True)], not_yet, fast=True),
    Command("list", "List phram records and salvaged bundles.", [], not_yet, fast=True),
]
