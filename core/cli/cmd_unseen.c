/*
 * core/cli/cmd_unseen.c — `isif unseen`: the unseen-category evaluation of
 * a checkpoint on its own: Recall@1/2/4/8, NMI of k-means and the
 * similarity histograms over the test images of the classes a
 * classes.split rule holds out, exactly as a training job's evaluation
 * computes them. On `isif init`'s checkpoint it gives the untrained
 * network's figures, the baseline a trained one must beat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "isif/base/fileio.h"
#include "isif/base/strbuf.h"
#include "isif/data/dataset.h"
#include "isif/eval/embed.h"
#include "isif/eval/eval.h"
#include "isif/eval/simhist.h"
#include "isif/train/spec.h"

static const char unseen_help[] =
	"usage: isif unseen --dataset NAME|PATH [--format F] --checkpoint CK\n"
	"                   [--class-split first_half|second_half] [--seed 1] [--simhist FILE]\n"
	"Embeds the test images of the classes the split holds out (first_half, the\n"
	"default: the second half of the classes sorted by name) without augmentation\n"
	"and prints Recall@1/2/4/8, NMI of k-means (k = held-out classes, seeded) and the\n"
	"mean cosine similarity of same- and different-class pairs, as a job's\n"
	"evaluation does. --simhist FILE writes the histograms as JSON.\n";

/* Keeps the images of s whose label is in set[n], in place. */
static int keep_classes(struct isif_split *s, const int *set, int n)
{
	size_t len = (size_t)s->c * s->h * s->w;
	int64_t kept = 0;
	for (int64_t i = 0; i < s->n; i++) {
		int in = 0;
		for (int k = 0; k < n && !in; k++)
			in = s->labels[i] == set[k];
		if (!in)
			continue;
		memmove(s->pixels + (size_t)kept * len, s->pixels + (size_t)i * len, len);
		s->labels[kept++] = s->labels[i];
	}
	s->n = kept;
	return kept > 1 ? 0 : -1;
}

static void json_part(struct isif_strbuf *b, const char *name, const struct isif_simhist_part *p)
{
	isif_strbuf_printf(b, "\"%s\": {\"pairs\": %lld, \"mean\": ", name, (long long)p->pairs);
	if (p->pairs)
		isif_strbuf_printf(b, "%.9g", p->sum / (double)p->pairs);
	else
		isif_strbuf_puts(b, "null");
	isif_strbuf_puts(b, ", \"counts\": [");
	for (int k = 0; k < ISIF_SIMHIST_BINS; k++)
		isif_strbuf_printf(b, "%s%lld", k ? ", " : "", (long long)p->counts[k]);
	isif_strbuf_puts(b, "]}");
}

void cli_simhist_json(struct isif_strbuf *b, int epoch, const struct isif_simhist *h)
{
	isif_strbuf_puts(b, "{");
	if (epoch > 0)
		isif_strbuf_printf(b, "\"epoch\": %d, ", epoch);
	isif_strbuf_printf(b, "\"bins\": %d, \"range\": [-1, 1], ", ISIF_SIMHIST_BINS);
	json_part(b, "same", &h->same);
	isif_strbuf_puts(b, ", ");
	json_part(b, "different", &h->diff);
	isif_strbuf_puts(b, "}\n");
}

/* The histograms as GET /jobs/{id}/similarity's body has them (no job/epochs). */
static int write_simhist(const char *path, const struct isif_simhist *h)
{
	struct isif_strbuf b;
	struct isif_error err = {0};
	isif_strbuf_init(&b, 1 << 20);
	cli_simhist_json(&b, 0, h);
	struct isif_chunk c = { b.p, b.len };
	int rc = b.failed || isif_write_atomic(path, &c, 1, &err) ? -1 : 0;
	isif_strbuf_free(&b);
	return rc;
}

