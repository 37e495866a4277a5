"""Running a command, for both entries: convert the raw values, run it, and
turn every error into one line on stderr and an exit code. Also the stdio
policy both entries share: closed streams are sinks, a broken pipe is quiet."""
import sys

from crashkeep.errors import CrashkeepError


def say_error(msg):
    try:
        sys.stderr.write("crashkeep: %s\n" % msg)
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass    # stderr closed or a broken pipe: nowhere left to say it


class _Sink:
    """Stands in for a closed stdio stream: writes vanish, reads see end of file."""

    def write(self, data):
        return len(data)

    def flush(self):
        pass

    def read(self, n=-1):
        return b""

    def readinto(self, buf):
        return 0

    def isatty(self):
        return False

    def fileno(self):
        raise OSError(9, "Bad file descriptor")

    @property
    def buffer(self):
        return self


def sanitize_stdio():
    """Closed stdin/stdout/stderr (an initramfs without /dev/console, `cmd >&-`).

    Like BusyBox's bb_sanitize_stdio: fds 0-2 are filled with /dev/null so no
    file opened later (the keep area, a bundle) lands on fd 1 or 2 and gets a
    stray message; Python's None streams become sinks, so a message to a
    closed stream is dropped, never a traceback or an error of the job.
    """
    try:
        import posix
        for fd in (0, 1, 2):
            try:
                posix.fstat(fd)
            except OSError:
                try:
                    posix.open("/dev/null", posix.O_RDWR)   # the lowest free fd: this one
                except OSError:
                    break
    except ImportError:
        pass
    for name in ("stdin", "stdout", "stderr"):
        if getattr(sys, name, None) is None:
            setattr(sys, name, _Sink())


def quiet_broken_pipe():
    """A reader that went away (`crashkeep list | head -c1`): BusyBox's policy,
    quiet and exit 0. What is still buffered for stdout goes to /dev/null, so
    the interpreter's final flush does not print 'Exception ignored'."""
    try:
        import posix
        fd = posix.open("/dev/null", posix.O_WRONLY)
        posix.dup2(fd, sys.stdout.fileno())
        posix.close(fd)
    except (ImportError, OSError, AttributeError, ValueError):
        sys.stdout = _Sink()
    return 0


def _flush_stdout():
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError):
        pass


def run_command(cmd, raw):
    """Convert raw values, run the command, turn errors into one line + exit code."""
    from crashkeep.commands.spec import convert
    from crashkeep.compat import strerror
    try:
        opts = convert(cmd, raw)
        rc = cmd.run(opts)
        _flush_stdout()     # here, where a broken pipe is still ours to handle
        return 0 if rc is None else rc
    except CrashkeepError as e:
        if _is_epipe(e):
            return quiet_broken_pipe()
        say_error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        say_error("interrupted")
        return 130
    except OSError as e:
        if _is_epipe(e):   # `crashkeep dump | head`: not an error
            return quiet_broken_pipe()
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


def _is_epipe(e):
    from crashkeep.compat import errno_of
    while e is not None:
        if isinstance(e, OSError) and errno_of(e) == 32:     # EPIPE
            return True
        e = getattr(e, "__cause__", None)
    return False
