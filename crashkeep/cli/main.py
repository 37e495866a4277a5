"""Program entry: plain-argv dispatch for the fast commands, typer for the rest."""
import sys

from crashkeep import __version__
from crashkeep.cli.run import run_command, say_error, sanitize_stdio, quiet_broken_pipe, _is_epipe


def fast_main(argv):
    """Run a fast command from argv without typer; None if argv is not one."""
    from crashkeep.cli import registry
    from crashkeep.commands.spec import parse_argv, help_text, UsageError
    cmd, rest = registry.find(argv)
    if cmd is None or not cmd.fast:
        return None
    try:
        raw = parse_argv(cmd, rest)
    except UsageError as e:
        say_error("%s (try 'crashkeep %s --help')" % (e, cmd.name))
        return e.exit_code
    if raw is None:
        return _print(help_text(cmd, registry.subcommands(cmd)))
    return run_command(cmd, raw)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        return _print("crashkeep %s\n" % __version__)
    rc = fast_main(argv)
    if rc is not None:
        return rc
    from crashkeep.cli.app import run_typer
    return run_typer(argv)


def _print(text):
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as e:
        if _is_epipe(e):
            return quiet_broken_pipe()
        raise
    return 0


def console_main():
    sanitize_stdio()
    sys.exit(main())
