/*
 * core/cli/cmd_probe.c — `isif probe`: the linear probe (isif/eval/probe.h) of
 * any checkpoint: a multinomial logistic regression fitted on the frozen
 * embedding, and one on the pooled backbone features, of the train split;
 * test top-1 of each.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "isif/data/dataset.h"
#include "isif/eval/embed.h"
#include "isif/eval/probe.h"

static const char probe_help[] =
	"usage: isif probe --dataset NAME|PATH [--format F] --checkpoint CK\n"
	"                  [--train-subset N] [--lambda 1e-4] [--iters 100]\n"
	"Embeds train and test without augmentation (BN in eval mode), fits an L2\n"
	"logistic regression on the train split's embedding and, separately, on its\n"
	"pooled backbone features (full-batch L-BFGS, standardised features, fixed λ\n"
	"and iteration budget), and prints the test top-1 of each.\n"
	"  --train-subset N  fit on the same N train images `isif train --train-subset N` uses\n"
	"  --lambda X        L2 weight on the classifier's weights (default 1e-4)\n"
	"  --iters N         L-BFGS iterations (default 100)\n";

static int fit(const char *what, const float *x, const float *xt, int d,
	       const struct isif_dataset *ds, const struct isif_probe_options *o)
{
	struct isif_probe_result r;
	struct isif_error err = {0};
	if (isif_linear_probe(x, ds->train.labels, ds->train.n, xt, ds->test.labels, ds->test.n,
			      d, ds->num_classes, o, &r, &err)) {
		fprintf(stderr, "isif probe: %s\n", err.msg);
		return 1;
	}
	printf("probe_top1 %.4f train_top1 %.4f (%s, %d dims, %d iterations, %.1f s)\n", r.top1,
	       r.train_top1, what, d, r.iters, r.seconds);
	return 0;
}

int cmd_probe(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(probe_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *dataset = cli_opt(&a, "--dataset"), *format = cli_opt(&a, "--format");
	const char *ck = cli_opt(&a, "--checkpoint"), *sub_s = cli_opt(&a, "--train-subset");
	const char *lambda_s = cli_opt(&a, "--lambda"), *iters_s = cli_opt(&a, "--iters");
	long subset = 0, iters = ISIF_PROBE_ITERS;
	double lambda = ISIF_PROBE_LAMBDA;
	struct isif_dataset ds = { 0 };
	struct isif_model *m = NULL;
	float *e = NULL, *et = NULL, *f = NULL, *ft = NULL;
	int rc = 2;
	struct isif_error err = {0};
	if (cli_check_unused(&a, "probe") ||
	    (sub_s && cli_int("--train-subset", sub_s, 0, 100000000, &subset)) ||
	    (lambda_s && cli_double("--lambda", lambda_s, 0, 1e3, &lambda)) ||
	    (iters_s && cli_int("--iters", iters_s, 1, 100000, &iters)))
		goto out;
	if (!dataset || !ck) {
		fprintf(stderr, "isif probe: needs --dataset and --checkpoint\n%s", probe_help);
		goto out;
	}
	rc = 1;
	int fmt = isif_dataset_format_parse(format ? format : "auto");
	if (fmt < 0 || isif_dataset_load(&ds, dataset, fmt, NULL, &err)) {
		fprintf(stderr, "isif probe: %s\n", fmt < 0 ? "unknown --format" : err.msg);
		goto out;
	}
	if (subset > 0)
		cli_keep_subset(&ds.train, subset);
	if (ds.num_classes < 2 || ds.test.n < 1) {
		fprintf(stderr, "isif probe: %s needs labels of 2 or more classes and a test split\n",
			dataset);
		goto out;
	}
	int crop = 0; /* the checkpoint's centre crop (augment.random_crop), 0: none */
	if (cli_load_model(ck, NULL, &m, &crop))
		goto out;
	int D = isif_model_embed_dim(m), F = isif_model_feature_dim(m);
	e = malloc((size_t)ds.train.n * D * sizeof(float));
	et = malloc((size_t)ds.test.n * D * sizeof(float));
	f = malloc((size_t)ds.train.n * F * sizeof(float));
	ft = malloc((size_t)ds.test.n * F * sizeof(float));
	if (!e || !et || !f || !ft) {
		fprintf(stderr, "isif probe: out of memory for the features\n");
		goto out;
	}
	if (isif_embed_split_features(m, &ds.train, crop, ds.mean, ds.std, 256, e, f, &err) ||
	    isif_embed_split_features(m, &ds.test, crop, ds.mean, ds.std, 256, et, ft, &err)) {
		fprintf(stderr, "isif probe: %s\n", err.msg);
		goto out;
	}
	struct isif_probe_options o = { .lambda = lambda > 0 ? lambda : -1, .iters = (int)iters,
					.threads = cli_threads() };
	if (fit("embedding", e, et, D, &ds, &o) || fit("backbone", f, ft, F, &ds, &o))
		goto out;
	rc = 0;
out:
	free(e);
	free(et);
	free(f);
	free(ft);
	isif_model_free(m);
	isif_dataset_free(&ds);
	cli_args_free(&a);
	return rc;
}
