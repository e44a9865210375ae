/*
 * tests/unit/test_ann.c — the FAISS approximate indexes (isif/eval/ann.h):
 * build, save, load and search of HNSW and IVF on a clustered set, recall
 * against exact search, parameter bounds, a cancelled build and files that
 * are not indexes.
 *
 * The set: 5,000 rows of 32 dims around 50 random centres (noise σ 0.15
 * per dim, then normalised), the shape of real embeddings (classes of
 * similar images); the 200 queries are fresh draws around the same centres,
 * so none is a gallery row. Bounds: at these sizes the default HNSW
 * (M 32, efSearch 32) measured recall@10 0.998 and IVF (nlist 128, nprobe
 * 16 of 128) 1.000 here; 0.90 leaves room for other BLAS/CPU rounding yet
 * fails for a broken index (random rows would score ~0.002).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "isif/base/common.h"
#include "isif/base/rng.h"
#include "isif/eval/ann.h"
#include "isif/eval/eval.h"

enum { N = 5000, D = 32, CENTRES = 50, NQ = 200, K = 10 };

static float gauss(struct isif_rng *r)
{
	double u = isif_rng_range(r, 1e-12, 1.0), v = isif_rng_uniform(r);
	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void normalise(float *x, int d)
{
	double s = 0;
	for (int j = 0; j < d; j++)
		s += (double)x[j] * x[j];
	s = s > 0 ? 1.0 / sqrt(s) : 0;
	for (int j = 0; j < d; j++)
		x[j] = (float)(x[j] * s);
}

/* n rows around the centres c[CENTRES, D]. */
static float *clustered(struct isif_rng *r, const float *c, int64_t n)
{
	float *x = malloc((size_t)n * D * sizeof *x);
	for (int64_t i = 0; i < n; i++) {
		const float *ci = c + (size_t)isif_rng_below(r, CENTRES) * D;
		for (int j = 0; j < D; j++)
			x[i * D + j] = ci[j] + 0.15f * gauss(r);
		normalise(x + i * D, D);
	}
	return x;
}

struct set {
	float *g, *q;
};

static struct set make_set(void)
{
	struct isif_rng r;
	isif_rng_seed(&r, 13, 0);
	float c[CENTRES * D];
	for (int i = 0; i < CENTRES; i++) {
		for (int j = 0; j < D; j++)
			c[i * D + j] = gauss(&r);
		normalise(c + i * D, D);
	}
	return (struct set){clustered(&r, c, N), clustered(&r, c, NQ)};
}

/* Build, recall, save, load: the loaded index answers exactly as the built one. */
static void round_trip(enum isif_ann_kind kind)
{
	struct set s = make_set();
	struct isif_ann_params p;
	struct isif_error err = {0};
	struct isif_ann *a = NULL, *b = NULL;
	isif_ann_params_default(kind, N, &p);
	CHECK_EQ(isif_ann_params_check(&p, N, &err), ISIF_OK);
	CHECK_MSG(isif_ann_build(&p, s.g, N, D, 2, NULL, &a, &err) == ISIF_OK, "%s", err.msg);
	double recall = 0;
	CHECK_MSG(isif_ann_recall(a, s.g, N, s.q, NQ, K, 1, &recall, &err) == ISIF_OK, "%s", err.msg);
	printf("  %s: recall@10 %.4f\n", isif_ann_kind_name(kind), recall);
	CHECK_MSG(recall >= 0.90, "%s recall@10 %.3f < 0.90", isif_ann_kind_name(kind), recall);

	char path[512];
	snprintf(path, sizeof path, "%s/ann-%s.faiss", test_tmpdir(), isif_ann_kind_name(kind));
	CHECK_MSG(isif_ann_save(a, path, &err) == ISIF_OK, "%s", err.msg);
	CHECK_MSG(isif_ann_load(path, &b, &err) == ISIF_OK, "%s", err.msg);
	struct isif_ann_params pb;
	int64_t nb = 0;
	int db = 0;
	isif_ann_info(b, &pb, &nb, &db);
	CHECK_EQ(pb.kind, kind);
	CHECK_EQ(nb, N);
	CHECK_EQ(db, D);
	CHECK_EQ(pb.m, p.m);
	CHECK_EQ(pb.ef_search, p.ef_search);
	CHECK_EQ(pb.nlist, p.nlist);
	CHECK_EQ(pb.nprobe, p.nprobe);

	int64_t ia[NQ * K], ib[NQ * K];
	float sa[NQ * K], sb[NQ * K];
	CHECK_EQ(isif_ann_search(a, s.q, NQ, K, ia, sa, &err), ISIF_OK);
	CHECK_EQ(isif_ann_search(b, s.q, NQ, K, ib, sb, &err), ISIF_OK);
	CHECK(memcmp(ia, ib, sizeof ia) == 0);
	CHECK(memcmp(sa, sb, sizeof sa) == 0);
	/* best first, and the similarity is the inner product of the rows */
	for (int i = 0; i < NQ; i++)
		for (int j = 0; j < K; j++) {
			int64_t row = ia[i * K + j];
			CHECK(row >= 0 && row < N);
			if (j)
				CHECK(sa[i * K + j] <= sa[i * K + j - 1]);
			double dot = 0;
			for (int t = 0; row >= 0 && t < D; t++)
				dot += (double)s.q[i * D + t] * s.g[row * D + t];
			CHECK_NEAR(sa[i * K + j], dot, 1e-4);
		}
	/* a gallery row finds itself first */
	CHECK_EQ(isif_ann_search(b, s.g + 77 * D, 1, K, ib, sb, &err), ISIF_OK);
	CHECK_EQ(ib[0], 77);
	isif_ann_free(a);
	isif_ann_free(b);
	free(s.g);
	free(s.q);
}

