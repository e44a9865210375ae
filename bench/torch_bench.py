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

`epoch` is one full Fashion-MNIST epoch the way a PyTorch user would write
`isif train --dataset fashion-mnist --epochs 1` with its defaults (m = 128,
SGD lr 0.03, momentum 0.9, weight decay 5e-4, tau = 0.1, seed 1): the IDX
files of Debian's dataset-fashion-mnist read with numpy, a Dataset that
returns two views of an image made by torchvision.transforms (DESIGN.md's
pipeline with core/data/augment.c's semantics, see epoch_transform()), a shuffled
DataLoader with drop_last (60000 // m batches, as core/train/train.c), the 2m rows
stacked [view 1; view 2] through one forward, the ISIF loss, backward, SGD.
The timed part runs from creating the batch iterator (workers start inside
it) to the last SGD step, so data loading is in it; data_wait is the share
of that time spent waiting for a batch. With EVAL = 1 it then does the kNN
evaluation of `isif train`: train and test splits embedded without
augmentation with BN in eval mode, k = 200, tau = 0.1, top-1 and top-5.
Threads: THREADS for the compute (torch.set_num_threads) and WORKERS
DataLoader processes (PyTorch sets each to one thread); isif train
--threads 2 runs 2 compute threads and 1 loader thread, so THREADS = 2,
WORKERS = 1 is the like-for-like setting. peak_rss_mib is the main process,
worker_rss_mib the largest worker (RUSAGE_CHILDREN; fork shares pages with
the main process, so the two must not simply be added), train_rss_mib the
main process's peak before the evaluation. N > 0 trains on the
first N train images only (a smoke run; all by default).

`step` with AUTOCAST = 1 runs the forward and the loss under
torch.autocast('cpu', dtype=torch.bfloat16), the one line a PyTorch user
adds for bf16 (weights, gradients and SGD stay fp32; oneDNN picks its
AVX512_BF16 kernels); the line then says autocast=bf16.

Usage:
  torch_bench.py step MODEL CHANNELS SIZE M THREADS ITERS WARMUP [AUTOCAST]
  torch_bench.py embed MODEL CHANNELS SIZE N BATCH THREADS
  torch_bench.py knn NG NQ D K THREADS
  torch_bench.py epoch MODEL M THREADS WORKERS EVAL [N]
"""
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_crosscheck import build, isif_loss  # noqa: E402


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def step(model, ch, size, m, threads, iters, warmup, autocast=0):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = build(model, ch)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(2 * m, ch, size, size) * 2 - 1
    times, cpu = [], []
    for it in range(warmup + iters):
        t0, c0 = time.perf_counter(), time.process_time()
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = isif_loss(net(x), 0.1, False)
        else:
            loss = isif_loss(net(x), 0.1, False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    med = times[len(times) // 2]
    # cpu_ms: the median step's CPU time of all the process's threads (on a
    # shared machine the wall time also counts other processes' turns)
    print("torch step %s %dx%dx%d m=%d threads=%d autocast=%s median_ms=%.1f min_ms=%.1f "
          "max_ms=%.1f img_s=%.1f peak_rss_mib=%.0f cpu_ms=%.1f"
          % (model, ch, size, size, m, threads, "bf16" if autocast else "off", 1e3 * med,
             1e3 * times[0], 1e3 * times[-1], m / med, peak_rss_mib(), 1e3 * cpu[len(cpu) // 2]))


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


# --- one Fashion-MNIST epoch with data loading -----------------------------

FASHION_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
MAX_IDX_ITEMS = 1 << 24  # a cap on the count read from a file header


def read_idx(name):
    """An IDX file (plain or .gz) as a uint8 array of its declared shape."""
    path = os.path.join(FASHION_DIR, name)
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 3:
        sys.exit("%s: not a uint8 IDX file" % path)
    shape = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    count = int(np.prod(shape))
    if shape[0] > MAX_IDX_ITEMS or len(data) < 4 + 4 * ndim + count:
        sys.exit("%s: bad IDX size" % path)
    return np.frombuffer(data, np.uint8, count, 4 + 4 * ndim).reshape(shape)


def load_fashion(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(prefix + "-images-idx3-ubyte")
    y = read_idx(prefix + "-labels-idx1-ubyte")
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def epoch_transform(mean, std):
    """DESIGN.md's view pipeline with torchvision's tensor transforms on the
    0..1 float image, which is what core/data/augment.c reproduces: bilinear
    resize without antialias (the tensor path; PIL would antialias), colour
    arithmetic in float. On 1-channel images ColorJitter still draws all four
    factors and saturation and hue leave the image alone; RandomGrayscale
    draws and copies. Normalize uses the train split's mean and population
    std, as core/data/dataset.c computes them."""
    import torchvision.transforms as T
    from torchvision.transforms import InterpolationMode
    return T.Compose([
        T.RandomResizedCrop(28, scale=(0.2, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                            interpolation=InterpolationMode.BILINEAR, antialias=False),
        T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.4),
        T.RandomGrayscale(p=0.2),
        T.RandomHorizontalFlip(p=0.5),
        T.Normalize((mean,), (std,)),
    ])


class TwoViews(torch.utils.data.Dataset):
    """Image i as two independently augmented views (uint8 -> /255 first,
    as ToTensor does)."""

    def __init__(self, images, transform):
        self.images = images
        self.transform = transform

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        x = self.images[i].float().div_(255.0)
        return self.transform(x), self.transform(x)


def embed_split(net, images, mean, std, batch=256):
    out = torch.empty(images.shape[0], 128)
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            x = (images[i:i + batch].float() / 255.0 - mean) / std
            out[i:i + batch] = net(x)
    return out


def knn_eval(gallery, g_labels, queries, q_labels, k=200, tau=0.1, classes=10):
    """Weighted kNN: the k most similar gallery rows vote exp(sim/tau)."""
    top1 = top5 = 0
    for i in range(0, queries.shape[0], 1000):
        s, idx = (queries[i:i + 1000] @ gallery.t()).topk(k, dim=1)
        w = torch.exp((s - s[:, :1]) / tau)  # a common factor, as core/eval/knn.c
        votes = torch.zeros(s.shape[0], classes, dtype=torch.float64)
        votes.scatter_add_(1, g_labels[idx], w.double())
        best = votes.topk(5, dim=1).indices
        truth = q_labels[i:i + 1000].unsqueeze(1)
        top1 += (best[:, :1] == truth).sum().item()
        top5 += (best == truth).any(dim=1).sum().item()
    return top1 / queries.shape[0], top5 / queries.shape[0]


def epoch(model, m, threads, workers, do_eval, limit=0):
    wall0 = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    train_x, train_y = load_fashion("train")
    if limit > 0:
        train_x, train_y = train_x[:limit], train_y[:limit]
    pixels = train_x.double() / 255.0
    mean, std = pixels.mean().item(), pixels.std(unbiased=False).item()
    del pixels
    net = build(model, 1)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(
        TwoViews(train_x, epoch_transform(mean, std)), batch_size=m, shuffle=True,
        drop_last=True, num_workers=workers, generator=torch.Generator().manual_seed(1))
    steps, loss_sum, waited = 0, 0.0, 0.0
    t0 = time.perf_counter()
    batches = iter(loader)
    while True:
        tw = time.perf_counter()
        try:
            v1, v2 = next(batches)
        except StopIteration:
            break
        waited += time.perf_counter() - tw
        loss = isif_loss(net(torch.cat([v1, v2])), 0.1, False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.item()
        steps += 1
    train_s = time.perf_counter() - t0
    del batches  # workers exit; their peak RSS shows in RUSAGE_CHILDREN
    line = ("torch epoch %s fashion-mnist m=%d threads=%d workers=%d images=%d loss=%.4f "
            "train_s=%.1f img_s=%.1f data_wait=%.1f%%"
            % (model, m, threads, workers, steps * m, loss_sum / max(steps, 1), train_s,
               steps * m / train_s, 100.0 * waited / train_s))
    line += " train_rss_mib=%.0f" % peak_rss_mib()
    if do_eval:
        t1 = time.perf_counter()
        test_x, test_y = load_fashion("test")
        net.eval()
        gallery = embed_split(net, train_x, mean, std)
        queries = embed_split(net, test_x, mean, std)
        t2 = time.perf_counter()
        top1, top5 = knn_eval(gallery, train_y, queries, test_y)
        t3 = time.perf_counter()
        line += " embed_s=%.1f knn_s=%.1f knn_top1=%.2f%% knn_top5=%.2f%%" % (
            t2 - t1, t3 - t2, 100 * top1, 100 * top5)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print("%s total_s=%.1f peak_rss_mib=%.0f worker_rss_mib=%.0f"
          % (line, time.perf_counter() - wall0, peak_rss_mib(), child))


def main():
    a = sys.argv[1:]
    if len(a) in (8, 9) and a[0] == "step":
        step(a[1], *map(int, a[2:]))
    elif len(a) == 7 and a[0] == "embed":
        embed(a[1], *map(int, a[2:]))
    elif len(a) == 6 and a[0] == "knn":
        knn(*map(int, a[1:]))
    elif len(a) in (6, 7) and a[0] == "epoch":
        epoch(a[1], *map(int, a[2:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
