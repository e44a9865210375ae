#!/usr/bin/python3
"""The ring-allreduce cost model of docs/SCALING.md: projected parallel
efficiency of data-parallel `isif train` on N nodes for a measured compute
time per step. Prints the doc's tables; change the inputs and rerun.

Per step, with P parameters (S = 4P bytes of gradient), a global batch of
m images (2m rows), D-float embeddings, N nodes, link bandwidth BW (bytes/s,
90% of the line rate) and per-message latency ALPHA:
  compute    T1 / N                       (T1: one node's step for the whole batch)
  allgather  (N-1)/N * 2m*D*4 / BW + (N-1)*ALPHA
  allreduce  2(N-1)/N * S / BW + 2(N-1)*ALPHA      (ring: reduce-scatter + allgather)
  stop flag  2*log2(N)*ALPHA                      (one int, recursive doubling)
  efficiency compute / (compute + communication)  (nothing overlapped: ours today)

Usage: scaling_model.py [T1_RESNET20_S T1_RESNET18_S [CORES_PER_NODE]]
T1 defaults: this 2-core machine unloaded (docs/PERFORMANCE.md: resnet18 3x32x32
67.5 img/s; resnet20 720 img/s at 1x28x28, scaled by pixels to 3x32x32);
with CORES_PER_NODE the node is assumed that many times faster per 2 cores.
"""
import math
import sys

MODELS = {"resnet20": 280144, "resnet18": 11234496}   # parameters (isif init + safetensors)
M, D, ALPHA = 128, 128, 30e-6
LINKS = {"10GbE": 10e9, "25GbE": 25e9, "100GbE": 100e9}
NODES = [2, 4, 8, 16, 32, 64]


def step_parts(t1, params, n, bw):
    bw = 0.9 * bw / 8
    comp = t1 / n
    gather = (n - 1) / n * 2 * M * D * 4 / bw + (n - 1) * ALPHA
    reduce = 2 * (n - 1) / n * 4 * params / bw + 2 * (n - 1) * ALPHA
    flag = 2 * math.log2(n) * ALPHA
    return comp, gather + reduce + flag


def main():
    t1 = {"resnet20": 0.23, "resnet18": 1.90}
    if len(sys.argv) >= 3:
        t1 = {"resnet20": float(sys.argv[1]), "resnet18": float(sys.argv[2])}
    speed = float(sys.argv[3]) / 2 if len(sys.argv) >= 4 else 1.0
    for model, params in MODELS.items():
        t = t1[model] / speed
        print(f"\n{model}: {params} parameters ({4 * params / 1e6:.2f} MB of gradient), "
              f"T1 = {t:.3f} s per step of m = {M} on one node")
        print("| link | " + " | ".join(f"N={n}" for n in NODES) + " |")
        print("|---|" + "---|" * len(NODES))
        for name, bw in LINKS.items():
            cells = []
            for n in NODES:
                comp, comm = step_parts(t, params, n, bw)
                cells.append(f"{100 * comp / (comp + comm):.0f}%")
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
