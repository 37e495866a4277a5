"""Which module defines each top-level command, and which commands stay off typer.

Importing this module costs nothing: the operation modules are imported only
when their command runs (or when the typer app is built).
"""
from crashkeep.compat import import_module

# top-level word -> operation module holding COMMANDS for it
MODULES = [
    ("board", "crashkeep.commands.board"),
    ("ramoops", "crashkeep.commands.ramoops"),
    ("save", "crashkeep.commands.save"),
    ("dump", "crashkeep.commands.dump"),
    ("list", "crashkeep.commands.dump"),
    ("clear", "crashkeep.commands.clear"),
    ("copy", "crashkeep.commands.copy"),
    ("boot", "crashkeep.commands.boot"),
    ("show", "crashkeep.commands.show"),
    ("shutdown", "crashkeep.ops.bootstate"),
    ("selftest", "crashkeep.ops.bootstate"),
    ("core", "crashkeep.commands.core"),
]

# Init scripts, the kernel's core_pattern pipe and shell users run these: they
# dispatch from plain argv and never import typer (40 ms, 10 MB; seconds on a slow board).
FAST = ("boot", "core", "save", "dump", "clear", "copy", "list", "show", "shutdown", "selftest")

GROUP_HELP = {
    "board": "Board config: check it, show the layout, print cmdline/DT/insmod lines.",
    "ramoops": "Read ramoops records from a raw region (image, MTD, /dev/mem).",
    "core": "Core-dump handler: keep a crashed process's backtrace in phram.",
}


def module_for(word):
    for w, mod in MODULES:
        if w == word:
            return mod
    return None


def find(argv):
    """(Command, rest of argv) for argv after the program name, or (None, argv)."""
    if not argv:
        return None, argv
    mod_name = module_for(argv[0])
    if mod_name is None:
        return None, argv
    best = None
    for cmd in import_module(mod_name).COMMANDS:
        n = len(cmd.path)
        if tuple(argv[:n]) == cmd.path and (best is None or n > len(best.path)):
            best = cmd
    if best is None:
        return None, argv
    return best, argv[len(best.path):]


def all_commands():
    seen = []
    out = []
    for _, mod_name in MODULES:
        if mod_name in seen:
            continue
        seen.append(mod_name)
        try:
            mod = import_module(mod_name)
        except ImportError:
            continue
        out.extend(mod.COMMANDS)
    return out
