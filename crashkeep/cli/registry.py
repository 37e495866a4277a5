"""Which module defines each top-level command word.

Importing this module costs nothing: a command module is imported only when
its command runs (or when the typer app is built). A command declared with
fast=True (what init scripts, the core_pattern pipe and shell users run) is
dispatched from plain argv and never imports typer (40 ms, 10 MB; seconds
on a slow board).
"""
from crashkeep.compat import import_module

# top-level word -> operation module holding COMMANDS for it
MODULES = [
    ("board", "crashkeep.commands.board"),
    ("ramoops", "crashkeep.commands.ramoops"),
    ("save", "crashkeep.commands.save"),
    ("dump", "crashkeep.commands.dump"),
    ("list", "crashkeep.commands.list"),
    ("clear", "crashkeep.commands.clear"),
    ("copy", "crashkeep.commands.copy"),
    ("boot", "crashkeep.commands.boot"),
    ("show", "crashkeep.commands.show"),
    ("export", "crashkeep.commands.export"),
    ("shutdown", "crashkeep.commands.shutdown"),
    ("selftest", "crashkeep.commands.selftest"),
    ("core", "crashkeep.commands.core"),
]

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
        # a module that does not import is a bug to see, not a command to leave out
        out.extend(import_module(mod_name).COMMANDS)
    return out


def subcommands(cmd):
    """The commands one word below cmd (`core` -> core handle, install, ...)."""
    mod = import_module(module_for(cmd.path[0]))
    n = len(cmd.path)
    return [c for c in mod.COMMANDS if len(c.path) == n + 1 and c.path[:n] == cmd.path]