int cmd_unseen(int argc, char **argv)
{
	struct cli_args a;
	cli_args_init(&a, argc, argv);
	if (cli_help(&a)) {
		fputs(unseen_help, stdout);
		cli_args_free(&a);
		return 0;
	}
	const char *dataset = cli_opt(&a, "--dataset"), *format = cli_opt(&a, "--format");
	const char *ck = cli_opt(&a, "--checkpoint"), *split = cli_opt(&a, "--class-split");
	const char *seed_s = cli_opt(&a, "--seed"), *sim_path = cli_opt(&a, "--simhist");
	long seed = 1;
	struct isif_dataset ds = { 0 };
	struct isif_model *m = NULL;
	float *x = NULL;
	int rc = 2;
	struct isif_error err = {0};
	struct isif_job_spec spec;
	isif_spec_default(&spec);
	char json[128];
	snprintf(json, sizeof json, "{\"classes\": {\"split\": \"%.32s\"}}",
		 split ? split : "first_half");
	if (cli_check_unused(&a, "unseen") || (seed_s && cli_int("--seed", seed_s, 0, 1L << 53, &seed)))
		goto out;
	if (!dataset || !ck) {
		fprintf(stderr, "isif unseen: needs --dataset and --checkpoint\n%s", unseen_help);
		goto out;
	}
	if (isif_spec_parse(&spec, json, false, &err)) {
		fprintf(stderr, "isif unseen: --class-split: %s\n", err.msg);
		goto out;
	}
	rc = 1;
	int fmt = isif_dataset_format_parse(format ? format : "auto");
	if (fmt < 0 || isif_dataset_load(&ds, dataset, fmt, NULL, &err) ||
	    isif_spec_resolve_classes(&spec, ds.num_classes, ds.class_names, &err)) {
		fprintf(stderr, "isif unseen: %s\n", fmt < 0 ? "unknown --format" : err.msg);
		goto out;
	}
	if (keep_classes(&ds.test, spec.test_classes, spec.n_test_classes)) {
		fprintf(stderr, "isif unseen: fewer than 2 test images in the held-out classes\n");
		goto out;
	}
	int crop = 0; /* the checkpoint's centre crop (augment.random_crop), 0: none */
	if (cli_load_model(ck, NULL, &m, &crop))
		goto out;
	int D = isif_model_embed_dim(m);
	x = malloc((size_t)ds.test.n * D * sizeof *x);
	if (!x || isif_embed_split(m, &ds.test, crop, ds.mean, ds.std, 256, x, &err)) {
		fprintf(stderr, "isif unseen: %s\n", x ? err.msg : "out of memory");
		goto out;
	}
	static const int ks[4] = {1, 2, 4, 8};
	double recall[4], nmi;
	struct isif_rng rng;
	struct isif_simhist h;
	isif_rng_seed(&rng, (uint64_t)seed, 31); /* as the trainer's evaluation */
	if (isif_recall_at_k(x, ds.test.labels, ds.test.n, D, ks, 4, cli_threads(), recall) ||
	    isif_nmi_kmeans(x, ds.test.labels, ds.test.n, D, spec.n_test_classes, 3, 50, &rng,
			    cli_threads(), &nmi) ||
	    isif_simhist_compute(x, ds.test.labels, ds.test.n, D, ISIF_SIMHIST_MAX_PAIRS,
				 (uint64_t)seed, &h)) {
		fprintf(stderr, "isif unseen: evaluation failed\n");
		goto out;
	}
	printf("recall_at_1 %.4f recall_at_2 %.4f recall_at_4 %.4f recall_at_8 %.4f nmi %.4f "
	       "sim_same %.4f sim_diff %.4f (%lld images of %d held-out classes, %s)\n",
	       recall[0], recall[1], recall[2], recall[3], nmi,
	       h.same.pairs ? h.same.sum / (double)h.same.pairs : 0.0,
	       h.diff.pairs ? h.diff.sum / (double)h.diff.pairs : 0.0,
	       (long long)ds.test.n, spec.n_test_classes, ck);
	if (sim_path && write_simhist(sim_path, &h)) {
		fprintf(stderr, "isif unseen: cannot write %s\n", sim_path);
		goto out;
	}
	rc = 0;
out:
	free(x);
	isif_model_free(m);
	isif_dataset_free(&ds);
	cli_args_free(&a);
	return rc;
}
