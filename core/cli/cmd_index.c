/*
 * core/cli/cmd_index.c — `isif index`: approximate indexes (isif/eval/ann.h)
 * outside the daemon.
 *   build  an HNSW or IVF index from an .npy gallery, saved to a file; prints
 *          its build time, size, recall@10 against exact search on held-out
 *          queries and single-thread queries/s (beside exact search's with
 *          --compare-exact), so the size where ANN beats our scan is measured
 *   grow   a large gallery from real embeddings: the rows, then copies of
 *          them with Gaussian noise, renormalised (isotropic random vectors
 *          would make every neighbour nearly equidistant: no index reaches
 *          useful recall on them, so they measure nothing real)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "isif/base/clock.h"
#include "isif/base/npy.h"
#include "isif/base/rng.h"
#include "isif/eval/ann.h"
#include "isif/eval/eval.h"

static const char index_help[] =
	"usage: isif index build --npy GALLERY.npy --kind hnsw|ivf --out FILE\n"
	"                        [--m 32] [--ef-construction 64] [--ef-search 32]\n"
	"                        [--nlist 4*sqrt(rows)] [--nprobe 16] [--threads N]\n"
	"                        [--queries Q.npy | --held-out 1000] [--compare-exact]\n"
	"       isif index grow --npy TRAIN.npy --rows N --out GALLERY.npy [--sigma 0.02] [--seed 1]\n"
	"build: a FAISS index (inner product) of the gallery's L2-normalised rows [n, dim],\n"
	"  written atomically to FILE; prints build seconds, file bytes, recall@10 against\n"
	"  exact search and single-thread queries/s (one query per call). Queries: the rows\n"
	"  of --queries, else --held-out fresh noisy copies (sigma 0.02) of random gallery\n"
	"  rows, none of them in the gallery. --compare-exact also times exact search.\n"
	"grow: writes N rows: the input rows, then copies of them in turn, each with\n"
	"  Gaussian noise of --sigma per dimension, renormalised (a million-row gallery\n"
	"  from the 60k train embeddings of a trained job: GET /jobs/ID/embeddings?format=npy).\n";

static float gauss(struct isif_rng *r)
{
	double u = isif_rng_range(r, 1e-12, 1.0), v = isif_rng_uniform(r);
	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* out[dim] = normalise(x + sigma·N(0,1)). */
static void noisy_copy(struct isif_rng *r, const float *x, int dim, double sigma, float *out)
{
	double s = 0;
	for (int j = 0; j < dim; j++) {
		out[j] = x[j] + (float)(sigma * gauss(r));
		s += (double)out[j] * out[j];
	}
	float k = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
	for (int j = 0; j < dim; j++)
		out[j] *= k;
}

static int read_matrix(const char *path, struct isif_npy *m)
{
	struct isif_error err = {0};
	if (isif_npy_read(path, m, &err)) {
		fprintf(stderr, "isif index: %s\n", err.msg);
		return -1;
	}
	if (m->ndim != 2 || m->shape[0] < 1 || m->shape[1] < 1 || m->shape[1] > 65536) {
		fprintf(stderr, "isif index: %s: want a [rows, dim] float32 array\n", path);
		free(m->data);
		m->data = NULL;
		return -1;
	}
	return 0;
}

/* Queries per second of searching q one at a time, on one thread. */
static double ann_qps(const struct isif_ann *a, const float *q, int64_t nq, int dim)
{
	int64_t idx[10];
	float sim[10];
	double t0 = isif_now_s();
	for (int64_t i = 0; i < nq; i++)
		isif_ann_search(a, q + (size_t)i * dim, 1, 10, idx, sim, NULL);
	return (double)nq / (isif_now_s() - t0);
}

