#!/usr/bin/env python3
"""tests/tree/layers.py — fails when a file includes a layer above its own.

The engine's layers, lowest first (docs/ARCHITECTURE.md says what each holds):

    base → nn, data → eval → train → cli        and server/ above them all

A file in core/<L>/ or include/isif/<L>/ may include headers of its own layer
and of layers strictly below it; nn and data are siblings and may not include
each other. Public headers are "isif/<L>/name.h", private ones "<L>/name_impl.h"
(-Icore); server/ may use public headers only. Prints one PASS/FAIL line per
layer, then checks itself on a planted violation (a checker that is checked).
"""
import os
import re
import sys
import tempfile

RANK = {"base": 0, "nn": 1, "data": 1, "eval": 2, "train": 3, "cli": 4, "server": 5}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PUBLIC = re.compile(r"^isif/([a-z]+)/[a-z0-9_]+\.h$")
PRIVATE = re.compile(r"^(?:\.\./)*([a-z]+)/[a-z0-9_]+_impl\.h$")


def allowed(own, target, private):
    """Whether layer `own` may include a header of layer `target`."""
    if target not in RANK:
        return False
    if own == "server" and private:
        return False  # the daemon sees only the public engine API
    return target == own or RANK[target] < RANK[own]


def files_by_layer(root):
    """{layer: [path]} for every C source and header that belongs to a layer."""
    out = {}
    for layer in RANK:
        dirs = [os.path.join(root, "server")] if layer == "server" else [
            os.path.join(root, "core", layer), os.path.join(root, "include", "isif", layer)]
        for d in dirs:
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if name.endswith((".c", ".h", ".cc", ".cpp")):
                    out.setdefault(layer, []).append(os.path.join(d, name))
    return out


def violations(root):
    """[(layer, path, header)] for every include that crosses a layer upwards."""
    bad = []
    for layer, paths in files_by_layer(root).items():
        for path in paths:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for header in INCLUDE.findall(text):
                pub, priv = PUBLIC.match(header), PRIVATE.match(header)
                if header.startswith("isif/") and not pub:
                    bad.append((layer, path, header + " (public header outside a layer)"))
                elif pub and not allowed(layer, pub.group(1), False):
                    bad.append((layer, path, header))
                elif priv and not allowed(layer, priv.group(1), True):
                    bad.append((layer, path, header))
    return bad


def check_tree(root):
    bad = violations(root)
    failed = 0
    for layer in sorted(files_by_layer(root), key=lambda l: (RANK[l], l)):
        mine = [b for b in bad if b[0] == layer]
        if mine:
            failed += 1
            print(f"FAIL layers_{layer}")
            for _, path, header in mine:
                print(f"  {os.path.relpath(path, root)} includes {header}")
        else:
            print(f"PASS layers_{layer}")
    return failed


def self_test():
    """The checker must flag an upward include, a sibling include and a private
    header in server/, and accept a downward one."""
    cases = [("core/base/x.c", '#include "isif/nn/model.h"\n', True),
             ("core/nn/x.c", '#include "data/dataset_impl.h"\n', True),
             ("server/x.c", '#include "base/team_impl.h"\n', True),
             ("core/eval/x.c", '#include "isif/nn/model.h"\n#include "base/gemm_impl.h"\n', False)]
    ok = True
    for rel, text, expect_bad in cases:
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, os.path.dirname(rel)))
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                f.write(text)
            if bool(violations(root)) != expect_bad:
                ok = False
                print(f"  checker got {rel} wrong (expected {'a violation' if expect_bad else 'none'})")
    print(("PASS" if ok else "FAIL") + " layers_checker_flags_violations")
    return 0 if ok else 1


if __name__ == "__main__":
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    sys.exit(1 if check_tree(os.path.normpath(top)) + self_test() else 0)
