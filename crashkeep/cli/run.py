"""Running a command, for both entries: convert the raw values, run it, and
turn every error into one line on stderr and an exit code."""
import sys

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
