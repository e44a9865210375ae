#!/usr/bin/env python3
"""Independent reference values for tests/unit/test_loss.c.

Plain python3 (math and struct only). Run: python3 tests/unit/ref/loss_ref.py
It prints the constants that test_loss.c hard-codes.

The loss is written straight from DESIGN.md "The method", in log-sum-exp
form so that it is exact in double even at tau = 0.01:
  log P_i        = s_ip - LSE_{j != i} s_ij
  log(1 - Q_ij)  = LSE_{k not in {i, j}} s_ik - LSE_{k != i} s_ik
  L = -(1/B) [sum_i log P_i + sum_i sum_{j not in {i, p(i)}} log(1 - Q_ij)]
with s_ij = (x_i . x_j)/tau. Inputs are rounded to float32 first, so the
values are those of the exact float inputs the C test passes.

Gradients: central differences in double (h = 1e-6) of
  L(Xrow, Xcol), s_ij = (xrow_i . xcol_j)/tau, perturbing Xrow only
  ("reference" mode: the column copy is held constant), and of
  L(X) = L(X, X) ("full" mode).
"""
import math
import struct


def f32(v):
    return struct.unpack('f', struct.pack('f', v))[0]


def lse(vals):
    mx = max(vals)
    return mx + math.log(sum(math.exp(v - mx) for v in vals))


def loss(xrow, xcol, tau):
    B = len(xrow)
    m = B // 2
    total = 0.0
    for i in range(B):
        p = (i + m) % B
        s = [sum(a * b for a, b in zip(xrow[i], xcol[j])) / tau for j in range(B)]
        lz = lse([s[j] for j in range(B) if j != i])
        total += s[p] - lz
        for j in range(B):
            if j in (i, p):
                continue
            total += lse([s[k] for k in range(B) if k not in (i, j)]) - lz
    return -total / B


def grad(x, tau, full, h=1e-6):
    g = []
    for i in range(len(x)):
        row = []
        for d in range(len(x[0])):
            xp = [list(r) for r in x]
            xm = [list(r) for r in x]
            xp[i][d] += h
            xm[i][d] -= h
            if full:
                hi, lo = loss(xp, xp, tau), loss(xm, xm, tau)
            else:
                hi, lo = loss(xp, x, tau), loss(xm, x, tau)
            row.append((hi - lo) / (2 * h))
        g.append(row)
    return g


def deg(a):
    return [f32(math.cos(math.radians(a))), f32(math.sin(math.radians(a)))]


# Case A/B: B = 4, D = 2, unit vectors at 0, 90, 30, 120 degrees
# (partners 0<->2 and 1<->3).
XA = [deg(0), deg(90), deg(30), deg(120)]
# Case C: B = 6, D = 3, rational unit vectors (partners i <-> i+3).
XC = [[1, 0, 0], [0, 1, 0], [0, 0, 1],
      [f32(0.6), f32(0.8), 0], [0, f32(0.6), f32(0.8)], [f32(0.8), 0, f32(0.6)]]
# Case D: B = 4, D = 2, tau = 0.01; row 1 is a near-duplicate negative of
# row 0 (1 degree apart), so Q_01 = 1 - O(e^-100): 1 - Q cancels naively.
XD = [deg(0), deg(1), deg(90), deg(200)]

if __name__ == '__main__':
    print('A  B=4 tau=0.5  L = %.12g' % loss(XA, XA, 0.5))
    print('B  B=4 tau=0.1  L = %.12g' % loss(XA, XA, 0.1))
    print('C  B=6 tau=0.2  L = %.12g' % loss(XC, XC, 0.2))
    print('D  B=4 tau=0.01 L = %.12g' % loss(XD, XD, 0.01))
    for name, full in (('reference', False), ('full', True)):
        g = grad(XA, 0.5, full)
        print('A  dL/dx %s: %s' % (name, ', '.join('%.10g' % v for r in g for v in r)))
    for name, full in (('reference', False), ('full', True)):
        g = grad(XD, 0.01, full)
        print('D  dL/dx %s: %s' % (name, ', '.join('%.10g' % v for r in g for v in r)))
