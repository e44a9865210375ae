/*
 * core/nn/lr_schedule.c — the learning rate as a function of a fractional epoch
 * (epoch index + fraction of its steps done): constant, step (milestones
 * with absolute factors) or cosine, with an optional linear warm-up on top.
 * Pure functions of the schedule; thread-safe.
 */
#include "isif/nn/optim.h"

#include <math.h>

/* Step: lr = base·factors[i] for the last milestones[i] ≤ ⌊epoch⌋, base
 * before the first. Factors are absolute, not cumulative: the paper's
 * 0.03 with ×0.1 at 120 and ×0.05 at 160 gives 0.003, then 0.0015. */
static double step_lr(const struct isif_lr_schedule *s, double epoch)
{
	double e = floor(epoch), lr = s->base_lr;
	int n = s->n_milestones;
	if (n > ISIF_LR_MAX_MILESTONES)
		n = ISIF_LR_MAX_MILESTONES;
	for (int i = 0; i < n; i++)
		if ((double)s->milestones[i] <= e)
			lr = s->base_lr * s->factors[i];
	return lr;
}

/* Cosine (PyTorch CosineAnnealingLR's closed form, per fractional epoch):
 *   lr = min + (base − min)·(1 + cos(π·t/T))/2,  t = epoch clamped to [0, T].
 * Past T it stays at min_lr (PyTorch's closed form would rise again). */
static double cosine_lr(const struct isif_lr_schedule *s, double epoch)
{
	double T = s->total_epochs;
	if (!(T > 0))
		return s->base_lr;
	double t = fmin(fmax(epoch, 0.0), T);
	return s->min_lr + (s->base_lr - s->min_lr) * (1 + cos(M_PI * t / T)) / 2;
}

double isif_lr_at(const struct isif_lr_schedule *s, double epoch)
{
	double lr;
	switch (s->type) {
	case ISIF_LR_STEP:
		lr = step_lr(s, epoch);
		break;
	case ISIF_LR_COSINE:
		lr = cosine_lr(s, epoch);
		break;
	case ISIF_LR_CONSTANT:
	default:
		lr = s->base_lr;
		break;
	}
	/* Linear warm-up from 0: lr·epoch/warmup while epoch < warmup. */
	if (s->warmup_epochs > 0 && epoch < s->warmup_epochs)
		lr *= fmax(epoch, 0.0) / s->warmup_epochs;
	return lr;
}
