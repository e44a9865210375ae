#!/usr/bin/python3
"""resnet18_imagenet against torchvision: the same embeddings to 1e-4.

A torchvision resnet18 built in PyTorch (random weights, BN statistics and
affine parameters randomised so eval mode is not an identity) is written by
core/cli/isif_torch.py's from_torchvision as a backbone checkpoint; the
engine takes it as a job's init.checkpoint does (`isif init --init`, which
runs isif_checkpoint_init_backbone) and adds its fresh 128-d embedding
layer. The same images (already normalised, N×3×H×W) go through
  * `isif embed` (eval mode), and
  * torchvision's resnet18 in eval mode with fc replaced by the engine's
    embedding layer (weights read back from the engine's checkpoint),
    followed by L2 normalisation,
and the largest absolute difference must stay under 1e-4 (float64 on the
PyTorch side; float32 too, printed). Needs python3-torch and
python3-torchvision (Makefile BENCH_DEB_PKGS), so it lives in bench/.

Usage: bench/imagenet_crosscheck.py [path/to/isif] [--size 224] [--n 4]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "cli"))
import isif_torch  # noqa: E402

ARGS = [a for a in sys.argv[1:]]


def opt(name, default):
    return int(ARGS[ARGS.index(name) + 1]) if name in ARGS else default


ISIF = next((a for i, a in enumerate(ARGS) if not a.startswith("--") and
             (i == 0 or not ARGS[i - 1].startswith("--"))), "build/isif")
SIZE, N = opt("--size", 224), opt("--n", 4)


def run(*args):
    r = subprocess.run([ISIF] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("isif %s failed: %s" % (args[0], r.stderr.strip()))
    return r.stdout


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    tv = torchvision.models.resnet18()
    with torch.no_grad():
        for mod in tv.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
                mod.weight.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(mod.num_features, generator=gen) * 0.1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        backbone = os.path.join(tmp, "tv.safetensors")
        full = os.path.join(tmp, "full.safetensors")
        isif_torch.from_torchvision(tv, backbone)
        run("init", "--model", "resnet18_imagenet", "--in-channels", 3, "--seed", 5,
            "--init", backbone, "--out", full)
        ours = isif_torch.read_safetensors(full)[0]
        x = torch.randn(N, 3, SIZE, SIZE, generator=gen)
        np.save(os.path.join(tmp, "x.npy"), x.numpy())
        out = os.path.join(tmp, "f.npy")
        run("embed", "--checkpoint", full, "--in", os.path.join(tmp, "x.npy"), "--out", out)
        got = np.load(out)
        # torchvision's network with the engine's embedding layer as its fc
        tv.fc = nn.Linear(512, 128)
        with torch.no_grad():
            tv.fc.weight.copy_(ours["linear.weight"])
            tv.fc.bias.copy_(ours["linear.bias"])
        tv.eval()
        for dtype in (torch.float64, torch.float32):
            net = tv.to(dtype)
            with torch.no_grad():
                ref = F.normalize(net(x.to(dtype)), dim=1).double().numpy()
            err = float(np.abs(got - ref).max())
            ok = err <= 1e-4 or dtype == torch.float32
            results.append(ok)
            print("resnet18_imagenet %dx%d, N=%d, torchvision %s: max abs error %.3g (limit 1e-4) %s"
                  % (SIZE, SIZE, N, str(dtype).split(".")[1], err,
                     "ok" if err <= 1e-4 else ("FAIL" if not ok else "(printed only)")))
        # and our own module (isif_torch) loads the engine's file strictly
        probe = isif_torch.load(full).model.double()
        with torch.no_grad():
            err = float(np.abs(probe(x.double()).numpy() - got).max())
        results.append(err <= 1e-4)
        print("isif_torch.load of the engine's checkpoint: max abs error %.3g %s"
              % (err, "ok" if err <= 1e-4 else "FAIL"))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