static double exact_qps(const float *g, int64_t n, const float *q, int64_t nq, int dim)
{
	int64_t idx[10];
	float sim[10];
	int64_t runs = nq < 200 ? nq : 200;    /* exact is slow on big galleries */
	double t0 = isif_now_s();
	for (int64_t i = 0; i < runs; i++)
		isif_topk(g, n, q + (size_t)i * dim, 1, dim, 10, 0, 1, idx, sim);
	return (double)runs / (isif_now_s() - t0);
}

static long opt_long(struct cli_args *a, const char *name, long min, long max, long dflt, int *bad)
{
	const char *s = cli_opt(a, name);
	long v = dflt;
	if (s && cli_int(name, s, min, max, &v))
		*bad = 1;
	return v;
}

static int index_build(struct cli_args *a)
{
	const char *npy = cli_opt(a, "--npy"), *kind_s = cli_opt(a, "--kind"), *out = cli_opt(a, "--out");
	const char *qpath = cli_opt(a, "--queries");
	bool cmp = cli_flag(a, "--compare-exact");
	int bad = 0, rc = 1;
	long m = opt_long(a, "--m", 1, 1000000000, 0, &bad);
	long efc = opt_long(a, "--ef-construction", 1, 1000000000, 0, &bad);
	long efs = opt_long(a, "--ef-search", 1, 1000000000, 0, &bad);
	long nlist = opt_long(a, "--nlist", 1, 1000000000, 0, &bad);
	long nprobe = opt_long(a, "--nprobe", 1, 1000000000, 0, &bad);
	long threads = opt_long(a, "--threads", 1, 1024, cli_threads(), &bad);
	long held = opt_long(a, "--held-out", 1, 1000000, 1000, &bad);
	int kind = isif_ann_kind_parse(kind_s);
	if (bad || cli_check_unused(a, "index build"))
		return 2;
	if (!npy || !out || (kind != ISIF_ANN_HNSW && kind != ISIF_ANN_IVF)) {
		fprintf(stderr, "isif index build: needs --npy, --out and --kind hnsw|ivf\n%s", index_help);
		return 2;
	}
	struct isif_npy g = {0}, q = {0};
	struct isif_ann *ann = NULL;
	struct isif_error err = {0};
	if (read_matrix(npy, &g) || (qpath && read_matrix(qpath, &q)))
		goto done;
	int64_t n = g.shape[0];
	int dim = (int)g.shape[1];
	if (qpath && q.shape[1] != dim) {
		fprintf(stderr, "isif index build: queries have %lld dims, the gallery %d\n",
			(long long)q.shape[1], dim);
		goto done;
	}
	if (!qpath) {   /* fresh noisy copies of random rows: held out of the gallery */
		struct isif_rng r;
		isif_rng_seed(&r, 7, 3);
		q.shape[0] = held;
		q.shape[1] = dim;
		q.data = malloc((size_t)held * dim * sizeof(float));
		for (int64_t i = 0; q.data && i < held; i++)
			noisy_copy(&r, g.data + (size_t)isif_rng_below(&r, (uint32_t)n) * dim, dim, 0.02,
				   q.data + (size_t)i * dim);
		if (!q.data)
			goto done;
	}
	struct isif_ann_params p;
	isif_ann_params_default((enum isif_ann_kind)kind, n, &p);
	if (m) p.m = (int)m;
	if (efc) p.ef_construction = (int)efc;
	if (efs) p.ef_search = (int)efs;
	if (nlist) {
		p.nlist = (int)nlist;
		if (!nprobe && p.nprobe > p.nlist)
			p.nprobe = p.nlist;
	}
	if (nprobe) p.nprobe = (int)nprobe;
	if (isif_ann_params_check(&p, n, &err)) {
		fprintf(stderr, "isif index build: %s\n", err.msg);
		rc = 2;
		goto done;
	}
	double t0 = isif_now_s();
	if (isif_ann_build(&p, g.data, n, dim, (int)threads, NULL, &ann, &err) ||
	    isif_ann_save(ann, out, &err)) {
		fprintf(stderr, "isif index build: %s\n", err.msg);
		goto done;
	}
	double build_s = isif_now_s() - t0, recall = 0;
	if (isif_ann_recall(ann, g.data, n, q.data, q.shape[0], n < 10 ? (int)n : 10, (int)threads,
			    &recall, &err)) {
		fprintf(stderr, "isif index build: %s\n", err.msg);
		goto done;
	}
	struct stat st;
	stat(out, &st);
	printf("kind %s rows %lld dim %d m %d ef_construction %d ef_search %d nlist %d nprobe %d\n",
	       isif_ann_kind_name(p.kind), (long long)n, dim, p.m, p.ef_construction, p.ef_search,
	       p.nlist, p.nprobe);
	printf("build_seconds %.2f threads %ld file_bytes %lld\n", build_s, threads, (long long)st.st_size);
	printf("recall_at_10 %.4f queries %lld\n", recall, (long long)q.shape[0]);
	printf("ann_qps_1thread %.0f\n", ann_qps(ann, q.data, q.shape[0], dim));
	if (cmp)
		printf("exact_qps_1thread %.0f\n", exact_qps(g.data, n, q.data, q.shape[0], dim));
	rc = 0;
done:
	isif_ann_free(ann);
	free(g.data);
	free(q.data);
	return rc;
}

