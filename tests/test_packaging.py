"""The OpenWrt and Buildroot packages and the BusyBox init scripts (issue 15).

What is real: shellcheck on every shipped script; GNU make parsing the real
package Makefiles; their install recipes copying the real files from this
checkout into a staged root file system; BusyBox (busybox-static) running the
installed scripts in a chroot of that root, the way init, /etc/preinit and
/etc/rc.common call them.

What is stood in for, and why: OpenWrt's and Buildroot's build systems cannot
run here (each needs its own tree, toolchain and hours), so their include
files (rules.mk, package.mk, kernel.mk; pkg-generic's generic-package) are
replaced by small make files that define the variables and the
install/eval entry points the real ones provide, and the compile step by a
stand-in executable. /etc/preinit's boot_hook_add/boot_run_hook, /etc/rc.common
with procd.sh's procd_* functions and uci are stood in by shell functions that
record what the scripts ask for, because procd and ubus do not exist off
OpenWrt. crashkeep itself is a recording stand-in here (its own behaviour is
tested elsewhere), so each test can make it fail or hang.
"""
import os
import re
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENWRT = os.path.join(ROOT, "build", "openwrt", "crashkeep")
BUILDROOT = os.path.join(ROOT, "build", "buildroot")
BUSYBOX = "/bin/busybox"

SHIPPED_SCRIPTS = [
    "initramfs/crashkeep-hook.sh",
    "initscripts/S01crashkeep",
    "initscripts/S99crashkeep-export",
    "build/openwrt/crashkeep/files/crashkeep.preinit",
    "build/openwrt/crashkeep/files/crashkeep.init",
]


def _busybox_static():
    if not os.path.exists(BUSYBOX):
        pytest.fail("%s missing: tests/setup.sh installs busybox-static" % BUSYBOX)
    out = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True).stdout
    if "statically linked" not in out and "static-pie" not in out:
        pytest.fail("%s is not static (%s): tests/setup.sh installs busybox-static"
                    % (BUSYBOX, out.strip()))
    return BUSYBOX


# ---------------------------------------------------------------- shellcheck

def test_every_shipped_script_is_listed():
    """A new script under the shipped directories must be added to SHIPPED_SCRIPTS."""
    found = set()
    for d in ("initramfs", "initscripts", "build/openwrt/crashkeep/files"):
        for name in os.listdir(os.path.join(ROOT, d)):
            path = os.path.join(ROOT, d, name)
            with open(path, "rb") as f:
                if f.read(2) == b"#!" or name.endswith(".sh"):
                    found.add("%s/%s" % (d, name))
    assert found == set(SHIPPED_SCRIPTS)


