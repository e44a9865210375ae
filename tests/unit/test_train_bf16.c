/*
 * tests/unit/test_train_bf16.c — a short training run at precision bf16
 * stays close to the same run in fp32: convnet, the same seed and data,
 * eight SGD steps of the ISIF loss; the loss of every step within 2% of
 * fp32's (bf16 operands err by about 2^-9 each, the ISIF loss of 2m = 32
 * rows near log(31) ≈ 3.4 moves by a few tenths over the steps). Checks
 * that the bf16 model really ran in bf16 where the CPU can, and that
 * ISIF_CPU=portable reports and runs fp32.
 */
#include <math.h>
#include <stdlib.h>

#include "base/cpu_impl.h"
#include "isif/nn/loss.h"
#include "isif/nn/model.h"
#include "isif/nn/optim.h"
#include "check.h"
#include "ops_testutil.h"

#define STEPS 8

/* Losses of `steps` training steps of convnet, m images, on fixed random rows. */
static void run(enum isif_precision p, int steps, int m, double *loss, enum isif_precision *got)
{
	int B = 2 * m, D = 32, S = 28;
	struct isif_model *net;
	struct isif_error err = {0};
	CHECK(isif_model_create(&net, "convnet", 1, D, 7, &err) == ISIF_OK);
	*got = isif_model_set_precision(net, p);
	float *x = tu_rand((size_t)B * S * S, 3);
	float *dout = malloc((size_t)B * D * sizeof(float));
	float *ws = malloc(isif_loss_workspace(B) * sizeof(float));
	struct isif_sgd opt;
	CHECK(isif_sgd_init(&opt, isif_model_num_params(net), 0.9f, 0, 5e-4f, false) == ISIF_OK);
	for (int s = 0; s < steps; s++) {
		const float *emb;
		CHECK(isif_model_forward(net, x, B, S, S, true, 1, &emb, &err) == ISIF_OK);
		loss[s] = isif_loss_forward_backward(dout, emb, B, D, 0.1f, ISIF_GRAD_REFERENCE, ws);
		isif_model_zero_grad(net);
		CHECK(isif_model_backward(net, dout, &err) == ISIF_OK);
		isif_sgd_step(&opt, isif_model_params(net), isif_model_grads(net), 0.03f);
	}
	isif_sgd_free(&opt);
	isif_model_free(net);
	free(x);
	free(dout);
	free(ws);
}

TEST(train_bf16_loss_stays_close_to_fp32)
{
	if (!cpu_bf16()) /* bf16 is fp32 then: train_bf16_portable_runs_fp32 */
		return;
	double l32[STEPS], l16[STEPS];
	enum isif_precision g32, g16;
	run(ISIF_PREC_FP32, STEPS, 16, l32, &g32);
	run(ISIF_PREC_BF16, STEPS, 16, l16, &g16);
	CHECK(g32 == ISIF_PREC_FP32);
	CHECK(g16 == ISIF_PREC_BF16);
	int differ = 0;
	for (int s = 0; s < STEPS; s++) {
		CHECK_MSG(fabs(l16[s] - l32[s]) <= 0.02 * fabs(l32[s]), "step %d: bf16 %.5f, fp32 %.5f",
			  s, l16[s], l32[s]);
		differ |= l16[s] != l32[s];
	}
	/* the loss moved (training happened) and bf16 was not fp32 in disguise */
	CHECK(fabs(l32[STEPS - 1] - l32[0]) > 1e-3);
	CHECK(differ);
}

TEST(train_bf16_portable_runs_fp32)
{
	/* the portable kernels are slow: two steps of m = 4 */
	cpu_force(CPU_PORTABLE);
	double l32[2], l16[2];
	enum isif_precision g32, g16;
	run(ISIF_PREC_FP32, 2, 4, l32, &g32);
	run(ISIF_PREC_BF16, 2, 4, l16, &g16);
	cpu_force(CPU_AUTO);
	CHECK(g16 == ISIF_PREC_FP32);
	for (int s = 0; s < 2; s++)
		CHECK_MSG(l16[s] == l32[s], "step %d: %.9g vs %.9g", s, l16[s], l32[s]);
}
