"""The typer app, generated from the same Command objects the fast entry uses."""
import inspect
from typing import List, Optional

import click
import typer

from crashkeep import __version__
from crashkeep.cli import registry
from crashkeep.cli.run import run_command, say_error

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 78}


def _typer_param(p):
    if p.kind == "flag":
        ann, default = bool, typer.Option(False, p.flag, *(["-" + p.short] if p.short else []),
                                          help=p.help)
    elif p.positional:
        ann = List[str] if p.multiple else (str if p.required else Optional[str])
        default = typer.Argument(... if p.required else None, metavar=p.metavar,
                                 help=p.help, show_default=False)
    else:
        ann = List[str] if p.multiple else Optional[str]
        names = [p.flag] + list(p.aliases) + (["-" + p.short] if p.short else [])
        d = None if p.default is None else str(p.default)
        default = typer.Option(None if p.multiple else d, *names, help=p.help,
                               metavar=p.metavar, show_default=d is not None)
    return inspect.Parameter(p.dest, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=ann)


def _make(cmd):
    def handler(**kw):
        raw = {}
        for p in cmd.params:
            v = kw.get(p.dest)
            if p.kind == "flag":
                raw[p.dest] = True if v else None
            else:
                raw[p.dest] = v
        rc = run_command(cmd, raw)
        if rc:
            raise typer.Exit(rc)

    params = [_typer_param(p) for p in cmd.params]
    handler.__signature__ = inspect.Signature(params)
    handler.__annotations__ = {p.name: p.annotation for p in params}
    handler.__name__ = cmd.path[-1]
    handler.__doc__ = cmd.help
    return handler


def _version(value):
    if value:
        typer.echo("crashkeep %s" % __version__)
        raise typer.Exit()


def build_app():
    app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings=CONTEXT,
                      help="Keep crash evidence across reboots: ramoops panic logs and phram "
                           "records, salvaged to flash at boot.")

    @app.callback()
    def main(version: bool = typer.Option(False, "--version", "-V", callback=_version,
                                          is_eager=True, help="Print the version and exit.")):
        pass

    groups = {}
    cmds = registry.all_commands()
    for cmd in cmds:
        words = cmd.path
        if any(c.path[:len(words)] == words and len(c.path) > len(words) for c in cmds):
            # a typer group takes no command of its own: bare `core -- ARGS`
            # (old core_patterns) is the fast entry's alone; `core handle` is both's
            continue
        parent = app
        for i, w in enumerate(words[:-1]):
            key = words[:i + 1]
            if key not in groups:
                sub = typer.Typer(no_args_is_help=True, context_settings=CONTEXT,
                                  help=registry.GROUP_HELP.get(w, ""))
                parent.add_typer(sub, name=w)
                groups[key] = sub
            parent = groups[key]
        parent.command(words[-1], help=cmd.help, epilog=cmd.epilog or None,
                       context_settings=CONTEXT)(_make(cmd))
    return app


def run_typer(argv):
    app = build_app()
    try:
        rv = app(args=argv, prog_name="crashkeep", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        # one line, like the fast entry: a serial console has no room for click's four
        words = e.ctx.command_path.split()[1:] if e.ctx is not None else []
        where = " ".join(words)
        say_error("%s%s (try 'crashkeep %s--help')"
                  % (where + ": " if where else "", e.format_message().replace("\n", " "),
                     where + " " if where else ""))
        return e.exit_code
    except click.ClickException as e:
        say_error(e.format_message().replace("\n", " "))
        return e.exit_code
    except click.exceptions.Abort:
        return 130
    return rv if isinstance(rv, int) else 0
