#!/usr/bin/env python3
"""tests/tree/make_help.py — `make help` lists every target the Makefile
declares .PHONY, each with a one-line description (its "## target: text"
line), and nothing that is not a target. Checks itself on a planted Makefile
with an undocumented target.

    python3 tests/tree/make_help.py [MAKEFILE]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PHONY = re.compile(r"^\.PHONY:(.*)$", re.M)
HELP_LINE = re.compile(r"^  make (\S+) +(\S.*)$")
FAILS = 0


def result(name, ok, detail=""):
    global FAILS
    if not ok:
        FAILS += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, " (%s)" % detail if detail and not ok else ""),
          flush=True)


def problems(makefile):
    """What is wrong with MAKEFILE's help, as short strings."""
    with open(makefile) as f:
        phony = {t for line in PHONY.findall(f.read()) for t in line.split()}
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "-s", "--no-print-directory", "-f", os.path.basename(makefile), "help"],
                       cwd=os.path.dirname(makefile), env=env, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        return ["make help exited %d: %s" % (p.returncode, p.stderr.strip()[-200:])]
    listed = {}
    bad = []
    for line in p.stdout.splitlines():
        m = HELP_LINE.match(line)
        if not m:
            bad.append("unexpected help line %r" % line)
            continue
        listed[m.group(1)] = m.group(2)
    bad += ["%s is not in make help" % t for t in sorted(phony - set(listed))]
    bad += ["make help lists %s, which is no .PHONY target" % t for t in sorted(set(listed) - phony)]
    return bad


def main():
    makefile = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Makefile"))
    bad = problems(makefile)
    result("make_help_lists_every_target", not bad, "; ".join(bad[:5]))
    # The checker, checked: an undocumented target must be found.
    with tempfile.TemporaryDirectory(prefix="isif-make-help-") as d:
        planted = os.path.join(d, "Makefile")
        shutil.copy(makefile, planted)
        with open(planted, "a") as f:
            f.write("\n.PHONY: planted-undocumented\nplanted-undocumented:\n\t@true\n")
        found = problems(planted)
    result("make_help_checker_finds_an_undocumented_target",
           found == ["planted-undocumented is not in make help"] + bad, "; ".join(found[:5]))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
