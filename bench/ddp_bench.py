#!/usr/bin/python3
"""PyTorch DDP (gloo) beside `mpirun -np N isif train` (bench/mpi_bench.sh):
the same ISIF step split the same way — each of WORLD processes forwards
its 2m/WORLD rows of the batch [view 1; view 2] with its own BN statistics
(DataParallel's semantics, which ours match), the embeddings are
all-gathered (the live tensor kept in this rank's slot so its rows get
their gradient), the loss is the whole batch's, DDP all-reduces gradients
during backward, SGD. Random 3×SIZE×SIZE rows in memory, so no data
loading is timed (isif train's loader thread is). Prints the median step
time, images/s and the allgather's share; never judges.

Usage: ddp_bench.py MODEL M WORLD THREADS STEPS WARMUP [SIZE]
"""
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_crosscheck import build, isif_loss  # noqa: E402


def worker(rank, world, model, m, threads, steps, warmup, size, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = build(model, 3)
    net.train()
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    rows = 2 * m // world
    x = torch.rand(rows, 3, size, size) * 2 - 1
    times, gathers = [], []
    for it in range(warmup + steps):
        t0 = time.perf_counter()
        emb = ddp(x)
        tg = time.perf_counter()
        if world > 1:
            parts = [torch.empty_like(emb) for _ in range(world)]
            dist.all_gather(parts, emb.detach())
            parts[rank] = emb
            full = torch.cat(parts)
        else:
            full = emb
        tg = time.perf_counter() - tg
        # DDP averages gradients over ranks; the batch loss wants their sum
        loss = isif_loss(full, 0.1, False) * world
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
            gathers.append(tg)
    if rank == 0:
        times.sort()
        gathers.sort()
        med = times[len(times) // 2]
        out.put((med, gathers[len(gathers) // 2]))
    dist.destroy_process_group()


def main():
    model, m, world, threads, steps, warmup = sys.argv[1], *map(int, sys.argv[2:7])
    size = int(sys.argv[7]) if len(sys.argv) > 7 else 32
    port = 29500 + os.getpid() % 1000
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, world, model, m, threads, steps, warmup, size,
                                              port, q)) for r in range(world)]
    for p in procs:
        p.start()
    med, gather = q.get()
    for p in procs:
        p.join()
    print("torch ddp %s 3x%dx%d m=%d processes=%d threads=%d median_step_ms=%.1f img_s=%.1f "
          "allgather_ms=%.2f" % (model, size, size, m, world, threads, 1e3 * med, m / med,
                                 1e3 * gather))


if __name__ == "__main__":
    main()
