/*
 * core/cli/cmd_bench.c — `isif bench`: time training steps (forward of 2m
 * rows, ISIF loss, backward, SGD) of a model on random data, and report the
 * median step time, images/s, achieved GFLOP/s and the peak RSS; or, with
 * --embed N, time the evaluation forward (BN in eval mode) over N random
 * images. Prints figures; never judges them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "isif/base/clock.h"
#include "isif/base/cpu.h"
#include "isif/nn/loss.h"
#include "isif/nn/optim.h"
#include "isif/base/rng.h"

static const char bench_help[] =
	"usage: isif bench --model M [--batch 128] [--channels 1] [--size 28]\n"
	"                  [--iters 5] [--warmup 1] [--threads 0] [--embed N]\n"
	"                  [--precision fp32|bf16]\n"
	"Times ISIF training steps (2×batch rows per step: forward, loss, backward,\n"
	"SGD) on random inputs and prints the median step time, source images/s,\n"
	"GFLOP/s (2 × multiply-adds of forward + 2× that for backward) and the\n"
	"process's peak RSS. With --embed N: times the evaluation forward (BN in\n"
	"eval mode) of N random images in batches of --batch (default 256) instead.\n"
	"--threads: the model's thread team (0: one per online core).\n"
	"--precision bf16: bf16 operands in the convolutions' and linear layer's\n"
	"GEMMs (AVX512_BF16; where the CPU lacks it the line says fp32).\n\n"
	"Both name the SIMD kernels that ran: avx512 where the CPU has it, else\n"
	"portable (the environment variable ISIF_CPU=portable forces those).\n";

static long peak_rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/* Eval-mode forward of n random images in batches; prints seconds and img/s. */
static int bench_embed(struct isif_model *net, const char *model, long n, int batch,
		       int C, int S)
{
	size_t img = (size_t)C * S * S;
	float *x = malloc((size_t)batch * img * sizeof(float));
	struct isif_error err = {0};
	if (!x) {
		fprintf(stderr, "isif bench: out of memory\n");
		return 1;
	}
	struct isif_rng rng;
	isif_rng_seed(&rng, 1, 3);
	for (size_t i = 0; i < (size_t)batch * img; i++)
		x[i] = isif_rng_uniform(&rng) * 2 - 1;
	const float *emb;
	if (isif_model_forward(net, x, batch, S, S, false, 1, &emb, &err)) { /* warm-up */
		fprintf(stderr, "isif bench: %s\n", err.msg);
		free(x);
		return 1;
	}
	double t0 = isif_now_s();
	for (long done = 0; done < n; done += batch) {
		int count = (int)(n - done < batch ? n - done : batch);
		isif_model_forward(net, x, count, S, S, false, 1, &emb, &err);
	}
	double t = isif_now_s() - t0;
	printf("%-9s %dx%dx%d embed n=%ld batch=%d  %.3f s  %9.1f img/s  peak RSS %ld MiB  threads %d  precision %s  kernels %s\n",
	       model, C, S, S, n, batch, t, n / t, peak_rss_mib(), isif_model_threads(net),
	       isif_model_precision(net) == ISIF_PREC_BF16 ? "bf16" : "fp32", isif_cpu_kernels());
	free(x);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int cmd_bench(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(bench_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *model = cli_opt(&a, "--model"), *v;
	long m = 128, C = 1, S = 28, iters = 5, warmup = 1, threads = 0, embed = 0;
	int rc = 2;
	if ((v = cli_opt(&a, "--batch")) && cli_int("--batch", v, 2, 1024, &m))
		goto out;
	if ((v = cli_opt(&a, "--channels")) && cli_int("--channels", v, 1, 64, &C))
		goto out;
	if ((v = cli_opt(&a, "--size")) && cli_int("--size", v, 16, 512, &S))
		goto out;
	if ((v = cli_opt(&a, "--iters")) && cli_int("--iters", v, 1, 1000, &iters))
		goto out;
	if ((v = cli_opt(&a, "--warmup")) && cli_int("--warmup", v, 0, 100, &warmup))
		goto out;
	if ((v = cli_opt(&a, "--threads")) && cli_int("--threads", v, 0, 256, &threads))
		goto out;
	if ((v = cli_opt(&a, "--embed")) && cli_int("--embed", v, 1, 10000000, &embed))
		goto out;
	const char *prec = cli_opt(&a, "--precision");
	if (prec && strcmp(prec, "fp32") != 0 && strcmp(prec, "bf16") != 0) {
		fprintf(stderr, "isif bench: --precision must be fp32 or bf16\n");
		goto out;
	}
	if (embed && !cli_opt(&a, "--batch"))
		m = 256;
	if (cli_check_unused(&a, "bench"))
		goto out;
	if (!model) {
		fprintf(stderr, "isif bench: --model is required\n%s", bench_help);
		goto out;
	}
	if (threads == 0)
		threads = cli_threads();
	rc = 1;
	struct isif_model *net;
	struct isif_error err = {0};
	if (isif_model_create(&net, model, (int)C, 128, 1, &err)) {
		fprintf(stderr, "isif bench: %s\n", err.msg);
		goto out;
	}
	if (isif_model_set_threads(net, (int)threads, &err)) {
		fprintf(stderr, "isif bench: %s\n", err.msg);
		isif_model_free(net);
		goto out;
	}
	if (prec && strcmp(prec, "bf16") == 0)
		isif_model_set_precision(net, ISIF_PREC_BF16);
	if (embed) {
		rc = bench_embed(net, model, embed, (int)m, (int)C, (int)S);
		isif_model_free(net);
		goto out;
	}
	int B = 2 * (int)m, D = 128;
	size_t in_len = (size_t)B * C * S * S;
	float *x = malloc(in_len * sizeof(float)), *dout = malloc((size_t)B * D * sizeof(float));
	float *ws = malloc(isif_loss_workspace(B) * sizeof(float));
	double *times = malloc((size_t)iters * sizeof(double));
	struct isif_sgd opt;
	struct isif_rng rng;
	isif_rng_seed(&rng, 1, 2);
	for (size_t i = 0; x && i < in_len; i++)
		x[i] = isif_rng_uniform(&rng) * 2 - 1;
	if (!x || !dout || !ws || !times ||
	    isif_sgd_init(&opt, isif_model_num_params(net), 0.9f, 0, 5e-4f, false) ||
	    isif_model_plan(net, B, (int)S, (int)S, &err)) {
		fprintf(stderr, "isif bench: out of memory\n");
		goto done;
	}
	for (long it = 0; it < warmup + iters; it++) {
		const float *emb;
		double t0 = isif_now_s();
		isif_model_forward(net, x, B, (int)S, (int)S, true, 1, &emb, &err);
		isif_loss_forward_backward(dout, emb, B, D, 0.1f, ISIF_GRAD_REFERENCE, ws);
		isif_model_zero_grad(net);
		isif_model_backward(net, dout, &err);
		isif_sgd_step(&opt, isif_model_params(net), isif_model_grads(net), 0.03f);
		if (it >= warmup)
			times[it - warmup] = isif_now_s() - t0;
	}
	qsort(times, (size_t)iters, sizeof(double), cmp_double);
	double median = times[iters / 2];
	double flops = 3 * 2 * isif_model_flops_per_image(net, (int)S, (int)S) * B;
	printf("%-9s %dx%ldx%ld m=%-4ld step %8.1f ms (min %.1f, max %.1f)  %7.1f img/s  %6.1f GFLOP/s  peak RSS %ld MiB  threads %d  precision %s  kernels %s\n",
	       model, (int)C, S, S, m, 1e3 * median, 1e3 * times[0], 1e3 * times[iters - 1],
	       m / median, flops / median / 1e9, peak_rss_mib(), isif_model_threads(net),
	       isif_model_precision(net) == ISIF_PREC_BF16 ? "bf16" : "fp32", isif_cpu_kernels());
	rc = 0;
	isif_sgd_free(&opt);
done:
	free(x);
	free(dout);
	free(ws);
	free(times);
	isif_model_free(net);
out:
	cli_args_free(&a);
	return rc;
}
