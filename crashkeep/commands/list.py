"""`crashkeep list`: the kept evidence, one section per kind.

SECTIONS names the function of each, imported only when `list` runs; another
module adds its own by appending ("crashkeep.module", "function") here. A
section function takes (opts, board) and returns an ops.sections.Section, or
None when it has nothing to say. `board` is the loaded board config
(crashkeep.system.locate: --board, $CRASHKEEP_BOARD, else
/etc/crashkeep/board.conf if it exists). Sections are skipped when there is no
board config, except those listed with a third element False (needs no board:
the keep area also works from --device alone).
"""
import sys

from crashkeep.commands.spec import BOARD, DEVICE, Command, Param
from crashkeep.errors import CrashkeepError
from crashkeep.ops.sections import Section, when

SECTIONS = [("crashkeep.commands.list", "keep_section", False), ("crashkeep.commands.show", "bundles_section")]


def keep_section(opts, board=None):
    from crashkeep.system import keeparea, locate
    if board is not None:
        area = keeparea.open_area(locate.device(board, opts.device), write=False, board=board)
    else:
        area, _board = keeparea.open_configured(opts.board, opts.device, write=False)
    try:
        recs = area.list()
    finally:
        area.close()
    rows = []
    for r in recs:
        rows.append([r.name, str(r.seq), str(r.length), str(r.orig_size), when(r.wall_time),
                     "%.1f" % r.uptime, r.boot_id[:8] or "-", r.source or "-"])
    return Section("records", "phram records (%s)" % area.path,
                   ["NAME", "SEQ", "BYTES", "OF", "SAVED", "UPTIME", "BOOT", "SOURCE"], rows,
                   [r.as_dict() for r in recs])


def _table(out, section):
    out.write(section.title + ":\n")
    if not section.rows:
        out.write("  (none)\n")
        return
    widths = [len(c) for c in section.columns]
    for row in section.rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [section.columns] + section.rows:
        out.write("  " + "  ".join(c + " " * (widths[i] - len(c)) for i, c in
                                   enumerate(row)).rstrip() + "\n")


def run_list(opts):
    from crashkeep.compat import import_module
    out = sys.stdout
    result = {}
    rc = 0
    first = True
    from crashkeep.system import locate
    board = locate.find_board(opts.board, required=False)
    for entry in SECTIONS:
        mod_name, fn_name = entry[0], entry[1]
        if board is None and (len(entry) < 3 or entry[2]):
            continue
        try:
            sec = getattr(import_module(mod_name), fn_name)(opts, board)
        except CrashkeepError as e:
            # one missing source (no phram loaded) must not hide the others
            sys.stderr.write("crashkeep: %s\n" % e)
            rc = e.exit_code
            continue
        if sec is None:
            continue
        if opts.json:
            result[sec.key] = sec.items
        else:
            if not first:
                out.write("\n")
            _table(out, sec)
            first = False
    if opts.json:
        import json
        out.write(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return rc


COMMANDS = [
    Command("list", "List phram records and salvaged bundles.", [
        Param("json", "flag", False, help="as JSON"),
        BOARD, DEVICE,
    ], run_list, fast=True),
]
