"""One exception root; the CLI edge turns these into one line and an exit code.

On CPython the subclasses also inherit the builtin that fits (FormatError is a
ValueError); MicroPython cannot mix two builtin exception bases, so there they
derive from CrashkeepError alone. Code catches the crashkeep names.
"""
import sys



class CrashkeepError(Exception):
    exit_code = 1


if sys.implementation.name == "micropython":
    _Value = CrashkeepError
else:
    class _Value(CrashkeepError, ValueError):
        pass


class FormatError(_Value):
    """Bytes that do not follow their format (corrupt memory, truncated file)."""
    exit_code = 3


class ConfigError(_Value):
    """A board config or command line that cannot be used."""
    exit_code = 2


class DeviceError(CrashkeepError):
    """A device or file that is missing, read-only, too small or failing."""
    exit_code = 4


class NoSpaceError(DeviceError):
    """The target (phram keep area or flash) has no room left."""
    exit_code = 5
