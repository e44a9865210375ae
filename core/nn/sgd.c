/*
 * core/nn/sgd.c — stochastic gradient descent with momentum, the update rule of
 * PyTorch's torch.optim.SGD, over one contiguous parameter block. Learning
 * rates come from the caller (core/nn/lr_schedule.c); this file keeps only the
 * momentum buffer.
 */
#include "isif/nn/optim.h"

#include <stdint.h>
#include <stdlib.h>

#include "isif/base/common.h"

enum isif_rc isif_sgd_init(struct isif_sgd *opt, size_t n, float momentum,
		  float dampening, float weight_decay, bool nesterov)
{
	*opt = (struct isif_sgd){ .momentum = momentum, .dampening = dampening,
				  .weight_decay = weight_decay,
				  .nesterov = nesterov, .n = n };
	if (n > SIZE_MAX / sizeof(float))
		return ISIF_ENOMEM;
	if (n == 0)
		return ISIF_OK;
	opt->buf = calloc(n, sizeof(float));
	return opt->buf ? ISIF_OK : ISIF_ENOMEM;
}

void isif_sgd_free(struct isif_sgd *opt)
{
	free(opt->buf);
	opt->buf = NULL;
	opt->has_buf = false;
}

/*
 * PyTorch, per element (momentum μ, dampening δ, weight decay λ):
 *   g = grad + λ·p
 *   μ ≠ 0:  buf = g on the first step, else buf = μ·buf + (1 − δ)·g;
 *           g = nesterov ? g + μ·buf : buf
 *   p = p − lr·g
 * With μ = 0 PyTorch keeps no buffer and uses g as is (δ plays no part).
 */
void isif_sgd_step(struct isif_sgd *opt, float *params, const float *grads,
		   float lr)
{
	isif_sgd_step_from(opt, params, grads, lr, 0);
}

void isif_sgd_step_from(struct isif_sgd *opt, float *params, const float *grads,
			float lr, size_t from)
{
	const float mu = opt->momentum, wd = opt->weight_decay;
	const float keep = 1.0f - opt->dampening;
	const bool use_buf = mu != 0.0f && opt->buf;
	const bool first = !opt->has_buf;

	for (size_t i = from; i < opt->n; i++) {
		float g = grads[i];
		if (wd != 0.0f)
			g += wd * params[i];
		if (use_buf) {
			float b = first ? g : mu * opt->buf[i] + keep * g;
			opt->buf[i] = b;
			g = opt->nesterov ? g + mu * b : b;
		}
		params[i] -= lr * g;
	}
	if (use_buf)
		opt->has_buf = true;
	opt->steps++;
}
