#!/usr/bin/python3
"""PyTorch side of `make bench`: the same ISIF training step as `isif bench`
(forward of 2m random rows, the ISIF loss in reference mode, backward, SGD
with momentum 0.9 and weight decay 5e-4) on the same model, batch and
thread count, timed the same way: warm-up steps, then the median of several
timed steps, and the process's peak RSS. Also the evaluation forward of N
random images (the kNN protocol's embedding pass), and the weighted kNN of
bench/knn_bench.c (random unit rows, k = 200, tau = 0.1, 10 classes) done the
PyTorch way (mm, topk, scatter_add per block of queries). Prints one line per
measurement in the key=value form bench/run.sh parses; never judges.

Usage:
  torch_bench.py step MODEL CHANNELS SIZE M THREADS ITERS WARMUP
  torch_bench.py embed MODEL CHANNELS SIZE N BATCH THREADS
  torch_bench.py knn NG NQ D K THREADS
"""
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_crosscheck import build, isif_loss  # noqa: E402


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def step(model, ch, size, m, threads, iters, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = build(model, ch)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(2 * m, ch, size, size) * 2 - 1
    times = []
    for it in range(warmup + iters):
        t0 = time.perf_counter()
        loss = isif_loss(net(x), 0.1, False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print("torch step %s %dx%dx%d m=%d threads=%d median_ms=%.1f min_ms=%.1f max_ms=%.1f "
          "img_s=%.1f peak_rss_mib=%.0f"
          % (model, ch, size, size, m, threads, 1e3 * med, 1e3 * times[0], 1e3 * times[-1],
             m / med, peak_rss_mib()))


def embed(model, ch, size, n, batch, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = build(model, ch)
    net.eval()
    x = torch.rand(n, ch, size, size) * 2 - 1
    out = torch.empty(n, 128)
    with torch.no_grad():
        net(x[:batch])  # warm-up
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            out[i:i + batch] = net(x[i:i + batch])
        t = time.perf_counter() - t0
    print("torch embed %s %dx%dx%d n=%d batch=%d threads=%d seconds=%.3f img_s=%.1f"
          % (model, ch, size, size, n, batch, threads, t, n / t))


def knn(ng, nq, dim, k, threads):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    g = F.normalize(torch.randn(ng, dim, generator=gen), dim=1)
    q = F.normalize(torch.randn(nq, dim, generator=gen), dim=1)
    gl = torch.randint(0, 10, (ng,), generator=gen)
    ql = torch.randint(0, 10, (nq,), generator=gen)
    t0 = time.perf_counter()
    correct = 0
    for i in range(0, nq, 1000):
        sim = q[i:i + 1000] @ g.t()
        s, idx = sim.topk(k, dim=1)
        w = torch.exp(s / 0.1)
        votes = torch.zeros(sim.shape[0], 10).scatter_add_(1, gl[idx], w)
        correct += (votes.argmax(1) == ql[i:i + 1000]).sum().item()
    t = time.perf_counter() - t0
    print("torch knn ng=%d nq=%d D=%d k=%d threads=%d seconds=%.3f top1=%.4f"
          % (ng, nq, dim, k, threads, t, correct / nq))


def main():
    a = sys.argv[1:]
    if len(a) == 8 and a[0] == "step":
        step(a[1], *map(int, a[2:]))
    elif len(a) == 7 and a[0] == "embed":
        embed(a[1], *map(int, a[2:]))
    elif len(a) == 6 and a[0] == "knn":
        knn(*map(int, a[1:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