TEST(ann_hnsw_round_trip) { round_trip(ISIF_ANN_HNSW); }
TEST(ann_ivf_round_trip) { round_trip(ISIF_ANN_IVF); }

TEST(ann_params_bounds)
{
	struct isif_ann_params p;
	struct isif_error err = {0};
	isif_ann_params_default(ISIF_ANN_HNSW, 1000, &p);
	p.m = 1000000000;
	CHECK_EQ(isif_ann_params_check(&p, 1000, &err), ISIF_EINVAL);
	CHECK(strstr(err.msg, "m:") != NULL);
	isif_ann_params_default(ISIF_ANN_HNSW, 1000, &p);
	p.ef_search = 0;
	CHECK_EQ(isif_ann_params_check(&p, 1000, &err), ISIF_EINVAL);
	isif_ann_params_default(ISIF_ANN_IVF, 1000, &p);
	CHECK_EQ(isif_ann_params_check(&p, 1000, &err), ISIF_OK);
	CHECK(p.nlist >= 1 && p.nlist <= 1000 / ISIF_ANN_MIN_PER_LIST);
	p.nlist = 1000;                           /* more lists than rows/39 */
	CHECK_EQ(isif_ann_params_check(&p, 1000, &err), ISIF_EINVAL);
	CHECK(strstr(err.msg, "nlist") != NULL);
	isif_ann_params_default(ISIF_ANN_IVF, 1000, &p);
	p.nprobe = p.nlist + 1;
	CHECK_EQ(isif_ann_params_check(&p, 1000, &err), ISIF_EINVAL);
	isif_ann_params_default(ISIF_ANN_IVF, 10, &p);  /* too few rows for one list */
	CHECK_EQ(isif_ann_params_check(&p, 10, &err), ISIF_EINVAL);
	isif_ann_params_default(ISIF_ANN_EXACT, 10, &p);
	CHECK_EQ(isif_ann_params_check(&p, 10, &err), ISIF_EINVAL);
	CHECK_EQ(isif_ann_kind_parse("hnsw"), ISIF_ANN_HNSW);
	CHECK_EQ(isif_ann_kind_parse("ivf"), ISIF_ANN_IVF);
	CHECK_EQ(isif_ann_kind_parse("exact"), ISIF_ANN_EXACT);
	CHECK_EQ(isif_ann_kind_parse("HNSW"), -1);
}

TEST(ann_cancelled_build)
{
	struct set s = make_set();
	struct isif_ann_params p;
	struct isif_error err = {0};
	struct isif_ann *a = (struct isif_ann *)&p;
	volatile int cancel = 1;
	isif_ann_params_default(ISIF_ANN_HNSW, N, &p);
	CHECK_EQ(isif_ann_build(&p, s.g, N, D, 1, &cancel, &a, &err), ISIF_ECANCELLED);
	CHECK(a == NULL);
	free(s.g);
	free(s.q);
}

TEST(ann_load_rejects_other_files)
{
	struct isif_error err = {0};
	struct isif_ann *a = NULL;
	char path[512];
	snprintf(path, sizeof path, "%s/not-an-index", test_tmpdir());
	FILE *f = fopen(path, "wb");
	fputs("IxHFgarbage that is not a FAISS index", f);
	fclose(f);
	CHECK(isif_ann_load(path, &a, &err) != ISIF_OK);
	CHECK(a == NULL);
	CHECK(err.msg[0] != 0);
	snprintf(path, sizeof path, "%s/missing", test_tmpdir());
	CHECK_EQ(isif_ann_load(path, &a, &err), ISIF_EIO);
}
