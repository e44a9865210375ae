/*
 * core/nn/conv_bn_impl.h — a batch norm fused with the convolution that feeds
 * it (the model executor's conv → BN pairs). Not a public header.
 *
 * Forward: BN's statistics merge, per channel and in sample order, each
 * run's (one sample's H·W values) mean and squared deviations; the
 * convolution computes those per-run statistics right after it writes a
 * chunk of its output, while the chunk is in cache, so BN reads its input
 * once (for the affine map) instead of twice. Same operations, same order.
 *
 * BN backward makes two passes over its output gradient g (dy·[mask > 0]),
 * its input x and the mask: one for Σg and Σg·x̂, one that writes
 *   dx = k·(g − a − x̂·b),   k = γ·rstd, a = Σg/n, b = Σg·x̂/n   (per channel),
 * which the convolution then reads back as its dY. Fused, the BN makes only
 * the first pass (its parameter gradients and k, a, b) and the convolution
 * evaluates the map while it copies dY chunk by chunk (core/nn/conv2d.c's
 * direct path), so dx is never written nor read: the same float operations
 * in the same order, one pass over three tensors fewer.
 */
#ifndef ISIF_CONV_BN_IMPL_H
#define ISIF_CONV_BN_IMPL_H

#include <stddef.h>

struct team;
struct conv_shape; /* nn/ops_impl.h */
struct bn_shape;

/* The BN's dx as a map of its saved tensors ([N][C][HW]; mask may be NULL)
 * and per-channel constants (coef: k[C], then a[C], then b[C]). */
struct bn_dx_map {
	const float *dy, *mask, *x;
	const float *mean, *rstd, *coef;
	int C, HW;
};

/*
 * isif_bn_backward's first pass: dγ += Σg·x̂, dβ += Σg, and the map (coef
 * gets 3·C floats) instead of dx. Splits channels over tm.
 */
void bn_backward_map(struct bn_dx_map *map, float *coef, float *dgamma, float *dbeta,
		     const float *dy, const float *mask, const float *x, const float *mean,
		     const float *rstd, const float *gamma, const struct bn_shape *s,
		     struct team *tm);

/* dst[0..len) = the map's dx at sample n, channel c, positions j0..j0 + len. */
void bn_dx_map_run(float *dst, const struct bn_dx_map *map, int n, int c, int j0, int len);

/* Whether conv2d_backward_bn_team can take a map for this layer's dY (the
 * direct path, core/nn/conv_direct_impl.h). */
int conv2d_takes_dy_map(const struct conv_shape *s);

/* conv2d_backward_team with dY given as a BN's dx map (dy->C == K,
 * dy->HW == P·Q). Returns 0, or −1 without doing anything when the layer
 * does not take a map (conv2d_takes_dy_map is 0). */
int conv2d_backward_bn_team(float *dx, int dx_accumulate, float *dw, const struct bn_dx_map *dy,
			    const float *x, const float *w, const struct conv_shape *s,
			    float *ws, struct team *tm);

/* A run's mean (Σr/n, float) and squared deviations from it (Σ(r − mean)²). */
void bn_run_stats(float *mean, float *m2, const float *r, int n);

/* bn_forward_train_ex with the runs' statistics given: run_mean and run_m2
 * [N][C] (element n·C + c for sample n, channel c). */
void bn_forward_train_runs(float *y, float *mean, float *rstd, const float *x,
			   const float *gamma, const float *beta, float *running_mean,
			   float *running_var, float momentum, float eps, const struct bn_shape *s,
			   int relu, const float *add, const float *run_mean, const float *run_m2,
			   struct team *tm);

/* conv2d_forward_team that also fills run_mean and run_m2 [N][K] with the
 * per-run statistics of y (bn_run_stats). Returns 0, or −1 without doing
 * anything when the layer is not on the direct path (conv2d_takes_dy_map). */
int conv2d_forward_runs_team(float *y, float *run_mean, float *run_m2, const float *x,
			     const float *w, const struct conv_shape *s, float *ws,
			     struct team *tm);

#endif
