"""Command definitions, shared by the plain-argv entry and the typer app.

Each operation module declares its commands once, as `COMMANDS = [Command(...)]`.
The fast entry (init scripts, the core handler) parses argv with `parse_argv`;
the typer app builds its commands from the same objects. Both hand raw strings
to `convert`, so an option means the same thing whichever way it came in.
"""
from crashkeep.errors import ConfigError

# A byte count or offset goes into lseek/pread/ftruncate as an off_t: above
# this the kernel (and CPython) cannot take it, so it is a usage error here,
# before any file is opened or cut.
OFF_MAX = (1 << 63) - 1
FLOAT_MAX = 86400.0 * 366       # seconds: a year; signal.alarm and sleep take it


class UsageError(ConfigError):
    exit_code = 2


class Param:
    """One option or positional argument.

    kind: "str", "size" (0x.., K/M suffixes), "float", "flag".
    low/high: the accepted range of a "size" or "float" (NaN and infinities
    never pass: a NaN deadline is no deadline).
    """

    def __init__(self, name, kind="str", default=None, help="", positional=False,
                 required=False, multiple=False, short=None, metavar=None, aliases=(),
                 low=0, high=None):
        self.name = name
        self.aliases = tuple("--" + a for a in aliases)   # other long names, same dest
        self.kind = kind
        self.default = default
        self.help = help
        self.positional = positional
        self.required = required
        self.multiple = multiple
        self.short = short
        self.metavar = metavar or (name.upper() if positional else
                                   {"size": "N", "float": "S", "flag": ""}.get(kind, "TEXT"))
        self.low = low
        if high is None:
            high = OFF_MAX if kind == "size" else FLOAT_MAX
        self.high = high

    @property
    def dest(self):
        return self.name.replace("-", "_")

    @property
    def flag(self):
        return "--" + self.name


class Command:
    def __init__(self, path, help, params, run, fast=False, epilog=""):
        self.path = tuple(path.split())   # "board show" -> ("board", "show")
        self.help = help
        self.params = params
        self.run = run                    # function(opts) -> exit code
        self.fast = fast
        self.epilog = epilog

    @property
    def name(self):
        return " ".join(self.path)


class Opts:
    """Converted option values as attributes (opts.max_bytes)."""

    def __init__(self, values):
        for k in values:
            setattr(self, k, values[k])

    def __repr__(self):
        return "Opts(%r)" % (self.__dict__,)


def convert(cmd, raw):
    """raw: dest -> string / list of strings / bool / None. Returns Opts."""
    from crashkeep.formats.boardconf import parse_number
    out = {}
    for p in cmd.params:
        v = raw.get(p.dest)
        if v is None or (p.multiple and not v):
            if p.required:
                raise UsageError("%s: missing %s" % (cmd.name, p.metavar if p.positional else p.flag))
            out[p.dest] = [] if p.multiple else p.default
            continue
        values = v if p.multiple else [v]
        conv = []
        for s in values:
            if p.kind == "flag":
                conv.append(bool(s))
            elif p.kind == "size":
                try:
                    n = parse_number(s)
                except ValueError:
                    raise UsageError("%s: %s needs a number (0x.., K, M), not %r"
                                     % (cmd.name, p.metavar if p.positional else p.flag, s))
                conv.append(_in_range(cmd, p, n, s))
            elif p.kind == "float":
                try:
                    f = float(s)
                except ValueError:
                    raise UsageError("%s: %s needs a number, not %r" % (cmd.name, p.flag, s))
                conv.append(_in_range(cmd, p, f, s))
            else:
                conv.append(s)
        out[p.dest] = conv if p.multiple else conv[0]
    return Opts(out)


def _in_range(cmd, p, v, text):
    # written so that NaN (every comparison false) fails too
    if not (p.low <= v <= p.high):
        name = p.metavar if p.positional else p.flag
        if p.kind == "size":
            rng = "0x%x to 0x%x" % (p.low, p.high)
        else:
            rng = "%g to %g" % (p.low, p.high)
        raise UsageError("%s: %s must be from %s, not %r" % (cmd.name, name, rng, text))
    return v


