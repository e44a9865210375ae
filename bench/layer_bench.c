/*
 * bench/layer_bench.c — where a training step's time goes: runs ISIF
 * training steps (forward of 2m random rows, loss, backward) with the
 * model's per-node timers on (core/nn/model_impl.h) and prints milliseconds
 * per step by node kind, forward and backward, and the achieved GFLOP/s of
 * the convolution layers alone (2 × multiply-adds forward, 2× that again
 * for the input and weight gradients). With one thread the node timers
 * count CPU time (a shared machine's other processes do not inflate them),
 * with a team wall time. A measurement, not a test.
 *
 *   make build/layer_bench
 *   build/layer_bench MODEL [channels 1] [size 28] [m 128] [threads 2] [iters 3] [-v] [-bf16]
 * -v adds one line per convolution; -bf16 runs the model at precision bf16
 * (isif_model_set_precision; fp32 where the CPU lacks AVX512_BF16).
 *
 *   build/layer_bench --conv N C H W K R stride pad [threads 1] [iters 9] [-bf16]
 * times one convolution alone (forward, and backward with dx and dw) on a
 * thread team: median milliseconds and GFLOP/s of each (-bf16: at
 * precision bf16, fp32 where the CPU lacks AVX512_BF16).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/model_impl.h"
#include "nn/ops_impl.h"
#include "base/team_impl.h"
#include "base/cpu_impl.h"
#include "base/gemm_impl.h"
#include "isif/base/clock.h"
#include "isif/nn/loss.h"
#include "isif/nn/ops.h"
#include "isif/base/rng.h"

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* --conv: one layer's forward and backward, median of iters runs each. */
static int conv_only(int argc, char **argv)
{
	int bf16 = argc > 10 && strcmp(argv[argc - 1], "-bf16") == 0;
	if (bf16)
		argc--;
	if (argc < 10) {
		fprintf(stderr, "usage: layer_bench --conv N C H W K R stride pad [threads] [iters]\n");
		return 2;
	}
	int N = atoi(argv[2]), C = atoi(argv[3]), H = atoi(argv[4]), W = atoi(argv[5]);
	int K = atoi(argv[6]), R = atoi(argv[7]), st = atoi(argv[8]), pad = atoi(argv[9]);
	int threads = argc > 10 ? atoi(argv[10]) : 1, iters = argc > 11 ? atoi(argv[11]) : 9;
	if (iters < 1 || iters > 1000)
		iters = 9;
	int P = isif_conv_out(H, R, st, pad), Q = isif_conv_out(W, R, st, pad);
	size_t nx = (size_t)N * C * H * W, ny = (size_t)N * K * P * Q, nw = (size_t)K * C * R * R;
	struct team *tm = team_create(threads);
	const struct conv_shape sh = { N, C, H, W, K, R, R, st, pad, bf16 ? GEMM_BF16 : GEMM_FP32 };
	size_t nws = conv2d_workspace_team(&sh, threads);
	float *x = malloc(sizeof(float) * nx), *dx = malloc(sizeof(float) * nx);
	float *y = malloc(sizeof(float) * ny), *w = malloc(sizeof(float) * nw);
	float *dw = calloc(nw, sizeof(float)), *ws = malloc(sizeof(float) * nws);
	double *tf = malloc(sizeof(double) * iters), *tb = malloc(sizeof(double) * iters);
	if (!tm || !x || !dx || !y || !w || !dw || !ws || !tf || !tb)
		return 1;
	struct isif_rng rng;
	isif_rng_seed(&rng, 1, 2);
	for (size_t i = 0; i < nx; i++)
		x[i] = isif_rng_uniform(&rng) * 2 - 1;
	for (size_t i = 0; i < nw; i++)
		w[i] = isif_rng_uniform(&rng) * 2 - 1;
	double cpu = 0;
	for (int it = -1; it < iters; it++) { /* it = -1 warms up */
		double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = isif_now_s();
		conv2d_forward_team(y, x, w, &sh, ws, tm);
		double t1 = isif_now_s();
		conv2d_backward_team(dx, 0, dw, y, x, w, &sh, ws, tm);
		double t2 = isif_now_s();
		if (it >= 0) {
			tf[it] = t1 - t0;
			tb[it] = t2 - t1;
			cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		}
	}
	qsort(tf, iters, sizeof *tf, cmp_double);
	qsort(tb, iters, sizeof *tb, cmp_double);
	double macs = (double)N * K * C * R * R * P * Q;
	printf("conv N%d C%d %dx%d K%d %dx%d/%d pad %d threads %d %s: fwd %.2f ms %.1f GF/s  "
	       "bwd %.2f ms %.1f GF/s  (CPU %.2f ms per iteration)\n", N, C, H, W, K, R, R, st, pad,
	       threads, bf16 && cpu_bf16() ? "bf16" : "fp32", 1e3 * tf[iters / 2], 2 * macs / tf[iters / 2] * 1e-9, 1e3 * tb[iters / 2],
	       4 * macs / tb[iters / 2] * 1e-9, 1e3 * cpu / iters);
	team_free(tm);
	free(x), free(dx), free(y), free(w), free(dw), free(ws), free(tf), free(tb);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--conv") == 0)
		return conv_only(argc, argv);
	static const char *kinds[] = { "conv", "bn", "relu", "maxpool", "avgpool",
				       "linear", "l2norm", "add", "maxpool3" };
	int bf16 = argc > 1 && strcmp(argv[argc - 1], "-bf16") == 0;
	if (bf16)
		argc--;
	int verbose = argc > 1 && strcmp(argv[argc - 1], "-v") == 0;
	if (verbose)
		argc--;
	if (argc < 2) {
		fprintf(stderr, "usage: layer_bench MODEL [C] [size] [m] [threads] [iters] [-v]\n");
		return 2;
	}
	const char *name = argv[1];
	int C = argc > 2 ? atoi(argv[2]) : 1, S = argc > 3 ? atoi(argv[3]) : 28;
	int m = argc > 4 ? atoi(argv[4]) : 128, threads = argc > 5 ? atoi(argv[5]) : 2;
	int iters = argc > 6 ? atoi(argv[6]) : 3, B = 2 * m, D = 128;
	struct isif_model *net;
	struct isif_error err = {0};
	if (isif_model_create(&net, name, C, D, 1, &err) ||
	    isif_model_set_threads(net, threads, &err) || isif_model_plan(net, B, S, S, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (bf16)
		isif_model_set_precision(net, ISIF_PREC_BF16);
	float *x = malloc(sizeof(float) * B * C * S * S), *dout = malloc(sizeof(float) * B * D);
	float *ws = malloc(sizeof(float) * isif_loss_workspace(B));
	struct isif_rng rng;
	isif_rng_seed(&rng, 1, 2);
	for (int i = 0; i < B * C * S * S; i++)
		x[i] = isif_rng_uniform(&rng) * 2 - 1;
	double step = 0, cpu = 0;
	for (int it = -1; it < iters; it++) { /* it = -1 warms up */
		const float *emb;
		net->profile = it >= 0;
		double t0 = isif_now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		isif_model_forward(net, x, B, S, S, true, 1, &emb, &err);
		isif_loss_forward_backward(dout, emb, B, D, 0.1f, ISIF_GRAD_REFERENCE, ws);
		isif_model_backward(net, dout, &err);
		if (it >= 0) {
			step += isif_now_s() - t0;
			cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		}
	}
	double tot[9][2] = { { 0 } }, conv_macs = 0, conv_s = 0;
	printf("%s %dx%dx%d m=%d threads=%d precision %s: %.1f ms per step (forward, loss, backward; "
	       "no SGD), %.1f ms CPU time\n", name, C, S, S, m, threads,
	       isif_model_precision(net) == ISIF_PREC_BF16 ? "bf16" : "fp32", 1e3 * step / iters,
	       1e3 * cpu / iters);
	for (int i = 0; i < net->n_nodes; i++) {
		const struct node *n = &net->nodes[i];
		double f = net->prof[i][0] / iters, b = net->prof[i][1] / iters;
		tot[n->kind][0] += f;
		tot[n->kind][1] += b;
		if (n->kind != NODE_CONV)
			continue;
		double macs = (double)B * n->K * n->C * n->R * n->S * n->P * n->Q;
		conv_macs += macs;
		conv_s += f + b;
		if (verbose)
			printf("  conv %3d C%4d K%4d %dx%d/%d %3dx%-3d fwd %7.1f ms %6.1f GF/s  bwd %7.1f ms %6.1f GF/s\n",
			       i, n->C, n->K, n->R, n->S, n->stride, n->H, n->W, 1e3 * f,
			       2 * macs / f * 1e-9, 1e3 * b, 4 * macs / b * 1e-9);
	}
	for (int k = 0; k < 9; k++)
		if (tot[k][0] + tot[k][1] > 0)
			printf("  %-8s fwd %8.1f ms  bwd %8.1f ms\n", kinds[k], 1e3 * tot[k][0],
			       1e3 * tot[k][1]);
	printf("conv layers: %.1f GFLOP/s (%.1f ms of %.1f ms per step); planned memory %.0f MiB\n",
	       6 * conv_macs / conv_s * 1e-9, 1e3 * conv_s, 1e3 * step / iters,
	       net->planned_bytes / 1048576.0);
	double own = 0, gsl = 0, mib = 1048576.0;
	for (int a = 1; a < net->n_acts; a++)
		if (net->acts[a].data && net->acts[a].dslot < 0)
			own += (double)B * net->acts[a].C * net->acts[a].H * net->acts[a].W * 4;
	for (int g = 0; g < net->n_slots; g++)
		gsl += net->slot_len[g] * 4.0;
	printf("memory: saved activations %.0f MiB, %d shared data slots, %d gradient slots %.0f MiB, "
	       "conv workspace %.0f MiB\n", own / mib, net->n_dslots, net->n_slots, gsl / mib,
	       net->workspace_len * 4.0 / mib);
	free(x), free(dout), free(ws);
	isif_model_free(net);
	return 0;
}
