/*
 * core/nn/ops_impl.h — internal variants of the layer ops (include/isif/nn/ops.h)
 * that the model executor uses: convolution on a team of threads, and the
 * fused BN + ReLU pair. Not a public header.
 *
 * Threads: the public ops run on the calling thread. These variants split
 * their work over a thread team (team_impl.h; NULL runs on the caller). The
 * convolution splits the batch and needs the workspace
 * conv2d_workspace_team() gives for the team's size; results depend on the
 * team size only through the order in which the weight gradient sums the
 * members' shares. The others split channels, planes or elements and give
 * the same results on any team.
 *
 * Fusion: BN and the residual add can apply the ReLU that follows them, and
 * the backward ops can take a ReLU mask and add into a gradient that already
 * holds another contribution, so the model needs neither the pre-ReLU
 * tensors nor scratch for summing gradients.
 */
#ifndef ISIF_OPS_IMPL_H
#define ISIF_OPS_IMPL_H

#include <stddef.h>
#include <stdint.h>

struct team;

/* A convolution's shapes, the letters of isif/nn/ops.h: N samples of
 * C×H×W, K filters of C×R×S, stride, zero padding pad. */
struct conv_shape {
	int N, C, H, W, K, R, S, stride, pad;
	int prec;   /* enum gemm_prec of its GEMMs (0, GEMM_FP32, when not set) */
};

/* A batch norm's shapes: N samples of C channels of HW values. */
struct bn_shape {
	int N, C, HW;
};

size_t conv2d_workspace_team(const struct conv_shape *s, int threads);

void conv2d_forward_team(float *y, const float *x, const float *w,
			 const struct conv_shape *s, float *ws, struct team *tm);

/* As isif_conv2d_backward, but dx += its gradient when dx_accumulate. */
void conv2d_backward_team(float *dx, int dx_accumulate, float *dw, const float *dy,
			  const float *x, const float *w, const struct conv_shape *s,
			  float *ws, struct team *tm);

/* isif_bn_forward_train / _eval, then y += add (a residual addend, when not
 * NULL; it may alias y), then y = max(y, 0) when relu is set. */
void bn_forward_train_ex(float *y, float *mean, float *rstd, const float *x,
			 const float *gamma, const float *beta,
			 float *running_mean, float *running_var,
			 float momentum, float eps, const struct bn_shape *s, int relu,
			 const float *add, struct team *tm);
void bn_forward_eval_ex(float *y, const float *x, const float *gamma,
			const float *beta, const float *running_mean,
			const float *running_var, float eps, const struct bn_shape *s, int relu,
			const float *add, struct team *tm);

/*
 * isif_bn_backward of g = dy, or of g = dy·[mask > 0] when mask is given
 * (the output of a ReLU fused after the BN, or after a residual add the BN
 * output feeds); dx += instead of = when accumulate.
 */
void bn_backward_ex(float *dx, int accumulate, float *dgamma, float *dbeta,
		    const float *dy, const float *mask, const float *x,
		    const float *mean, const float *rstd, const float *gamma,
		    const struct bn_shape *s, struct team *tm);

/* bn_backward_ex's dx alone, with the sums given: ab = [Σg/n; Σg·x̂/n], C
 * each, over the whole batch (synchronised BN: summed over processes). */
void bn_backward_dx_ex(float *dx, int accumulate, const float *dy, const float *mask,
		       const float *x, const float *mean, const float *rstd, const float *gamma,
		       const float *ab, const struct bn_shape *s, struct team *tm);

/* dx (+)= dy·[y > 0]. */
void relu_backward_ex(float *dx, int accumulate, const float *dy, const float *y, size_t n,
		      struct team *tm);

/* y = max(x, 0); with mask (frozen kinks, gradient checks only): y = mask ? x : 0. */
void relu_forward_ex(float *y, const float *x, const uint8_t *mask, size_t n, struct team *tm);

/* y = a + b, or max(a + b, 0) when relu is set (y may alias a or b). */
void add_relu_forward(float *y, const float *a, const float *b, size_t n, int relu,
		      struct team *tm);

/* dst += src (accumulate) or dst = src. */
void grad_add(float *dst, int accumulate, const float *src, size_t n, struct team *tm);

/* isif_maxpool2_forward / _backward split over planes; backward adds into
 * dx when accumulate. */
void maxpool2_forward_ex(float *y, uint8_t *argmax, const float *x,
			 int N, int C, int H, int W, struct team *tm);
void maxpool2_backward_ex(float *dx, int accumulate, const float *dy, const uint8_t *argmax,
			  int N, int C, int H, int W, struct team *tm);

/* The same for the 3×3/2 pad-1 max-pool (pool3.c); _frozen takes the
 * given winners instead of each window's maximum (gradient checks). */
void maxpool3s2_forward_ex(float *y, uint8_t *argmax, const float *x,
			   int N, int C, int H, int W, struct team *tm);
void maxpool3s2_backward_ex(float *dx, int accumulate, const float *dy, const uint8_t *argmax,
			    int N, int C, int H, int W, struct team *tm);
void maxpool3s2_frozen(float *y, uint8_t *argmax, const float *x, const uint8_t *winners,
		       int N, int C, int H, int W);

/* Backward ops that add their input gradient into dx when accumulate
 * (isif_avgpool_backward, isif_linear_backward, isif_l2norm_backward). */
void avgpool_backward_ex(float *dx, int accumulate, const float *dy, int N, int C, int HW);
void l2norm_backward_ex(float *dx, int accumulate, const float *dy, const float *y,
			const float *norm, int N, int D);

/* The linear layer's products with caller scratch ws of linear_workspace(N,
 * C, K) floats (ws NULL: in small tiles with scratch on the stack, same
 * bits). Both on the calling thread. prec: the products' enum gemm_prec
 * (GEMM_BF16 needs ws). */
size_t linear_workspace(int N, int C, int K);
void linear_forward_ws(float *y, const float *x, const float *w, const float *b,
		       int N, int C, int K, float *ws, int prec);
void linear_backward_ex(float *dx, int accumulate, float *dw, float *db, const float *dy,
			const float *x, const float *w, int N, int C, int K, float *ws, int prec);

#endif
