# crashkeep init hook: source this from a board's BusyBox /init just before
# switch_root (after /proc, /sys and /dev are mounted):
#
#     . /etc/crashkeep/crashkeep-hook.sh
#
# It runs `crashkeep boot --board /etc/crashkeep/board.conf` (salvage the
# previous boot's panic and phram records to flash) and can never stop the
# boot: a missing binary, a crash, a non-zero exit or a hang all end here
# with the boot going on. Safe under `set -e` and `set -u`; it leaves no
# variables or functions behind and never reads the console.
#
# Knobs (environment, all optional):
#   CRASHKEEP_BIN            the executable (default /bin/crashkeep)
#   CRASHKEEP_BOARD          the board config (default /etc/crashkeep/board.conf)
#   CRASHKEEP_BOOT_TIMEOUT   seconds crashkeep gives itself (--timeout, default 8)
#   CRASHKEEP_HOOK_GRACE     extra seconds before it is killed (default 4)

crashkeep_hook_run() {
    crashkeep_hook_bin=${CRASHKEEP_BIN:-/bin/crashkeep}
    crashkeep_hook_board=${CRASHKEEP_BOARD:-/etc/crashkeep/board.conf}
    crashkeep_hook_soft=${CRASHKEEP_BOOT_TIMEOUT:-8}
    crashkeep_hook_grace=${CRASHKEEP_HOOK_GRACE:-4}
    # Validate before any arithmetic: a syntax error there would end the shell.
    case $crashkeep_hook_soft in ''|*[!0-9.]*|*.*.*) crashkeep_hook_soft=8 ;; esac
    case $crashkeep_hook_grace in ''|*[!0-9]*) crashkeep_hook_grace=4 ;; esac
    crashkeep_hook_hard=${crashkeep_hook_soft%%.*}
    crashkeep_hook_hard=$(( ${crashkeep_hook_hard:-0} + crashkeep_hook_grace + 1 ))
    if [ ! -x "$crashkeep_hook_bin" ]; then
        echo "crashkeep-hook: $crashkeep_hook_bin not found, skipping" >&2
        return 0
    fi
    # A hard limit even if crashkeep's own --timeout fails: SIGKILL from the
    # timeout applet (BusyBox >= 1.30 syntax, else the old -t form, else none).
    if timeout -s KILL 5 true >/dev/null 2>&1; then
        set -- timeout -s KILL "$crashkeep_hook_hard"
    elif timeout -t 5 -s KILL true >/dev/null 2>&1; then
        set -- timeout -t "$crashkeep_hook_hard" -s KILL
    else
        set --
    fi
    crashkeep_hook_rc=0
    "$@" "$crashkeep_hook_bin" boot --board "$crashkeep_hook_board" \
        --timeout "$crashkeep_hook_soft" </dev/null || crashkeep_hook_rc=$?
    if [ "$crashkeep_hook_rc" -ne 0 ]; then
        echo "crashkeep-hook: crashkeep boot exited with status $crashkeep_hook_rc, booting on" >&2
    fi
    return 0
}

crashkeep_hook_run || true
unset crashkeep_hook_bin crashkeep_hook_board crashkeep_hook_soft crashkeep_hook_grace \
    crashkeep_hook_hard crashkeep_hook_rc
unset -f crashkeep_hook_run
