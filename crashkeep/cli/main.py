"""Program entry: plain-argv dispatch for the fast commands, typer for the rest."""
import sys

from crashkeep import __version__
from crashkeep.errors import CrashkeepError


def say_error(msg):
    sys.stderr.write("crashkeep: %s\n" % msg)


def run_command(cmd, raw):
    """Convert raw values, run the command, turn errors into one line + exit code."""
    from crashkeep.commands.spec import convert
    from crashkeep.compat import strerror, errno_of
    try:
        opts = convert(cmd, raw)
        rc = cmd.run(opts)
        return 0 if rc is None else rc
    except CrashkeepError as e:
        say_error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        say_error("interrupted")
        return 130
    except OSError as e:
        import errno
        if errno_of(e) == errno.EPIPE:   # `crashkeep dump | head`: not an error
            return 0
        fn = getattr(e, "filename", None)
        say_error("Failed: %s%s" % (strerror(e), " '%s'" % fn if fn else ""))
        return 1
    except Exception as e:  # the last guard: no traceback on a serial console
        from crashkeep.compat import getenv
        if getenv("CRASHKEEP_DEBUG"):
            raise
        say_error("internal error: %s: %s (CRASHKEEP_DEBUG=1 shows more)"
                  % (type(e).__name__, e))
        return 70


def fast_main(argv):
    """Run a FAST command from argv without typer; None if argv is not one."""
    from crashkeep.cli import registry
    if not argv or argv[0] not in registry.FAST:
        return None
    from crashkeep.commands.spec import parse_argv, help_text, UsageError
    try:
        cmd, rest = registry.find(argv)
    except CrashkeepError as e:
        say_error(str(e))
        return e.exit_code
    if cmd is None:
        return None
    try:
        raw = parse_argv(cmd, rest)
    except UsageError as e:
        say_error(str(e))
        say_error("Try 'crashkeep %s --help'." % cmd.name)
        return e.exit_code
    if raw is None:
        sys.stdout.write(help_text(cmd))
        return 0
    return run_command(cmd, raw)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        sys.stdout.write("crashkeep %s\n" % __version__)
        return 0
    rc = fast_main(argv)
    if rc is not None:
        return rc
    from crashkeep.cli.app import run_typer
    return run_typer(argv)


def console_main():
    sys.exit(main())
