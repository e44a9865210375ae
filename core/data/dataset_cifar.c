/*
 * core/data/dataset_cifar.c — CIFAR-10 and CIFAR-100 binary versions.
 *   CIFAR-10:  data_batch_1..5.bin (train), test_batch.bin; records of
 *              1 label byte (0..9) + 3072 pixel bytes (3×32×32, CHW).
 *   CIFAR-100: train.bin, test.bin; records of 2 label bytes (coarse 0..19,
 *              fine 0..99) + 3072 pixel bytes; the fine label is used.
 * The files may sit in dir itself or in the archive's folder
 * (cifar-10-batches-bin/, cifar-100-binary/). Class names come from
 * batches.meta.txt / fine_label_names.txt when present.
 */
#include "data/dataset_impl.h"

#include <stdlib.h>
#include <string.h>

#define CIFAR_PIXELS 3072
#define CIFAR_MAX_FILES 5
#define CIFAR_CHUNK 512 /* records per read */

struct cifar_kind {
	int label_bytes;   /* 1 or 2; the last label byte is the class */
	int num_classes;
	int num_coarse;    /* CIFAR-100's coarse label bound, else 0 */
};

struct batch_files {
	int n;
	char path[CIFAR_MAX_FILES][ISIF_DS_PATH_MAX];
	FILE *f[CIFAR_MAX_FILES];
	int64_t records[CIFAR_MAX_FILES];
};

static void close_all(struct batch_files *b)
{
	for (int i = 0; i < b->n; i++)
		if (b->f[i])
			fclose(b->f[i]);
}

/* Opens every file and counts its records; sizes must be whole records. */
static enum isif_rc open_all(struct batch_files *b, const char *dir, const char *const *names,
		    int n, int64_t rec, int64_t *total, struct isif_error *err)
{
	*total = 0;
	memset(b, 0, sizeof *b);
	for (int i = 0; i < n; i++) {
		int64_t size;
		int rc = isif_ds_join(b->path[i], dir, names[i], err);
		if (!rc)
			rc = isif_ds_open(b->path[i], &b->f[i], &size, err);
		if (rc)
			return rc;
		b->n = i + 1;
		if (size == 0 || size % rec != 0)
			return isif_fail(err, ISIF_EFORMAT,
					 "%s: size %lld is not a positive multiple of the %lld-byte record (truncated?)",
					 b->path[i], (long long)size, (long long)rec);
		b->records[i] = size / rec;
		*total += b->records[i];
		if (*total > ISIF_DS_MAX_IMAGES)
			return isif_fail(err, ISIF_EFORMAT, "%s: more than %lld images",
					 b->path[i], ISIF_DS_MAX_IMAGES);
	}
	return ISIF_OK;
}

/* Copies records from one open file into the split from image `at` on. */
static enum isif_rc read_records(struct isif_split *s, int64_t at, FILE *f, int64_t count,
			const char *path, const struct cifar_kind *k, uint8_t *buf,
			struct isif_error *err)
{
	int64_t rec = k->label_bytes + CIFAR_PIXELS;
	for (int64_t done = 0; done < count;) {
		int64_t m = count - done < CIFAR_CHUNK ? count - done : CIFAR_CHUNK;
		int rc = isif_ds_read(f, buf, (size_t)(m * rec), path, err);
		if (rc)
			return rc;
		for (int64_t r = 0; r < m; r++) {
			const uint8_t *p = buf + r * rec;
			int label = p[k->label_bytes - 1];
			if (k->num_coarse && p[0] >= k->num_coarse)
				return isif_fail(err, ISIF_EFORMAT, "%s: record %lld: coarse label %d out of range",
						 path, (long long)(done + r), p[0]);
			if (label >= k->num_classes)
				return isif_fail(err, ISIF_EFORMAT, "%s: record %lld: label %d out of range 0..%d",
						 path, (long long)(done + r), label, k->num_classes - 1);
			s->labels[at + done + r] = label;
			memcpy(s->pixels + (at + done + r) * CIFAR_PIXELS, p + k->label_bytes,
			       CIFAR_PIXELS);
		}
		done += m;
	}
	return ISIF_OK;
}

