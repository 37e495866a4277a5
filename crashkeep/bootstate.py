"""Boot state in the keep area: clean-shutdown marker and the RAM self-test."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("shutdown", "Mark a clean shutdown (for the shutdown script).", [], not_yet, fast=True),
    Command("selftest", "Write a canary that the next boot checks.", [], not_yet, fast=True),
]
