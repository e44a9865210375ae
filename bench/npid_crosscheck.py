#!/usr/bin/python3
"""Crosscheck of the engine's NPID loss and memory bank against PyTorch.

NPID (Wu et al., CVPR 2018) as DESIGN.md "NPID" states it, written here in
PyTorch from the paper's formulas, in float64 with autograd:
  * exact: cross-entropy of f·Vᵀ/τ over the whole bank with each image's own
    row as the target;
  * NCE: P = exp(f·v/τ)/Z with Z = n·mean(exp(f·v/τ)) over the step's pairs
    (held constant), h = P/(P + k/n), L = −(1/m) Σ [log h(own) + Σ log(1 − h(noise))];
  * the bank update v ← normalise(μ v + (1 − μ) f) of the images' rows.
bench/npid_ref runs the engine's code (core/nn/npid.c) on the same arrays;
the loss, dL/df, Z and the updated bank must agree within 1e-4 relative
(float32 against float64). The models' forward and backward are
crosschecked by bench/torch_crosscheck.py; this covers what NPID adds.

Needs Debian's python3-torch (run with /usr/bin/python3); never part of
`make test`. Usage: bench/npid_crosscheck.py [path/to/npid_ref]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

REF = sys.argv[1] if len(sys.argv) > 1 else "build/npid_ref"
LIMIT = 1e-4


def npy_save(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def torch_npid(f, bank, idx, noise, tau, momentum):
    f = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(bank, dtype=torch.float64)
    idx_t = torch.tensor(idx, dtype=torch.long)
    n, m = v.shape[0], f.shape[0]
    z = None
    if noise is None:
        loss = torch.nn.functional.cross_entropy(f @ v.t() / tau, idx_t)
    else:
        k = noise.shape[1]
        rows = torch.cat([idx_t[:, None], torch.tensor(noise, dtype=torch.long)], dim=1)
        e = torch.exp((f[:, None, :] * v[rows]).sum(-1) / tau)   # [m, k + 1]
        z = (n * e.mean()).detach()
        p, c = e / z, k / n
        loss = -(torch.log(p[:, 0] / (p[:, 0] + c)).sum()
                 + torch.log(c / (p[:, 1:] + c)).sum()) / m
    loss.backward()
    after = v.clone()
    upd = momentum * v[idx_t] + (1 - momentum) * f.detach()
    after[idx_t] = upd / upd.norm(dim=1, keepdim=True)
    return loss.item(), f.grad.numpy(), None if z is None else z.item(), after.numpy()


def rel(ours, theirs):
    theirs = np.asarray(theirs, dtype=np.float64)
    return float(np.linalg.norm(np.asarray(ours, dtype=np.float64) - theirs) /
                 max(np.linalg.norm(theirs), 1e-30))


def case(name, m, n, D, k, tau, momentum, seed, results):
    rng = np.random.default_rng(seed)
    bank = rng.standard_normal((n, D))
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    f = rng.standard_normal((m, D))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    # a trained network's features sit near their own bank rows
    idx = rng.choice(n, size=m, replace=False)
    f = 0.5 * f + bank[idx]
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    f, bank = f.astype(np.float32), bank.astype(np.float32)
    noise = rng.integers(0, n, size=(m, k)) if k > 0 else None
    with tempfile.TemporaryDirectory() as d:
        npy_save(os.path.join(d, "f.npy"), f)
        npy_save(os.path.join(d, "bank.npy"), bank)
        npy_save(os.path.join(d, "idx.npy"), idx)
        if noise is not None:
            npy_save(os.path.join(d, "noise.npy"), noise)
        r = subprocess.run([REF, d, str(tau), str(momentum), str(k)], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit("npid_ref failed: " + r.stderr.strip())
        ours = {x: np.load(os.path.join(d, x + ".npy")) for x in ("loss", "df", "z", "bank_after")}
    loss, grad, z, after = torch_npid(f.astype(np.float64), bank.astype(np.float64), idx, noise, tau,
                                      momentum)
    checks = [("loss", rel(ours["loss"][0], loss)), ("dL/df", rel(ours["df"], grad)),
              ("bank after update", rel(ours["bank_after"], after))]
    if z is not None:
        checks.append(("Z", rel(ours["z"][0], z)))
    for what, err in checks:
        ok = err <= LIMIT
        results.append(ok)
        print("  %-44s rel err %.2e %s" % ("%s: %s" % (name, what), err, "ok" if ok else "FAIL"))


def main():
    torch.manual_seed(0)
    results = []
    print("NPID crosscheck against PyTorch (float64), limit %.0e relative" % LIMIT)
    case("exact m=64 n=1000 D=128 tau=0.07", 64, 1000, 128, 0, 0.07, 0.5, 1, results)
    case("exact m=128 n=5000 D=64 tau=0.1", 128, 5000, 64, 0, 0.1, 0.5, 2, results)
    case("nce k=4096 m=64 n=20000 D=128", 64, 20000, 128, 4096, 0.07, 0.5, 3, results)
    case("nce k=16 m=32 n=100 D=32 mu=0.9", 32, 100, 32, 16, 0.2, 0.9, 4, results)
    bad = results.count(False)
    print("npid crosscheck: %d checks, %d failed" % (len(results), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