static enum isif_rc load_split(struct isif_split *s, const char *dir, const char *const *names,
		      int n, const struct cifar_kind *k, struct isif_error *err)
{
	struct batch_files b;
	int64_t rec = k->label_bytes + CIFAR_PIXELS, total;
	uint8_t *buf = NULL;
	int rc = open_all(&b, dir, names, n, rec, &total, err);
	if (rc)
		goto out;
	rc = isif_ds_split_alloc(s, total, 3, 32, 32, b.path[0], err);
	if (rc)
		goto out;
	buf = malloc((size_t)(CIFAR_CHUNK * rec));
	if (!buf) {
		rc = isif_fail(err, ISIF_ENOMEM, "%s: out of memory", dir);
		goto out;
	}
	for (int i = 0, at = 0; i < n; at += (int)b.records[i], i++) {
		rc = read_records(s, at, b.f[i], b.records[i], b.path[i], k, buf, err);
		if (rc)
			goto out;
	}
out:
	free(buf);
	close_all(&b);
	return rc;
}

/* The file names and record layout of one CIFAR variant. */
struct cifar_files {
	const char *const *train, *const *test;
	int n_train;
	const char *sub;                /* the archive's folder */
	const struct cifar_kind *kind;
};

static void cifar_files(bool hundred, struct cifar_files *f)
{
	static const char *const train10[] = {
		"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
		"data_batch_4.bin", "data_batch_5.bin",
	};
	static const char *const test10[] = { "test_batch.bin" };
	static const char *const train100[] = { "train.bin" };
	static const char *const test100[] = { "test.bin" };
	static const struct cifar_kind k10 = { 1, 10, 0 }, k100 = { 2, 100, 20 };
	*f = hundred ? (struct cifar_files){ train100, test100, 1, "cifar-100-binary", &k100 }
		     : (struct cifar_files){ train10, test10, 5, "cifar-10-batches-bin", &k10 };
}

/* Records in the split's files, from their sizes. */
static enum isif_rc count_split(const char *dir, const char *const *names, int n,
				const struct cifar_kind *k, int64_t *total, struct isif_error *err)
{
	struct batch_files b;
	enum isif_rc rc = open_all(&b, dir, names, n, k->label_bytes + CIFAR_PIXELS, total, err);
	close_all(&b);
	return rc;
}

enum isif_rc isif_cifar_probe(const char *dir, bool hundred, struct isif_dataset_shape *out,
			      struct isif_error *err)
{
	struct cifar_files f;
	char base[ISIF_DS_PATH_MAX];
	cifar_files(hundred, &f);
	enum isif_rc rc = isif_ds_pick_dir(base, dir, f.sub, f.train[0], err);
	if (!rc)
		rc = count_split(base, f.train, f.n_train, f.kind, &out->n_train, err);
	if (!rc)
		rc = count_split(base, f.test, 1, f.kind, &out->n_test, err);
	out->c = 3;
	out->h = out->w = 32;
	out->num_classes = f.kind->num_classes;
	return rc;
}

enum isif_rc isif_cifar_load(struct isif_dataset *ds, const char *dir, bool hundred, struct isif_error *err)
{
	struct cifar_files f;
	char base[ISIF_DS_PATH_MAX], names[ISIF_DS_PATH_MAX];
	cifar_files(hundred, &f);
	enum isif_rc rc = isif_ds_pick_dir(base, dir, f.sub, f.train[0], err);
	if (rc)
		return rc;
	rc = load_split(&ds->train, base, f.train, f.n_train, f.kind, err);
	if (rc)
		return rc;
	rc = load_split(&ds->test, base, f.test, 1, f.kind, err);
	if (rc)
		return rc;
	ds->num_classes = f.kind->num_classes;
	rc = isif_ds_join(names, base, hundred ? "fine_label_names.txt" : "batches.meta.txt", err);
	return rc ? rc : isif_ds_read_class_names(ds, names, err);
}
