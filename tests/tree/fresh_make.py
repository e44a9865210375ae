#!/usr/bin/env python3
"""tests/tree/fresh_make.py — the README's entry points on a fresh Debian 12,
simulated: `make run`, `make test`, `make sanitize` and `make tsan` must
install the packages first and then compile and link with what pkg-config
says once they are there.

The bug this guards against: the Makefile reads pkg-config when make parses
it, so a make that parsed it before `deps` ran apt-get links without
-lopenblas & co (undefined cblas_sgemm), and only a second `make run` worked.

Each entry point runs for real (make -j2) in a scratch tree that links the
sources and copies the Makefile, with a PATH of shims in front:
  dpkg-query, apt-get, sudo  a package database that starts empty; apt-get
                             install records packages (nothing is installed)
  pkg-config                 "not found" until the pkg-config package is
                             "installed", then the real one
  npm                        absent until the npm package is "installed",
                             then fakes `npm ci`
  cc, ar                     log their arguments and write empty objects, and
                             binaries that only print their name
  g++                        writes an empty object (the FAISS wrapper)
tests/run_all.sh and tests/tsan_daemon.sh are stubs there. A case passes when
make succeeds, apt-get was asked for the packages, and every compile line
carries `pkg-config --cflags` and every link line `pkg-config --libs` of the
packages it needs. Last, the checker checks itself on a planted Makefile with
the bug.

    python3 tests/tree/fresh_make.py [--npm] [MAKEFILE]

MAKEFILE defaults to the repository's; `git show 70a4427:Makefile > old.mk`
and passing old.mk shows the bug as FAIL lines. --npm starts with npm
"installed" (an old Makefile stops at a missing npm before it links).
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORE_PKGS = ["jansson", "zlib", "libpng", "libjpeg"]  # the Makefile's PKGS
SERVER_PKGS = ["libmicrohttpd", "sqlite3", "libcurl"]
# Binaries that link the daemon's objects, hence SERVER_PKGS too.
SERVER_BINS = ("isifd", "server_tests", "fuzz_replay/http", "fuzz_replay/urlguard")
# Entry point -> binaries (relative to the scratch tree) it must link.
CASES = {
    "run": ["build/isifd"],
    "test": ["build/isif", "build/isifd", "build/unit_tests", "build/server_tests",
             "build/fuzz_replay/spec", "build/fuzz_replay/http"],
    "sanitize": ["build/asan/isif", "build/asan/isifd", "build/asan/unit_tests",
                 "build/asan/server_tests"],
    "tsan": ["build/tsan/unit_tests", "build/tsan/server_tests", "build/tsan/isifd"],
}
# Whatever make's environment says about flags or flavours stays out.
SCRUB = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES", "CC", "CFLAGS", "LDFLAGS",
         "LDLIBS", "OPT", "FLAVOUR", "B", "PREFIX", "DESTDIR", "SANITIZED", "BUILD")

SHIMS = {
    # dpkg-query -W -f=FORMAT PKG: installed only once the fake apt-get installed it.
    "dpkg-query": r'''
for p; do :; done
grep -qx -- "$p" "$STATE/installed" || exit 1
echo 'install ok installed'
''',
    "apt-get": r'''
echo "apt-get $*" >> "$STATE/apt.log"
case " $* " in *" install "*) ;; *) exit 0 ;; esac
for p; do
	case $p in install|-*) ;; *) echo "$p" >> "$STATE/installed" ;; esac
done
''',
    "sudo": r'''exec "$@"
''',
    "pkg-config": r'''
grep -qx pkg-config "$STATE/installed" || { echo "pkg-config: not found" >&2; exit 127; }
exec "$REAL_PKG_CONFIG" "$@"
''',
    "npm": r'''
grep -qx npm "$STATE/installed" || { echo "npm: not found" >&2; exit 127; }
[ "$1" = ci ] || exit 0
mkdir -p node_modules/uplot/dist
touch node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css \
	node_modules/uplot/LICENSE node_modules/.package-lock.json
''',
    # cc ... -o OUT ...: -c writes an empty object, otherwise a binary that
    # prints its name and arguments (make run execs isifd).
    "cc": r'''
echo "cc $*" >> "$STATE/cc.log"
out= compile=
while [ $# -gt 0 ]; do
	case $1 in -o) out=$2; shift ;; -c) compile=1 ;; esac
	shift
done
[ -n "$out" ] || exit 0
if [ -n "$compile" ]; then : > "$out"; exit 0; fi
printf '#!/bin/sh\necho "fake %s $*"\n' "$out" > "$out"
chmod +x "$out"
''',
    # g++ (make's CXX) compiles core/eval/ann_faiss.cpp, which needs no
    # pkg-config flags: an empty object, logged apart from cc's lines.
    "g++": r'''
echo "g++ $*" >> "$STATE/cxx.log"
out=
while [ $# -gt 0 ]; do
	case $1 in -o) out=$2; shift ;; esac
	shift
done
[ -n "$out" ] && : > "$out"
exit 0
''',
    "ar": r'''
echo "ar $*" >> "$STATE/ar.log"
: > "$2"
''',
}

# Test stubs in the scratch tree: the suites are not what is checked here.
STUBS = {
    "tests/run_all.sh": 'echo "stub run_all.sh BUILD=$BUILD"\n',
    "tests/tsan_daemon.sh": 'echo "stub tsan_daemon.sh"\n',
}

FAILS = 0


def result(name, ok, detail=""):
    global FAILS
    if not ok:
        FAILS += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, " (%s)" % detail if detail and not ok else ""),
          flush=True)


def pkg_config(flag, pkgs):
    out = subprocess.run(["pkg-config", flag] + pkgs, capture_output=True, text=True, check=True)
    return out.stdout.split()


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def scratch_tree(base, makefile, preinstalled):
    """A tree with the sources linked, MAKEFILE copied, stubs and an empty package db."""
    for d in ("core", "include", "server", "migrations", "bench", "docs", "systemd"):
        if os.path.exists(os.path.join(ROOT, d)):
            os.symlink(os.path.join(ROOT, d), os.path.join(base, d))
    for d in ("unit", "server", "fuzz"):
        os.makedirs(os.path.join(base, "tests"), exist_ok=True)
        os.symlink(os.path.join(ROOT, "tests", d), os.path.join(base, "tests", d))
    for d in ("web", "tests/browser"):
        os.makedirs(os.path.join(base, d))
        for f in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(ROOT, d, f), os.path.join(base, d, f))
    shutil.copy(makefile, os.path.join(base, "Makefile"))
    for path, text in STUBS.items():
        write(os.path.join(base, path), text, 0o755)
    for name, text in SHIMS.items():
        write(os.path.join(base, "shim", name), "#!/bin/sh\n" + text, 0o755)
    write(os.path.join(base, "state", "installed"), "".join(p + "\n" for p in preinstalled))


def run_make(base, target):
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env["PATH"] = os.path.join(base, "shim") + os.pathsep + env.get("PATH", "")
    env["STATE"] = os.path.join(base, "state")
    env["REAL_PKG_CONFIG"] = shutil.which("pkg-config")
    return subprocess.run(["make", "-j2", target], cwd=base, env=env, capture_output=True,
                          text=True, timeout=600)


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


def link_lines(cc_log):
    """{output: argument list} of every cc call without -c."""
    out = {}
    for line in cc_log:
        args = line.split()
        if "-c" in args or "-o" not in args:
            continue
        out[args[args.index("-o") + 1]] = args
    return out


def missing_flags(cc_log, binaries, cflags, libs, server_libs):
    """What each compile and link line lacks, as short strings."""
    bad = []
    for line in cc_log:
        args = line.split()
        if "-c" in args:
            lack = [f for f in cflags if f not in args]
            if lack:
                bad.append("%s compiled without %s" % (args[-1], " ".join(lack)))
                break  # one example is enough
    links = link_lines(cc_log)
    for b in binaries:
        if b not in links:
            bad.append("%s never linked" % b)
            continue
        want = libs + (server_libs if b.endswith(SERVER_BINS) else [])
        lack = [f for f in want if f not in links[b]]
        if lack:
            bad.append("%s linked without %s" % (b, " ".join(lack)))
    return bad


def fresh_make(makefile, target, binaries, flags, preinstalled=()):
    """Runs make TARGET in a fresh scratch tree; returns what went wrong."""
    with tempfile.TemporaryDirectory(prefix="isif-fresh-make-") as base:
        scratch_tree(base, makefile, preinstalled)
        p = run_make(base, target)
        state = os.path.join(base, "state")
        installed = read_lines(os.path.join(state, "installed"))
        bad = [] if p.returncode == 0 else [
            "make %s exited %d: %s" % (target, p.returncode, p.stderr.strip()[-300:])]
        if "pkg-config" not in installed or "libjansson-dev" not in installed:
            bad.append("make %s did not install the packages (installed: %s)"
                       % (target, " ".join(installed) or "nothing"))
        bad += missing_flags(read_lines(os.path.join(state, "cc.log")), binaries, *flags)
        if target == "run" and "fake build/isifd --listen" not in p.stdout:
            bad.append("make run did not start isifd")
        return bad


PLANTED = """\
LIBS := $(shell pkg-config --libs jansson zlib libpng libjpeg 2>/dev/null)
run: deps build/isifd
deps:
\t@dpkg-query -W -f='x' pkg-config >/dev/null 2>&1 || apt-get install -y pkg-config libjansson-dev
build/isifd:
\t@mkdir -p build
\tcc -o $@ $(LIBS)
"""


def self_check(flags):
    """The checker must flag a Makefile that links with parse-time pkg-config."""
    with tempfile.TemporaryDirectory(prefix="isif-fresh-make-self-") as d:
        planted = os.path.join(d, "Makefile")
        write(planted, PLANTED)
        bad = fresh_make(planted, "run", ["build/isifd"], ([], flags[1], []))
    result("fresh_make_checker_catches_parse_time_pkg_config",
           any("linked without" in b and "-ljansson" in b for b in bad),
           "; ".join(bad) or "no finding")


def main():
    args = sys.argv[1:]
    preinstalled = ["npm"] if "--npm" in args else []
    args = [a for a in args if a != "--npm"]
    makefile = os.path.abspath(args[0] if args else os.path.join(ROOT, "Makefile"))
    if not shutil.which("pkg-config") or not shutil.which("make"):
        result("fresh_make_tools", False, "needs make and pkg-config (make deps)")
        sys.exit(1)
    flags = (pkg_config("--cflags", CORE_PKGS), pkg_config("--libs", CORE_PKGS),
             pkg_config("--libs", SERVER_PKGS))
    for target, binaries in CASES.items():
        bad = fresh_make(makefile, target, binaries, flags, preinstalled)
        result("fresh_make_%s_links_the_libraries" % target, not bad, "; ".join(bad[:4]))
    self_check(flags)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
