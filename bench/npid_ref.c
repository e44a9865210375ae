/*
 * bench/npid_ref.c — runs the engine's NPID loss and bank update
 * (core/nn/npid_impl.h) on arrays from .npy files, for
 * bench/npid_crosscheck.py to compare with PyTorch. Not a user command.
 *   usage: npid_ref DIR TAU MOMENTUM K
 * reads DIR/f.npy [m, D], DIR/bank.npy [n, D], DIR/idx.npy [m] and, for K > 0,
 * DIR/noise.npy [m, K] (indices stored as floats); writes DIR/loss.npy [1]
 * (the loss), DIR/df.npy [m, D] (dL/df), DIR/z.npy [1] and DIR/bank_after.npy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/npy.h"
#include "nn/npid_impl.h"

static int load(const char *dir, const char *name, struct isif_npy *a)
{
	char path[1024];
	struct isif_error err = { 0 };
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (isif_npy_read(path, a, &err)) {
		fprintf(stderr, "npid_ref: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int save(const char *dir, const char *name, const float *x, int ndim, const int64_t *shape)
{
	char path[1024];
	struct isif_error err = { 0 };
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (isif_npy_write(path, x, ndim, shape, &err)) {
		fprintf(stderr, "npid_ref: %s\n", err.msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: npid_ref DIR TAU MOMENTUM K\n");
		return 2;
	}
	const char *dir = argv[1];
	double tau = atof(argv[2]), momentum = atof(argv[3]);
	int k = atoi(argv[4]);
	struct isif_npy f, bank, idxf, noise = { 0 };
	if (load(dir, "f.npy", &f) || load(dir, "bank.npy", &bank) || load(dir, "idx.npy", &idxf) ||
	    (k > 0 && load(dir, "noise.npy", &noise)))
		return 1;
	int m = (int)f.shape[0], D = (int)f.shape[1];
	int64_t n = bank.shape[0];
	struct npid p;
	struct isif_error err = { 0 };
	if (npid_create(&p, n, D, m, k, 1, 1, &err)) {
		fprintf(stderr, "npid_ref: %s\n", err.msg);
		return 1;
	}
	memcpy(p.bank, bank.data, (size_t)n * D * sizeof(float));
	int32_t *idx = malloc((size_t)m * sizeof(int32_t));
	float *df = malloc((size_t)m * D * sizeof(float));
	for (int i = 0; i < m; i++)
		idx[i] = (int32_t)idxf.data[i];
	for (int64_t i = 0; i < (int64_t)m * k; i++)
		p.noise[i] = (int32_t)noise.data[i];
	float loss = (float)npid_loss(&p, df, f.data, idx, m, tau, NULL), z = (float)p.z;
	npid_bank_update(&p, f.data, idx, m, momentum);
	int64_t one = 1, fs[2] = { m, D }, bs[2] = { n, D };
	int rc = save(dir, "loss.npy", &loss, 1, &one) || save(dir, "z.npy", &z, 1, &one) ||
		 save(dir, "df.npy", df, 2, fs) || save(dir, "bank_after.npy", p.bank, 2, bs);
	npid_free(&p);
	free(idx);
	free(df);
	free(f.data);
	free(bank.data);
	free(idxf.data);
	free(noise.data);
	return rc ? 1 : 0;
}
