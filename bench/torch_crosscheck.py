#!/usr/bin/python3
"""Crosscheck of the isif engine against PyTorch, tensor by tensor.

Builds the same modules in PyTorch (resnet18, resnet20, convnet as
DESIGN.md describes them: core/cli/isif_torch.py, the module users load
checkpoints with), writes their weights as safetensors, and compares
  * `isif embed` (BN eval mode, and --train-bn) with the PyTorch forward:
    max abs error <= 1e-4;
  * `isif step` (one ISIF step, both gradient modes) with the same step in
    PyTorch: the loss and every updated tensor within 1e-3 relative
    (||ours - theirs|| / ||theirs|| per tensor; the element-wise worst case,
    max |ours - theirs| / max |theirs|, is printed beside it);
  * `isif init`: PyTorch loads our checkpoint with load_state_dict(strict=True).

The PyTorch side runs in float64: at initialisation nearly all embeddings
coincide, the loss subtracts nearly equal numbers, and PyTorch's own float32
step then drifts up to several percent from the exact one on resnet18 at
small m (printed as "torch float32 vs float64" for reference), while ours
(float32 with double accumulators) stays within 1e-3. A second effect shows
in the element-wise figure: a ReLU input within float32 rounding of zero
switches sides between float32 and float64, and the elements below it then
differ by up to a few 1e-3 in either float32 implementation.

--bf16 runs ours at precision bf16 (`isif embed --bf16`, `isif step --bf16`)
and compares with the same float64 reference. The bounds: both ours and
PyTorch's torch.autocast('cpu', dtype=torch.bfloat16) round the operands of
every convolution and linear product to bfloat16 by round-to-nearest-even
(unit roundoff u = 2^-9, so a product errs by at most 2u relative) and sum
in fp32, and keep BN, the loss and the weights in fp32. The two are thus
the same computation up to the order of the fp32 sums and of which tensors
are rounded in the weight gradient, and their errors against float64 are of
one size; a worst-case bound (2u·Σ|products| per layer, compounded over 20
layers) would be loose by orders of magnitude. So each bf16 figure is held
to 2× PyTorch autocast's own error on the same inputs (printed beside it),
and never less than the fp32 limit (on a CPU without AVX512_BF16 ours runs
fp32). A truncating conversion or a dropped term moves ours by far more.

Needs Debian's python3-torch (run with /usr/bin/python3); never part of
`make test`. Usage: bench/torch_crosscheck.py [path/to/isif] [--quick] [--bf16]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

# The PyTorch modules and the safetensors reader/writer are the ones users
# get: core/cli/isif_torch.py (one copy, checked here against the engine).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "cli"))
from isif_torch import build  # noqa: E402
import isif_torch  # noqa: E402

ISIF = next((a for a in sys.argv[1:] if not a.startswith("--")), "build/isif")
QUICK = "--quick" in sys.argv
BF16 = "--bf16" in sys.argv
BF16_FLAG = ["--bf16"] if BF16 else []


def isif_loss(f, tau, full):
    """DESIGN.md's loss; reference mode holds the column copy constant."""
    n = f.shape[0]
    m = n // 2
    col = f if full else f.detach()
    s = f @ col.t() / tau
    s = s - s.max(dim=1, keepdim=True).values.detach()  # Q is unchanged
    eye = torch.eye(n, dtype=torch.bool)
    e = torch.exp(s).masked_fill(eye, 0.0)
    q = e / e.sum(dim=1, keepdim=True)
    idx = torch.arange(n)
    partner = (idx + m) % n
    pos = q[idx, partner]
    neg = torch.ones(n, n, dtype=torch.bool)
    neg[idx, idx] = False
    neg[idx, partner] = False
    log_neg = torch.log1p(-q).masked_fill(~neg, 0.0)
    return -(torch.log(pos).sum() + log_neg.sum()) / n


def isif(*args):
    r = subprocess.run([ISIF] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("isif %s failed: %s" % (args[0], r.stderr.strip()))
    return r.stdout


def rel_err(ours, theirs, elementwise=False):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if elementwise:
        return np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12)
    return np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-12)


def torch_step(net, model_name, in_ch, a, b, mode, dtype, autocast=False):
    """One ISIF step of a copy of net in PyTorch; returns its state_dict and the loss."""
    ref = build(model_name, in_ch).to(dtype)
    ref.load_state_dict(net.state_dict())
    ref.train()
    opt = torch.optim.SGD(ref.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        emb = ref(torch.cat([a, b]).to(dtype))
    loss = isif_loss(emb.float(), 0.1, mode == "full")
    opt.zero_grad()
    loss.backward()
    opt.step()
    return ref.state_dict(), loss.item()


def worst_tensor(ours, ref_state, elementwise=False):
    """The largest per-tensor relative error, and its tensor's name."""
    worst, worst_name = 0.0, ""
    for k, v in ref_state.items():
        if k.endswith("num_batches_tracked"):
            if int(ours[k]) != int(v):
                return float("inf"), k
            continue
        e = rel_err(ours[k], v.numpy(), elementwise)
        if e > worst:
            worst, worst_name = e, k
    return worst, worst_name


def randomise_bn(model, gen):
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=gen) * 0.1)
            mod.num_batches_tracked.fill_(5)


