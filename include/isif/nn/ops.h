/*
 * isif/nn/ops.h — the numeric layer operations of the engine, each a pair of
 * free functions on float32 NCHW arrays. Letters are fixed throughout:
 *   N batch, C input channels, H×W input size, K output channels,
 *   R×S kernel size, P×Q output size, D feature width.
 * Conventions:
 *   - outputs come first, dimensions last;
 *   - forward functions overwrite their outputs;
 *   - backward functions OVERWRITE the input gradient (dx) and ADD (+=) into
 *     parameter gradients (dw, db, dgamma, dbeta), so a caller zeroes the
 *     parameter gradients once per step and residual branches sum dx
 *     themselves; dx may be NULL when nobody needs it;
 *   - `ws` is caller-provided scratch of the size the matching *_workspace()
 *     function returns (in floats); ops never allocate.
 * All functions are thread-safe on disjoint buffers and run on the calling
 * thread (the model runs multi-threaded variants, core/nn/ops_impl.h); the
 * convolution and the linear layer use the engine's GEMM (core/base/gemm.c).
 */
#ifndef ISIF_OPS_H
#define ISIF_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Output size of a convolution/pooling along one axis. */
static inline int isif_conv_out(int in, int k, int stride, int pad)
{
	return (in + 2 * pad - k) / stride + 1;
}

/* Scratch floats conv2d forward and backward need for these shapes (batch N). */
size_t isif_conv2d_workspace(int N, int C, int H, int W, int K, int R, int S,
			     int stride, int pad);

/* y[N,K,P,Q] = conv(x[N,C,H,W], w[K,C,R,S]), no bias, zero padding. */
void isif_conv2d_forward(float *y, const float *x, const float *w,
			 int N, int C, int H, int W, int K, int R, int S,
			 int stride, int pad, float *ws);

/* dx[N,C,H,W] = convᵀ(dy) (overwritten, may be NULL); dw[K,C,R,S] += dy ⋆ x. */
void isif_conv2d_backward(float *dx, float *dw, const float *dy,
			  const float *x, const float *w,
			  int N, int C, int H, int W, int K, int R, int S,
			  int stride, int pad, float *ws);

/*
 * Batch normalisation over (N, H·W) per channel, PyTorch semantics.
 * Train mode normalises with the batch mean and biased variance, saves
 * mean[C] and rstd[C] = 1/sqrt(var + eps) for backward, and updates
 * running_mean/var (may be NULL) with momentum using the unbiased variance:
 *   running = (1 − momentum)·running + momentum·batch_stat.
 */
void isif_bn_forward_train(float *y, float *mean, float *rstd, const float *x,
			   const float *gamma, const float *beta,
			   float *running_mean, float *running_var,
			   float momentum, float eps, int N, int C, int HW);

/* Eval mode: y = gamma·(x − running_mean)/sqrt(running_var + eps) + beta. */
void isif_bn_forward_eval(float *y, const float *x, const float *gamma,
			  const float *beta, const float *running_mean,
			  const float *running_var, float eps, int N, int C, int HW);

/* Backward of train mode: dx overwritten; dgamma, dbeta += . */
void isif_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
		      const float *x, const float *mean, const float *rstd,
		      const float *gamma, int N, int C, int HW);

/* y = max(x, 0) elementwise over n values (y may equal x). */
void isif_relu_forward(float *y, const float *x, size_t n);

/* dx = dy · [y > 0], using the forward output y (dx may equal dy). */
void isif_relu_backward(float *dx, const float *dy, const float *y, size_t n);

/* 2×2 max-pool, stride 2 (floor): y[N,C,H/2,W/2]; argmax[] (same size as y)
 * records the winning offset 0..3 inside each window for backward. */
void isif_maxpool2_forward(float *y, uint8_t *argmax, const float *x,
			   int N, int C, int H, int W);

/* dx[N,C,H,W] overwritten: dy routed to each window's winner, 0 elsewhere. */
void isif_maxpool2_backward(float *dx, const float *dy, const uint8_t *argmax,
			    int N, int C, int H, int W);

/* 3×3 max-pool, stride 2, padding 1 (the ImageNet ResNet stem's):
 * y[N,C,P,Q] with P = (H−1)/2+1; argmax[] records each winner's offset 0..8. */
void isif_maxpool3s2_forward(float *y, uint8_t *argmax, const float *x,
			     int N, int C, int H, int W);

/* dx[N,C,H,W] overwritten: dy routed to each window's winner, 0 elsewhere. */
void isif_maxpool3s2_backward(float *dx, const float *dy, const uint8_t *argmax,
			      int N, int C, int H, int W);

/* Global average pool: y[N,C] = mean of x[N,C,HW]. */
void isif_avgpool_forward(float *y, const float *x, int N, int C, int HW);

/* dx[N,C,HW] = dy[N,C] / HW (overwritten). */
void isif_avgpool_backward(float *dx, const float *dy, int N, int C, int HW);

/* y[N,K] = x[N,C]·wᵀ + b, w[K,C] as PyTorch's nn.Linear, b may be NULL. */
void isif_linear_forward(float *y, const float *x, const float *w,
			 const float *b, int N, int C, int K);

/* dx[N,C] overwritten (may be NULL); dw[K,C] += dyᵀx; db[K] += Σ dy (may be NULL). */
void isif_linear_backward(float *dx, float *dw, float *db, const float *dy,
			  const float *x, const float *w, int N, int C, int K);

/* Row-wise L2 normalisation y = x/‖x‖ of x[N,D]; norm[N] saved (‖x‖ guarded
 * below by 1e-12 so a zero row maps to zero instead of NaN). */
void isif_l2norm_forward(float *y, float *norm, const float *x, int N, int D);

/* dx = (dy − y·(yᵀdy)) / ‖x‖ per row (overwritten). */
void isif_l2norm_backward(float *dx, const float *dy, const float *y,
			  const float *norm, int N, int D);

/* y = a + b elementwise over n values (y may alias a or b). */
void isif_add_forward(float *y, const float *a, const float *b, size_t n);

#endif
