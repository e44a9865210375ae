/*
 * core/nn/conv_winograd_impl.h — 3×3, stride-1, pad-1 convolutions by Winograd's
 * F(m×m, 3×3) minimal filtering, m = 2 or 4 (core/nn/conv_winograd.c): (m + 2)²
 * multiplications per m×m outputs and channel pair instead of 9·m². Used by
 * core/nn/conv2d.c for the wide layers' forward, input gradient and weight
 * gradient. Not a public header.
 */
#ifndef ISIF_CONV_WINOGRAD_IMPL_H
#define ISIF_CONV_WINOGRAD_IMPL_H

#include <stddef.h>

struct team;

/* 1 when the shape is one this path computes: R = S = 3, stride 1, pad 1. */
int wino_applies(int R, int S, int stride, int pad);

/* The output tile m (2 or 4) the layers of H×W images use. */
int wino_tile(int H, int W);

/* Floats of workspace wino_conv needs for tile m and a team of `team` members. */
size_t wino_workspace(int N, int Cin, int H, int W, int Cout, int m, int team);

/*
 * y[N, Cout, H, W] (+ when accumulate, = otherwise) the 3×3 pad-1 stride-1
 * convolution of x[N, Cin, H, W] with
 *   flip 0: w[Cout, Cin, 3, 3] (a forward), or
 *   flip 1: w'[co, ci, r, s] = w[ci, co, 2 − r, 2 − s] for w[Cin, Cout, 3, 3]
 *           (the input gradient of a convolution with weights w, x = dY).
 * in m×m output tiles. Split over the team's members by samples (tm may be
 * NULL). ws: wino_workspace(N, Cin, H, W, Cout, m, team_size(tm)) floats.
 * prec: the GEMMs' enum gemm_prec (GEMM_BF16: bf16 transformed operands).
 */
void wino_conv(float *y, int accumulate, const float *x, const float *w, int flip, int N,
	       int Cin, int H, int W, int Cout, int m, float *ws, struct team *tm, int prec);

/* Floats of workspace wino_dw needs for tile m and a team of `team` members. */
size_t wino_dw_workspace(int N, int Cin, int H, int W, int Cout, int m, int team);

/*
 * dw[Cout, Cin, 3, 3] += the weight gradient of the 3×3 pad-1 stride-1
 * convolution of x[N, Cin, H, W] given its output gradient dy[N, Cout, H, W],
 * in m×m tiles. ws: wino_dw_workspace(N, Cin, H, W, Cout, m, team_size(tm))
 * floats.
 */
void wino_dw(float *dw, const float *dy, const float *x, int N, int Cin, int H, int W, int Cout,
	     int m, float *ws, struct team *tm, int prec);

#endif
