/*
 * isif/nn/optim.h — SGD with momentum (PyTorch's torch.optim.SGD update rule)
 * and learning-rate schedules. The optimizer works on one contiguous
 * parameter block and its gradient block.
 */
#ifndef ISIF_OPTIM_H
#define ISIF_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct isif_sgd {
	float momentum, dampening, weight_decay;
	bool nesterov;
	size_t n;          /* number of parameters */
	float *buf;        /* momentum buffers, n floats, owned */
	bool has_buf;      /* false until the first step (PyTorch: buf = g then) */
	int64_t steps;     /* steps taken */
};

/* Allocates the momentum buffer for n parameters. Returns ISIF_OK or ISIF_ENOMEM. */
enum isif_rc isif_sgd_init(struct isif_sgd *opt, size_t n, float momentum,
		  float dampening, float weight_decay, bool nesterov);

/* Frees the buffer (opt itself is the caller's). */
void isif_sgd_free(struct isif_sgd *opt);

/*
 * One step at learning rate lr, exactly as PyTorch:
 *   g = grad + wd·p;  buf = g (first step) or momentum·buf + (1−dampening)·g;
 *   g = nesterov ? g + momentum·buf : buf;  p −= lr·g.
 */
void isif_sgd_step(struct isif_sgd *opt, float *params, const float *grads,
		   float lr);

/* The same update of elements [from, n) only; the others, their momentum
 * included, stay as they are (a frozen backbone: init.freeze_epochs). */
void isif_sgd_step_from(struct isif_sgd *opt, float *params, const float *grads,
			float lr, size_t from);

enum isif_lr_type { ISIF_LR_CONSTANT = 0, ISIF_LR_STEP, ISIF_LR_COSINE };

#define ISIF_LR_MAX_MILESTONES 16

struct isif_lr_schedule {
	enum isif_lr_type type;
	double base_lr;
	int n_milestones;                           /* step: ascending epochs */
	int milestones[ISIF_LR_MAX_MILESTONES];
	double factors[ISIF_LR_MAX_MILESTONES];     /* lr = base·factors[i] from milestones[i] on (not cumulative) */
	int total_epochs;                           /* cosine: decays to min_lr at total_epochs */
	double min_lr;
	double warmup_epochs;                       /* linear warm-up from 0 over this many epochs (0: none) */
};

/* Learning rate at a fractional epoch (epoch index + fraction of its steps done). */
double isif_lr_at(const struct isif_lr_schedule *s, double epoch);

#endif