def check(name, value, limit, results):
    ok = value <= limit
    results.append(ok)
    print("  %-44s %.3g (limit %g) %s" % (name, value, limit, "ok" if ok else "FAIL"))


def crosscheck(model_name, in_ch, size, m, tmp, results):
    print("%s %dx%dx%d, m=%d" % (model_name, in_ch, size, size, m))
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    net = build(model_name, in_ch).float()
    with torch.no_grad():
        randomise_bn(net, gen)
    ck = os.path.join(tmp, "w0.safetensors")
    isif_torch.save(ck, net, name=model_name)

    a = torch.randn(m, in_ch, size, size, generator=gen)
    b = torch.randn(m, in_ch, size, size, generator=gen)
    np.save(os.path.join(tmp, "a.npy"), a.numpy())
    np.save(os.path.join(tmp, "b.npy"), b.numpy())

    # embed, eval mode and train-mode BN
    for train_bn in (False, True):
        out = os.path.join(tmp, "f.npy")
        isif("embed", "--checkpoint", ck, "--in", os.path.join(tmp, "a.npy"), "--out", out,
             *(["--train-bn"] if train_bn else []), *BF16_FLAG)
        probe = build(model_name, in_ch).double()
        probe.load_state_dict(net.state_dict())
        probe.train(train_bn)
        with torch.no_grad():
            ref = probe(a.double()).numpy()
        limit = 1e-4
        if BF16:
            probe16 = build(model_name, in_ch)
            probe16.load_state_dict(net.state_dict())
            probe16.train(train_bn)
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                theirs = probe16(a).float().numpy()
            t_err = float(np.abs(theirs - ref).max())
            print("  %-44s %.3g" % ("  torch bf16 autocast max abs error", t_err))
            limit = max(limit, 2 * t_err)
        check("embed %s max abs error" % ("train-BN" if train_bn else "eval"),
              float(np.abs(np.load(out) - ref).max()), limit, results)

    # one ISIF step per gradient mode
    for mode in ("reference", "full"):
        ck2 = os.path.join(tmp, "w1.safetensors")
        line = isif("step", "--checkpoint", ck, "--views", os.path.join(tmp, "a.npy"),
                    os.path.join(tmp, "b.npy"), "--lr", 0.03, "--momentum", 0.9,
                    "--weight-decay", 5e-4, "--tau", 0.1, "--gradient", mode, "--out", ck2,
                    *BF16_FLAG)
        our_loss = float(line.split()[1])
        ref64, loss = torch_step(net, model_name, in_ch, a, b, mode, torch.float64)
        ref32, _ = torch_step(net, model_name, in_ch, a, b, mode, torch.float32)
        loss_limit = tensor_limit = 1e-3
        if BF16:
            ref16, loss16 = torch_step(net, model_name, in_ch, a, b, mode, torch.float32, True)
            t_loss = abs(loss16 - loss) / abs(loss)
            t_worst, _ = worst_tensor({k: v.numpy() for k, v in ref16.items()}, ref64)
            print("  %-44s loss %.3g, worst tensor %.3g" % ("  torch bf16 autocast", t_loss, t_worst))
            loss_limit, tensor_limit = max(1e-3, 2 * t_loss), max(1e-3, 2 * t_worst)
        check("step %s loss (ours %.6f, torch %.6f)" % (mode, our_loss, loss),
              abs(our_loss - loss) / abs(loss), loss_limit, results)
        ours = isif_torch.read_safetensors(ck2)[0]
        worst, worst_name = worst_tensor(ours, ref64)
        check("step %s worst tensor (%s)" % (mode, worst_name), worst, tensor_limit, results)
        elem, elem_name = worst_tensor(ours, ref64, True)
        print("  %-44s %.3g" % ("  element-wise worst (%s)" % elem_name, elem))
        ref32_np = {k: v.numpy() for k, v in ref32.items()}
        drift, _ = worst_tensor(ref32_np, ref64)
        drift_elem, _ = worst_tensor(ref32_np, ref64, True)
        print("  %-44s %.3g, element-wise %.3g" % ("  torch float32 vs float64", drift, drift_elem))

    # PyTorch loads an isif checkpoint strictly
    ck3 = os.path.join(tmp, "init.safetensors")
    isif("init", "--model", model_name, "--in-channels", in_ch, "--seed", 3, "--out", ck3)
    probe = build(model_name, in_ch)
    probe.load_state_dict(isif_torch.read_safetensors(ck3)[0], strict=True)
    results.append(True)
    print("  %-44s ok" % "load_state_dict(strict=True) of isif init")


def main():
    torch.set_num_threads(2)
    cases = [("convnet", 1, 28, 16), ("resnet20", 1, 28, 16), ("resnet18", 3, 32, 8)]
    if not QUICK:
        cases += [("convnet", 3, 32, 32), ("resnet18", 1, 28, 8)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            crosscheck(*case, tmp, results)
    print("crosscheck: %d passed, %d failed" % (results.count(True), results.count(False)))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