def parse_argv(cmd, argv):
    """Parse argv (after the command words) into raw values; None means --help."""
    raw = {}
    by_flag = {}
    for p in cmd.params:
        if not p.positional:
            by_flag[p.flag] = p
            for a in p.aliases:
                by_flag[a] = p
            if p.short:
                by_flag["-" + p.short] = p
    positionals = [p for p in cmd.params if p.positional]
    free = []
    i = 0
    only_args = False
    while i < len(argv):
        a = argv[i]
        i += 1
        if only_args or a == "-" or not a.startswith("-"):
            free.append(a)
            continue
        if a == "--":
            only_args = True
            continue
        if a in ("-h", "--help"):
            return None
        value = None
        if a.startswith("--") and "=" in a:
            a, value = a.split("=", 1)
        p = by_flag.get(a)
        if p is None:
            raise UsageError("%s: no such option: %s" % (cmd.name, a))
        if p.kind == "flag":
            if value is not None:
                raise UsageError("%s: %s takes no value" % (cmd.name, a))
            raw[p.dest] = True
            continue
        if value is None:
            if i >= len(argv):
                raise UsageError("%s: %s needs a value" % (cmd.name, a))
            value = argv[i]
            i += 1
        if p.multiple:
            raw.setdefault(p.dest, []).append(value)
        else:
            raw[p.dest] = value
    for p in positionals:
        if p.multiple:
            raw[p.dest] = free
            free = []
        elif free:
            raw[p.dest] = free.pop(0)
    if free:
        raise UsageError("%s: unexpected argument %r" % (cmd.name, free[0]))
    return raw


def help_text(cmd, subcommands=(), prog="crashkeep"):
    """The --help of the plain-argv entry; `subcommands` are listed like typer lists a group's."""
    usage = [prog, cmd.name, "[OPTIONS]"]
    for p in cmd.params:
        if p.positional:
            # as typer writes them: ARGS... when required, [ARGS] when not
            usage.append((p.metavar + ("..." if p.multiple else "")) if p.required
                         else "[%s]" % p.metavar)
    lines = ["Usage: " + " ".join(usage), "", "  " + cmd.help, ""]
    rows = []
    for p in cmd.params:
        if p.positional:
            continue
        left = "/".join((p.flag,) + p.aliases) + ("/-" + p.short if p.short else "") + \
            (" " + p.metavar if p.metavar else "")
        right = p.help
        if p.default not in (None, False, ""):
            right += " [default: %s]" % (p.default,)
        rows.append((left, right))
    rows.append(("--help", "Show this message and exit."))
    width = max(len(r[0]) for r in rows) + 2
    lines.append("Options:")
    for left, right in rows:
        lines.append("  " + left + " " * (width - len(left)) + right)
    if subcommands:
        width = max(len(c.path[-1]) for c in subcommands) + 2
        lines += ["", "Commands:"]
        for c in subcommands:
            lines.append("  " + c.path[-1] + " " * (width - len(c.path[-1])) + c.help)
    if cmd.epilog:
        lines += ["", cmd.epilog]
    return "\n".join(lines) + "\n"


# Options several commands share. Where they are found when not given (the
# environment, /etc/crashkeep/board.conf, the board's phram) is crashkeep.system.locate.
BOARD = Param("board", help="board config [default: $CRASHKEEP_BOARD, else "
                            "/etc/crashkeep/board.conf]", metavar="CONFIG")
DEVICE = Param("device", help="keep-area device (/dev/mtdN, mtd:NAME, file) [default: "
                              "$CRASHKEEP_DEVICE, else the board's phram]", metavar="DEV")
# boot, shutdown and selftest called it --keep first; init scripts may still say so
DEVICE_OR_KEEP = Param("device", help=DEVICE.help, metavar="DEV", aliases=("keep",))
ROOT = Param("root", default="/", help="Root of /proc, /sys, /dev (for tests).")
