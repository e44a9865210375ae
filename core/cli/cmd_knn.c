/*
 * core/cli/cmd_knn.c — `isif knn`: weighted kNN accuracy (DESIGN's
 * protocol) of a checkpoint's embeddings, or of L2-normalised raw pixels as
 * the baseline any learned feature must beat.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "isif/eval/embed.h"
#include "isif/data/dataset.h"
#include "isif/eval/eval.h"
#include "isif/train/train.h"

static const char knn_help[] =
	"usage: isif knn --dataset NAME|PATH [--format F] (--checkpoint CK | --raw)\n"
	"                [--k 200] [--knn-temperature 0.1] [--train-subset N]\n"
	"Embeds train (gallery) and test (queries) without augmentation, BN in eval\n"
	"mode, and prints weighted kNN top-1 and top-5 accuracy on test.\n"
	"  --raw             use L2-normalised raw pixels instead of a model (the baseline)\n"
	"  --train-subset N  gallery: the same N train images `isif train --train-subset N` uses\n";

void cli_keep_subset(struct isif_split *s, int64_t n)
{
	int32_t *idx = malloc((size_t)s->n * sizeof(int32_t));
	if (!idx)
		return;
	for (int64_t i = 0; i < s->n; i++)
		idx[i] = (int32_t)i;
	int64_t keep = isif_train_subset(idx, s->n, n);
	size_t len = (size_t)s->c * s->h * s->w;
	uint8_t *pixels = malloc((size_t)keep * len);
	int32_t *labels = malloc((size_t)keep * sizeof(int32_t));
	if (pixels && labels) {
		for (int64_t i = 0; i < keep; i++) {
			memcpy(pixels + i * len, s->pixels + (size_t)idx[i] * len, len);
			labels[i] = s->labels[idx[i]];
		}
		free(s->pixels);
		free(s->labels);
		s->pixels = pixels;
		s->labels = labels;
		s->n = keep;
	} else {
		free(pixels);
		free(labels);
	}
	free(idx);
}

/* Pixels scaled to 0..1 and L2-normalised per image. */
static float *raw_features(const struct isif_split *s)
{
	size_t D = (size_t)s->c * s->h * s->w;
	float *f = malloc((size_t)s->n * D * sizeof(float));
	if (!f)
		return NULL;
	for (int64_t i = 0; i < s->n; i++) {
		double norm = 0;
		for (size_t j = 0; j < D; j++) {
			float v = s->pixels[i * D + j] / 255.0f;
			f[i * D + j] = v;
			norm += (double)v * v;
		}
		float scale = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
		for (size_t j = 0; j < D; j++)
			f[i * D + j] *= scale;
	}
	return f;
}

static float *model_features(struct isif_model *m, int crop, const struct isif_dataset *ds,
			     const struct isif_split *s)
{
	struct isif_error err = {0};
	float *f = malloc((size_t)s->n * isif_model_embed_dim(m) * sizeof(float));
	if (f && isif_embed_split(m, s, crop, ds->mean, ds->std, 256, f, &err)) {
		fprintf(stderr, "isif knn: %s\n", err.msg);
		free(f);
		return NULL;
	}
	return f;
}

int cmd_knn(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(knn_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *dataset = cli_opt(&a, "--dataset"), *format = cli_opt(&a, "--format");
	const char *ck = cli_opt(&a, "--checkpoint"), *k_s = cli_opt(&a, "--k");
	const char *tau_s = cli_opt(&a, "--knn-temperature"), *sub_s = cli_opt(&a, "--train-subset");
	bool raw = cli_flag(&a, "--raw");
	long k = 200, subset = 0;
	double tau = 0.1;
	struct isif_dataset ds = { 0 };
	struct isif_model *m = NULL;
	float *g = NULL, *q = NULL;
	int rc = 2;
	struct isif_error err = {0};
	if (cli_check_unused(&a, "knn") || (k_s && cli_int("--k", k_s, 1, 10000, &k)) ||
	    (tau_s && cli_double("--knn-temperature", tau_s, 1e-4, 10, &tau)) ||
	    (sub_s && cli_int("--train-subset", sub_s, 0, 100000000, &subset)))
		goto out;
	if (!dataset || raw == (ck != NULL)) {
		fprintf(stderr, "isif knn: needs --dataset and one of --checkpoint or --raw\n%s",
			knn_help);
		goto out;
	}
	rc = 1;
	int fmt = isif_dataset_format_parse(format ? format : "auto");
	if (fmt < 0 || isif_dataset_load(&ds, dataset, fmt, NULL, &err)) {
		fprintf(stderr, "isif knn: %s\n", fmt < 0 ? "unknown --format" : err.msg);
		goto out;
	}
	if (subset > 0)
		cli_keep_subset(&ds.train, subset);
	int D = ds.train.c * ds.train.h * ds.train.w;
	if (raw) {
		g = raw_features(&ds.train);
		q = raw_features(&ds.test);
	} else {
		int crop = 0;
		if (cli_load_model(ck, NULL, &m, &crop))
			goto out;
		D = isif_model_embed_dim(m);
		g = model_features(m, crop, &ds, &ds.train);
		q = g ? model_features(m, crop, &ds, &ds.test) : NULL;
	}
	struct isif_knn_result res;
	if (!g || !q || isif_knn_eval(g, ds.train.labels, ds.train.n, q, ds.test.labels, ds.test.n,
				      D, (int)k, tau, ds.num_classes, cli_threads(), &res)) {
		fprintf(stderr, "isif knn: evaluation failed\n");
		goto out;
	}
	printf("knn_top1 %.4f knn_top5 %.4f (k=%ld, tau=%g, %lld gallery, %lld queries, %s)\n",
	       res.top1, res.top5, k, tau, (long long)ds.train.n, (long long)ds.test.n,
	       raw ? "raw pixels" : ck);
	rc = 0;
out:
	free(g);
	free(q);
	isif_model_free(m);
	isif_dataset_free(&ds);
	cli_args_free(&a);
	return rc;
}