@pytest.mark.parametrize("script", SHIPPED_SCRIPTS)
def test_shellcheck_clean(script):
    sc = shutil.which("shellcheck")
    if sc is None:
        pytest.fail("shellcheck missing: tests/setup.sh installs it")
    # -x follows the `. hook` lines (source= directives are relative to ROOT)
    r = subprocess.run([sc, "-x", "-s", "sh", "-S", "style", script], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_shellcheck_catches_a_planted_defect(tmp_path):
    """The check above can fail: an unquoted "$@" in a copy is reported."""
    bad = tmp_path / "S01bad"
    with open(os.path.join(ROOT, "initscripts", "S01crashkeep")) as f:
        text = f.read()
    assert '    else\n        "$@"\n' in text
    bad.write_text(text.replace('    else\n        "$@"\n', '    else\n        $@\n', 1))
    r = subprocess.run(["shellcheck", "-x", "-s", "sh", "-S", "style", str(bad)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "SC2068" in r.stdout


# ---------------------------------------------------------------- Makefile variables

def _make_vars(text):
    """{NAME: value} of `NAME:=v`, `NAME = v`, `NAME ?= v` lines, and the define blocks."""
    out = {}
    for m in re.finditer(r"^([A-Za-z0-9_/.$()-]+)\s*(:=|\?=|=|\+=)\s*(.*)$", text, re.M):
        out[m.group(1)] = m.group(3).strip()
    defines = {m.group(1): m.group(2) for m in
               re.finditer(r"^define (\S+)\n(.*?)^endef", text, re.M | re.S)}
    return out, defines


def test_openwrt_makefile_has_what_the_build_system_requires():
    with open(os.path.join(OPENWRT, "Makefile")) as f:
        text = f.read()
    v, d = _make_vars(text)
    # package.mk needs these before it is included; rules.mk comes first
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines[0] == "include $(TOPDIR)/rules.mk"
    for key in ("PKG_NAME", "PKG_VERSION", "PKG_RELEASE", "PKG_LICENSE", "PKG_MAINTAINER"):
        assert v.get(key), key
        assert text.index(key + ":=") < text.index("include $(INCLUDE_DIR)/package.mk"), key
    assert v["PKG_NAME"] == "crashkeep"
    pkg = d["Package/crashkeep"]
    for key in ("SECTION", "CATEGORY", "TITLE", "DEPENDS"):
        assert re.search(r"^\s+%s:=\S" % key, pkg, re.M), key
    deps = re.search(r"DEPENDS:=(.*)", pkg).group(1).split()
    assert "+kmod-ramoops" in deps and "+kmod-mtd-phram" in deps
    assert "KernelPackage/mtd-phram" in d
    for key in ("Package/crashkeep/description", "Package/crashkeep/install",
                "Package/crashkeep/conffiles", "Package/crashkeep/config", "Build/Compile"):
        assert key in d, key
    assert lines[-1] == "$(eval $(call BuildPackage,crashkeep))"
    assert "$(eval $(call KernelPackage,mtd-phram))" in lines
    # every file in files/ is installed, and nothing missing is
    inst = d["Package/crashkeep/install"]
    used = set(re.findall(r"\./files/(\S+)", inst))
    assert used == set(os.listdir(os.path.join(OPENWRT, "files")))
    assert "$(1)/lib/preinit/79_crashkeep" in inst
    assert re.search(r"\$\(1\)/etc/sysctl\.d/(\d\d)-crashkeep\.conf", inst)
    assert "$(1)/etc/init.d/crashkeep" in inst


def test_openwrt_sysctl_file_sorts_after_base_files_default():
    with open(os.path.join(OPENWRT, "Makefile")) as f:
        name = re.search(r"/etc/sysctl\.d/(\S+\.conf)", f.read()).group(1)
    # /etc/init.d/sysctl applies /etc/sysctl.d/*.conf in glob (C collation) order
    assert sorted(["10-default.conf", name]) == ["10-default.conf", name]
    with open(os.path.join(OPENWRT, "files", "crashkeep.sysctl")) as f:
        conf = dict(l.split("=", 1) for l in f.read().splitlines()
                    if l and not l.startswith("#"))
    assert conf["kernel.core_pattern"].startswith("|/usr/bin/crashkeep core handle -- %P %i %s %t %e %u")
    assert len(conf["kernel.core_pattern"]) < 128      # CORENAME_MAX_SIZE
    assert int(conf["kernel.core_pipe_limit"]) > 0


def test_buildroot_package_has_what_the_build_system_requires():
    with open(os.path.join(BUILDROOT, "crashkeep", "crashkeep.mk")) as f:
        mk = f.read()
    v, d = _make_vars(mk)
    for key in ("CRASHKEEP_VERSION", "CRASHKEEP_SITE", "CRASHKEEP_LICENSE"):
        assert v.get(key), key
    assert v["CRASHKEEP_SITE_METHOD"] == "local"
    for key in ("CRASHKEEP_BUILD_CMDS", "CRASHKEEP_INSTALL_TARGET_CMDS",
                "CRASHKEEP_INSTALL_INIT_SYSV"):
        assert key in d, key
    assert "$(TARGET_DIR)/etc/init.d/S01crashkeep" in d["CRASHKEEP_INSTALL_INIT_SYSV"]
    assert mk.rstrip().splitlines()[-1] == "$(eval $(generic-package))"
    with open(os.path.join(BUILDROOT, "crashkeep", "Config.in")) as f:
        cfg = f.read()
    assert re.search(r"^config BR2_PACKAGE_CRASHKEEP\n\tbool ", cfg, re.M)
    assert re.search(r"^config BR2_PACKAGE_CRASHKEEP_BOARD\n\tstring ", cfg, re.M)
    assert "BR2_PACKAGE_CRASHKEEP_BOARD" in mk
    # Kconfig help blocks are tab + two spaces, as utils/check-package wants
    for block in re.findall(r"\thelp\n((?:\t  .*\n|\n)+)", cfg):
        assert all(l == "" or l.startswith("\t  ") for l in block.splitlines())
    with open(os.path.join(BUILDROOT, "crashkeep", "crashkeep.hash")) as f:
        for line in f:
            assert line.startswith("#") or re.match(r"^(sha256|sha1|md5)  [0-9a-f]+  \S+$", line)
    with open(os.path.join(BUILDROOT, "external.desc")) as f:
        assert re.search(r"^name: CRASHKEEP$", f.read(), re.M)


# ---------------------------------------------------------------- install into a staged root

OPENWRT_STANDIN = r"""
# Stand-ins for OpenWrt's include/{rules,package,kernel}.mk: the variables and
# entry points the package Makefile uses, nothing else.
INCLUDE_DIR := $(TOPDIR)/include
INSTALL_DIR := install -d -m0755
INSTALL_BIN := install -m0755
INSTALL_DATA := install -m0644
INSTALL_CONF := install -m0600
qstrip = $(strip $(subst ",,$(1)))
ARCH ?= x86_64
LINUX_DIR := /nonexistent
"""

OPENWRT_PACKAGE_MK = r"""
PKG_BUILD_DIR := $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
define KernelPackage
kmod-$(1): ; @true
endef
define BuildPackage
install-$(1):
	$$(call Build/Prepare)
	$$(call Build/Compile)
	$$(call Package/$(1)/install,$(DESTDIR))
endef
"""

BUILDROOT_STANDIN = r"""
# Stand-in for Buildroot's package/pkg-generic.mk: $(@D) is the package's
# build directory, the commands run in Buildroot's order.
INSTALL := install
qstrip = $(strip $(subst ",,$(1)))
define generic-package
$(BUILD_DIR)/crashkeep/.stamp_installed:
	mkdir -p $$(@D)
	tar -C $$(CRASHKEEP_SITE) --exclude=./.git --exclude=./tests -cf - . | tar -C $$(@D) -xf -
	$$(CRASHKEEP_BUILD_CMDS)
	$$(CRASHKEEP_INSTALL_TARGET_CMDS)
	$$(CRASHKEEP_INSTALL_INIT_SYSV)
endef
"""


def _fake_crashkeep(log, body=""):
    """A stand-in crashkeep for BusyBox sh: logs its argv, then runs body."""
    return ("#!/bin/sh\necho \"$*\" >> %s\n%s\nexit 0\n" % (log, body)).encode()


FAKE_MAKE = """#!/bin/sh
# Stand-in for crashkeep's own build (make -C build TARGET=T): the binary is a
# recording stand-in too.
dir=; t=
while [ $# -gt 0 ]; do
    case $1 in -C) dir=$2; shift ;; TARGET=*) t=${1#TARGET=} ;; esac
    shift
done
[ -f "$dir/Makefile" ] && [ -n "$t" ] || { echo "fake make: bad call" >&2; exit 2; }
mkdir -p "$dir/out" && cp %s "$dir/out/crashkeep-$t"
"""


def _fake_make(tmp_path):
    standin = tmp_path / "crashkeep.standin"
    standin.write_bytes(_fake_crashkeep("/tmp/crashkeep.args"))
    fm = tmp_path / "fake-make"
    fm.write_text(FAKE_MAKE % standin)
    fm.chmod(0o755)
    return str(fm)


def _busybox_root(root):
    """busybox-static and its applet links under root (a chroot BusyBox init would see)."""
    bb = _busybox_static()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "tmp", "var/run", "var/log", "proc", "dev",
              "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(bb, os.path.join(root, "bin", "busybox"))
    if not os.path.exists(os.path.join(root, "dev", "null")):
        os.mknod(os.path.join(root, "dev", "null"), 0o666 | 0o020000, os.makedev(1, 3))
    applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True).stdout.split()
    for a in applets:
        p = os.path.join(root, a)
        if not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink("/bin/busybox", p)


def _chroot(root, script, timeout=60):
    if os.geteuid() != 0:
        pytest.fail("running the installed scripts under BusyBox needs chroot (root)")
    t = time.monotonic()
    r = subprocess.run(["chroot", root, "/bin/sh", "-c", script], capture_output=True,
                       text=True, timeout=timeout, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return r, time.monotonic() - t


def _install_openwrt(tmp_path, arch="x86_64"):
    top = tmp_path / "openwrt"
    (top / "include").mkdir(parents=True)
    (top / "rules.mk").write_text(OPENWRT_STANDIN)
    (top / "include" / "package.mk").write_text(OPENWRT_PACKAGE_MK)
    (top / "include" / "kernel.mk").write_text("")
    dest = tmp_path / "root"
    dest.mkdir()
    r = subprocess.run(
        ["make", "-s", "-C", OPENWRT, "TOPDIR=%s" % top, "BUILD_DIR=%s" % (tmp_path / "b"),
         "DESTDIR=%s" % dest, "ARCH=%s" % arch, 'CONFIG_CRASHKEEP_BOARD="qemu-x86_64"',
         "MAKE=%s" % _fake_make(tmp_path), "install-crashkeep"],
        capture_output=True, text=True)
    return r, dest


def _install_buildroot(tmp_path):
    standin = tmp_path / "pkg-generic.mk"
    standin.write_text(BUILDROOT_STANDIN)
    driver = tmp_path / "driver.mk"
    driver.write_text("include %s\nCRASHKEEP_PKGDIR := %s/\ninclude %s/crashkeep.mk\n"
                      % (standin, os.path.join(BUILDROOT, "crashkeep"),
                         os.path.join(BUILDROOT, "crashkeep")))
    dest = tmp_path / "target"
    dest.mkdir()
    r = subprocess.run(
        ["make", "-s", "-f", str(driver), "BUILD_DIR=%s" % (tmp_path / "b"),
         "TARGET_DIR=%s" % dest, 'BR2_ARCH="x86_64"', 'BR2_PACKAGE_CRASHKEEP_BOARD="qemu-x86_64"',
         "MAKE=%s" % _fake_make(tmp_path),
         str(tmp_path / "b" / "crashkeep" / ".stamp_installed")],
        capture_output=True, text=True)
    return r, dest


def _mode(p):
    return os.stat(p).st_mode & 0o777


def test_openwrt_package_installs_the_files(tmp_path):
    r, dest = _install_openwrt(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    expect = {"usr/bin/crashkeep": 0o755, "etc/crashkeep/board.conf": 0o600,
              "etc/crashkeep/crashkeep-hook.sh": 0o644, "lib/preinit/79_crashkeep": 0o644,
              "etc/sysctl.d/90-crashkeep.conf": 0o600, "etc/init.d/crashkeep": 0o755}
    got = {}
    for d, _, files in os.walk(dest):
        for f in files:
            p = os.path.join(d, f)
            got[os.path.relpath(p, dest)] = _mode(p)
    assert got == expect
    with open(os.path.join(ROOT, "board-configs", "qemu-x86_64.conf"), "rb") as f:
        assert (dest / "etc/crashkeep/board.conf").read_bytes() == f.read()


def test_openwrt_package_refuses_an_unsupported_arch(tmp_path):
    """ARCH=mips (big-endian MIPS, e.g. ath79) has no crashkeep target: the install
    fails instead of packaging a wrong binary."""
    r, dest = _install_openwrt(tmp_path, arch="mips")
    assert r.returncode != 0
    assert not (dest / "usr/bin/crashkeep").exists()


def test_buildroot_package_installs_the_files(tmp_path):
    r, dest = _install_buildroot(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    for p, mode in {"usr/bin/crashkeep": 0o755, "etc/crashkeep/board.conf": 0o644,
                    "etc/crashkeep/crashkeep-hook.sh": 0o644,
                    "etc/init.d/S01crashkeep": 0o755,
                    "etc/init.d/S99crashkeep-export": 0o755}.items():
        assert _mode(dest / p) == mode, p
    with open(os.path.join(ROOT, "initscripts", "S01crashkeep"), "rb") as f:
        assert (dest / "etc/init.d/S01crashkeep").read_bytes() == f.read()


# ---------------------------------------------------------------- the scripts under BusyBox

def _args(root):
    p = os.path.join(root, "tmp", "crashkeep.args")
    return open(p).read().splitlines() if os.path.exists(p) else []


def _set_fake(root, body):
    p = os.path.join(root, "usr", "bin", "crashkeep")
    with open(p, "wb") as f:
        f.write(_fake_crashkeep("/tmp/crashkeep.args", body))
    os.chmod(p, 0o755)


@pytest.fixture
def br_root(tmp_path):
    r, dest = _install_buildroot(tmp_path)
    assert r.returncode == 0, r.stderr
    _busybox_root(str(dest))
    return str(dest)


def test_busybox_rcS_start_runs_boot_then_follows_the_log(br_root):
    _set_fake(br_root, 'case $1 in save) exec sleep 30 ;; esac')
    r, _ = _chroot(br_root, "/etc/init.d/S01crashkeep start; echo rc=$?; sleep 1; "
                            "cat /var/run/crashkeep-follow.pid; "
                            "/etc/init.d/S01crashkeep stop; echo rc=$?")
    assert "rc=0\n" in r.stdout and r.stdout.count("rc=0") == 2, r.stdout + r.stderr
    args = _args(br_root)
    assert args[0] == "boot --board /etc/crashkeep/board.conf --timeout 8"
    assert args[1] == "save --follow /var/log/messages --name messages " \
                      "--board /etc/crashkeep/board.conf"
    assert args[2] == "shutdown --board /etc/crashkeep/board.conf"
    assert not os.path.exists(os.path.join(br_root, "var/run/crashkeep-follow.pid"))


def test_busybox_rcS_goes_on_when_crashkeep_fails_hangs_or_is_missing(br_root):
    with open(_mkdir_file(br_root, "etc/default/crashkeep"), "w") as f:
        f.write("CRASHKEEP_LOG=\nCRASHKEEP_BOOT_TIMEOUT=1\nCRASHKEEP_HOOK_GRACE=1\n"
                "CRASHKEEP_SHUTDOWN_TIMEOUT=2\nCRASHKEEP_EXPORT_TIMEOUT=2\n")
    _set_fake(br_root, "exit 3")
    r, _ = _chroot(br_root, "for a in start stop export; do /etc/init.d/S01crashkeep $a; "
                            "echo $a=$?; done")
    assert "start=0\nstop=0\nexport=0\n" in r.stdout, r.stdout + r.stderr
    assert "status 3" in r.stderr
    _set_fake(br_root, "exec sleep 60")
    r, took = _chroot(br_root, "for a in start stop export; do /etc/init.d/S01crashkeep $a; "
                               "echo $a=$?; done")
    assert "start=0\nstop=0\nexport=0\n" in r.stdout, r.stdout + r.stderr
    assert took < 30          # 3 + 2 + 2 s of bounds, never the 60 s hang
    os.unlink(os.path.join(br_root, "usr/bin/crashkeep"))
    r, _ = _chroot(br_root, "/etc/init.d/S01crashkeep start; echo start=$?; "
                            "/etc/init.d/S99crashkeep-export start; echo export=$?")
    assert "start=0\nexport=0\n" in r.stdout and "not found" in r.stderr


def _mkdir_file(root, rel):
    os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
    return os.path.join(root, rel)


def test_busybox_export_script_runs_export_in_the_background(br_root):
    _set_fake(br_root, "sleep 5")
    r, took = _chroot(br_root, "/etc/init.d/S99crashkeep-export start; echo rc=$?")
    assert "rc=0" in r.stdout
    assert took < 4           # rcS went on while export still ran
    time.sleep(1)
    assert _args(br_root) == ["export --new --board /etc/crashkeep/board.conf"]


PREINIT_STANDIN = r"""
# Stand-in for /etc/preinit + /lib/functions/preinit.sh: hooks are function
# names kept per hook point and run in the order they were added, in the
# shell that sourced /lib/preinit/*.
boot_hook_add() { eval "hooks_$1=\"\${hooks_$1} $2\""; }
boot_run_hook() { for f in $(eval echo "\${hooks_$1}"); do $f; done; }
for pi in /lib/preinit/*; do . "$pi"; done
preinit_var=kept
boot_run_hook preinit_main
echo "preinit went on: $preinit_var"
"""


@pytest.fixture
def owrt_root(tmp_path):
    r, dest = _install_openwrt(tmp_path)
    assert r.returncode == 0, r.stderr
    _busybox_root(str(dest))
    return str(dest)


def test_openwrt_preinit_runs_boot_on_preinit_main(owrt_root):
    with open(os.path.join(owrt_root, "lib/preinit/80_mount_root"), "w") as f:
        f.write('do_mount_root() { echo mount_root >> /tmp/order; }\n'
                'boot_hook_add preinit_main do_mount_root\n')
    _set_fake(owrt_root, "echo crashkeep >> /tmp/order")
    r, _ = _chroot(owrt_root, PREINIT_STANDIN)
    assert "preinit went on: kept" in r.stdout, r.stdout + r.stderr
    assert _args(owrt_root) == ["boot --board /etc/crashkeep/board.conf --timeout 8"]
    # before the overlay is mounted
    assert open(os.path.join(owrt_root, "tmp/order")).read().split() == ["crashkeep",
                                                                         "mount_root"]
    _set_fake(owrt_root, "exit 9")
    r, _ = _chroot(owrt_root, PREINIT_STANDIN)
    assert "preinit went on: kept" in r.stdout and "status 9" in r.stderr


RC_COMMON_STANDIN = r"""#!/bin/sh
# Stand-in for /etc/rc.common + /lib/functions/procd.sh: sources the init
# script, records procd instances to /tmp/procd, dispatches the action.
initscript=$1; action=$2; shift 2
uci() { [ "$3" = system.@system[0].log_file ] && [ -f /tmp/uci_log_file ] && cat /tmp/uci_log_file; }
start_service() { :; }; stop_service() { :; }; service_triggers() { :; }
shutdown() { stop; }
procd_open_instance() { echo "instance $1" >> /tmp/procd; }
procd_set_param() { echo "  $*" >> /tmp/procd; }
procd_close_instance() { echo "end" >> /tmp/procd; }
procd_add_raw_trigger() { echo "trigger $*" >> /tmp/procd; }
procd_kill() { echo "kill $1" >> /tmp/procd; }
. "$initscript"
# procd calls service_triggers while it registers the service
start() { start_service "$@"; service_triggers; }
stop() { stop_service "$@"; procd_kill "$(basename "$initscript")"; }
reload() { reload_service "$@"; }
case " start stop reload shutdown $EXTRA_COMMANDS " in
  *" $action "*) ;; *) echo "unknown action $action" >&2; exit 1 ;;
esac
$action "$@"
"""


def test_openwrt_procd_script(owrt_root):
    with open(os.path.join(owrt_root, "etc/rc.common"), "w") as f:
        f.write(RC_COMMON_STANDIN)
    os.chmod(os.path.join(owrt_root, "etc/rc.common"), 0o755)
    _set_fake(owrt_root, "")
    r, _ = _chroot(owrt_root, "/etc/init.d/crashkeep start; echo rc=$?; sleep 1")
    assert "rc=0" in r.stdout, r.stdout + r.stderr
    procd = open(os.path.join(owrt_root, "tmp/procd")).read()
    assert "instance logfile\n  command /sbin/logread -f -F /tmp/crashkeep/messages" in procd
    assert ("instance follow\n  command /usr/bin/crashkeep save --follow "
            "/tmp/crashkeep/messages --name messages --board /etc/crashkeep/board.conf\n"
            "  respawn") in procd
    assert sorted(_args(owrt_root)) == ["core install",
                                        "export --new --board /etc/crashkeep/board.conf"]
    # logd already writes a file: follow that one, no logread instance of our own
    os.unlink(os.path.join(owrt_root, "tmp/procd"))
    with open(os.path.join(owrt_root, "tmp/uci_log_file"), "w") as f:
        f.write("/var/log/messages\n")
    _chroot(owrt_root, "/etc/init.d/crashkeep start")
    procd = open(os.path.join(owrt_root, "tmp/procd")).read()
    assert "logfile" not in procd and "--follow /var/log/messages " in procd
    os.unlink(os.path.join(owrt_root, "tmp/crashkeep.args"))
    r, _ = _chroot(owrt_root, "/etc/init.d/crashkeep reload; "
                              "/etc/init.d/crashkeep handoff; sleep 1; "
                              "/etc/init.d/crashkeep shutdown; echo rc=$?")
    assert "rc=0" in r.stdout, r.stdout + r.stderr
    procd = open(os.path.join(owrt_root, "tmp/procd")).read()
    assert "trigger interface.*.up 5000 /etc/init.d/crashkeep reload" in procd
    assert "kill crashkeep" in procd          # shutdown stops the instances first
    assert sorted(_args(owrt_root)) == ["export --new --board /etc/crashkeep/board.conf"] * 2 \
        + ["shutdown --board /etc/crashkeep/board.conf"]
