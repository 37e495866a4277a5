"""`crashkeep ramoops`: read records from a raw ramoops region."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("ramoops extract", "Extract records from a raw region into a directory.", [Param("source", positional=True, required=True)], not_yet),
    Command("ramoops list", "List every zone of a raw region.", [Param("source", positional=True, required=True)], not_yet),
]