static int index_grow(struct cli_args *a)
{
	const char *npy = cli_opt(a, "--npy"), *out = cli_opt(a, "--out"), *rows_s = cli_opt(a, "--rows");
	const char *sigma_s = cli_opt(a, "--sigma");
	int bad = 0, rc = 1;
	long seed = opt_long(a, "--seed", 0, 1000000000, 1, &bad);
	long rows = 0;
	double sigma = 0.02;
	if (rows_s && cli_int("--rows", rows_s, 1, 100000000, &rows))
		bad = 1;
	if (sigma_s && cli_double("--sigma", sigma_s, 0, 10, &sigma))
		bad = 1;
	if (bad || cli_check_unused(a, "index grow"))
		return 2;
	if (!npy || !out || !rows) {
		fprintf(stderr, "isif index grow: needs --npy, --rows and --out\n%s", index_help);
		return 2;
	}
	struct isif_npy x = {0};
	struct isif_error err = {0};
	float *g = NULL;
	if (read_matrix(npy, &x))
		return 1;
	int64_t n0 = x.shape[0];
	int dim = (int)x.shape[1];
	if (!(g = malloc((size_t)rows * dim * sizeof *g))) {
		fprintf(stderr, "isif index grow: out of memory for %ld rows\n", rows);
		goto done;
	}
	struct isif_rng r;
	isif_rng_seed(&r, (uint64_t)seed, 11);
	for (int64_t i = 0; i < rows; i++) {
		const float *src = x.data + (size_t)(i % n0) * dim;
		if (i < n0)
			memcpy(g + (size_t)i * dim, src, (size_t)dim * sizeof *g);
		else
			noisy_copy(&r, src, dim, sigma, g + (size_t)i * dim);
	}
	int64_t shape[2] = {rows, dim};
	if (isif_npy_write(out, g, 2, shape, &err)) {
		fprintf(stderr, "isif index grow: %s\n", err.msg);
		goto done;
	}
	printf("rows %ld dim %d from %lld sigma %g -> %s\n", rows, dim, (long long)n0, sigma, out);
	rc = 0;
done:
	free(g);
	free(x.data);
	return rc;
}

int cmd_index(int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		fputs(index_help, stdout);
		return 0;
	}
	if (strcmp(sub, "build") && strcmp(sub, "grow")) {
		fprintf(stderr, "isif index: unknown sub-command '%s'\n%s", sub, index_help);
		return 2;
	}
	struct cli_args a;
	cli_args_init(&a, argc - 1, argv + 1);
	int rc;
	if (cli_help(&a)) {
		fputs(index_help, stdout);
		rc = 0;
	} else {
		rc = !strcmp(sub, "build") ? index_build(&a) : index_grow(&a);
	}
	cli_args_free(&a);
	return rc;
}
