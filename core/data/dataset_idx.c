/*
 * core/data/dataset_idx.c — IDX files (MNIST, Fashion-MNIST), gzip or plain:
 *   train-images-idx3-ubyte  train-labels-idx1-ubyte
 *   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte      (each maybe .gz)
 * An IDX file is a 4-byte magic 00 00 08 nd (unsigned bytes, nd dims), nd
 * big-endian uint32 dimensions, then the data. Images: magic 0x00000803,
 * dims n, h, w (one channel); labels: 0x00000801, dim n.
 * zlib's gzread reads plain files transparently, so one path serves both.
 * Sizes from headers are capped and the buffer grows only as data actually
 * arrives, so a tiny file claiming huge dimensions never allocates much.
 * IDX files carry no class names: they come from an optional class_names.txt
 * (one per line) beside them, else, for Debian's copy of Fashion-MNIST, from
 * the fixed list below.
 */
#include "data/dataset_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u

/* Fashion-MNIST's labels 0..9, as its README and torchvision's
 * FashionMNIST.classes name them. */
static const char *const fashion_mnist_names[10] = {
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

/* Finds dir/name, else dir/name.gz; ISIF_EIO naming both when neither exists. */
static enum isif_rc find_idx(char *path, const char *dir, const char *name, struct isif_error *err)
{
	int rc = isif_ds_join(path, dir, name, err);
	if (rc || isif_ds_is_file(path))
		return rc;
	size_t len = strlen(path);
	if (len + 4 > ISIF_DS_PATH_MAX)
		return isif_fail(err, ISIF_EINVAL, "%s.gz: path too long", path);
	memcpy(path + len, ".gz", 4);
	if (isif_ds_is_file(path))
		return ISIF_OK;
	return isif_fail(err, ISIF_EIO, "%s/%s[.gz]: no such file", dir, name);
}

/* Reads up to n bytes; returns the count or −1 with err filled on a zlib error. */
static int64_t gz_read(gzFile f, uint8_t *buf, int64_t n, const char *path, struct isif_error *err)
{
	int64_t got = 0;
	while (got < n) {
		unsigned chunk = (unsigned)(n - got < (1 << 30) ? n - got : (1 << 30));
		int k = gzread(f, buf + got, chunk);
		if (k < 0) {
			int zerr;
			const char *msg = gzerror(f, &zerr);
			size_t pl = strlen(path); /* zlib's text is "<path>: <what>" */
			if (strncmp(msg, path, pl) == 0 && strncmp(msg + pl, ": ", 2) == 0)
				msg += pl + 2;
			isif_fail(err, ISIF_EFORMAT, "%s: corrupt data (%s)", path,
				  zerr == Z_ERRNO ? strerror(errno) : msg);
			return -1;
		}
		if (k == 0)
			break;
		got += k;
	}
	return got;
}

/* Reads the magic and nd dimensions, checking the magic. */
static enum isif_rc read_header(gzFile f, uint32_t magic, uint32_t *dims, int nd,
		       const char *path, struct isif_error *err)
{
	uint8_t hdr[16];
	int64_t want = 4 + 4 * (int64_t)nd;
	int64_t got = gz_read(f, hdr, want, path, err);
	if (got < 0)
		return ISIF_EFORMAT;
	if (got < 4)
		return isif_fail(err, ISIF_EFORMAT, "%s: truncated header", path);
	uint32_t m = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		     (uint32_t)hdr[2] << 8 | hdr[3];
	if (m != magic)
		return isif_fail(err, ISIF_EFORMAT, "%s: bad magic 0x%08x (want 0x%08x)",
				 path, m, magic);
	if (got < want)
		return isif_fail(err, ISIF_EFORMAT, "%s: truncated header", path);
	for (int i = 0; i < nd; i++) {
		const uint8_t *p = hdr + 4 + 4 * i;
		dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			  (uint32_t)p[2] << 8 | p[3];
	}
	return ISIF_OK;
}

/*
 * Reads exactly n payload bytes into a malloc'd buffer that grows
 * geometrically with the data (from 1 MiB), then checks nothing follows.
 */
static enum isif_rc read_payload(gzFile f, int64_t n, uint8_t **out, const char *path, struct isif_error *err)
{
	int64_t cap = n < (1 << 20) ? n : (1 << 20), have = 0;
	uint8_t *buf = malloc((size_t)cap + 1);
	if (!buf)
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
	for (;;) {
		int64_t got = gz_read(f, buf + have, cap - have, path, err);
		if (got < 0) {
			free(buf);
			return ISIF_EFORMAT;
		}
		have += got;
		if (have < cap || cap == n)
			break;
		int64_t ncap = cap * 2 < n ? cap * 2 : n;
		uint8_t *nb = realloc(buf, (size_t)ncap + 1);
		if (!nb) {
			free(buf);
			return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
		}
		buf = nb;
		cap = ncap;
	}
	uint8_t extra;
	int64_t more = have == n ? gz_read(f, &extra, 1, path, err) : 0;
	if (have < n || more != 0) {
		free(buf);
		if (more < 0)
			return ISIF_EFORMAT;
		if (have < n)
			return isif_fail(err, ISIF_EFORMAT, "%s: truncated (%lld of %lld data bytes)",
					 path, (long long)have, (long long)n);
		return isif_fail(err, ISIF_EFORMAT, "%s: more data than the header declares", path);
	}
	*out = buf;
	return ISIF_OK;
}

static gzFile open_gz(const char *path, struct isif_error *err)
{
	errno = 0;
	gzFile f = gzopen(path, "rb");
	if (!f) {
		isif_fail(err, ISIF_EIO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
		return NULL;
	}
	gzbuffer(f, 1 << 17);
	return f;
}

static enum isif_rc read_images(struct isif_split *s, const char *path, struct isif_error *err)
{
	uint32_t d[3];
	uint8_t *data = NULL;
	gzFile f = open_gz(path, err);
	if (!f)
		return ISIF_EIO;
	int rc = read_header(f, IDX_IMAGES_MAGIC, d, 3, path, err);
	if (rc)
		goto out;
	if (d[0] > ISIF_DS_MAX_IMAGES || d[1] < 1 || d[2] < 1 ||
	    d[1] > ISIF_DS_MAX_SIDE || d[2] > ISIF_DS_MAX_SIDE) {
		rc = isif_fail(err, ISIF_EFORMAT, "%s: dimensions %u x %u x %u out of range",
			       path, d[0], d[1], d[2]);
		goto out;
	}
	int64_t bytes = (int64_t)d[0] * d[1] * d[2]; /* ≤ 1e7·4096² < 2^63 */
	if (bytes > ISIF_DS_MAX_BYTES) {
		rc = isif_fail(err, ISIF_EFORMAT, "%s: %lld bytes of images over the limit",
			       path, (long long)bytes);
		goto out;
	}
	rc = read_payload(f, bytes, &data, path, err);
	if (rc)
		goto out;
	s->n = d[0];
	s->c = 1;
	s->h = (int)d[1];
	s->w = (int)d[2];
	s->pixels = data;
	s->labels = malloc((size_t)s->n * sizeof *s->labels + 1);
	if (!s->labels)
		rc = isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
out:
	gzclose(f);
	return rc;
}

static enum isif_rc read_labels(struct isif_split *s, const char *path, int *max_label,
		       struct isif_error *err)
{
	uint32_t n;
	uint8_t *data = NULL;
	gzFile f = open_gz(path, err);
	if (!f)
		return ISIF_EIO;
	int rc = read_header(f, IDX_LABELS_MAGIC, &n, 1, path, err);
	if (rc)
		goto out;
	if ((int64_t)n != s->n) {
		rc = isif_fail(err, ISIF_EFORMAT, "%s: %u labels for %lld images",
			       path, n, (long long)s->n);
		goto out;
	}
	rc = read_payload(f, n, &data, path, err);
	if (rc)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		s->labels[i] = data[i];
		if (data[i] > *max_label)
			*max_label = data[i];
	}
out:
	free(data);
	gzclose(f);
	return rc;
}

static enum isif_rc load_split(struct isif_split *s, const char *dir, const char *prefix,
		      int *max_label, struct isif_error *err)
{
	char img[ISIF_DS_PATH_MAX], lab[ISIF_DS_PATH_MAX], name[64];
	snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
	int rc = find_idx(img, dir, name, err);
	if (rc)
		return rc;
	snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
	rc = find_idx(lab, dir, name, err);
	if (rc)
		return rc;
	rc = read_images(s, img, err);
	if (rc)
		return rc;
	return read_labels(s, lab, max_label, err);
}

/* True when dir is (a link to) ISIF_FASHION_MNIST_DIR. */
static bool is_fashion_mnist_dir(const char *dir)
{
	char a[PATH_MAX], b[PATH_MAX];
	return realpath(dir, a) && realpath(ISIF_FASHION_MNIST_DIR, b) && strcmp(a, b) == 0;
}

static enum isif_rc idx_class_names(struct isif_dataset *ds, const char *dir,
				    struct isif_error *err)
{
	char path[ISIF_DS_PATH_MAX];
	enum isif_rc rc = isif_ds_join(path, dir, "class_names.txt", err);
	if (rc == ISIF_OK)
		rc = isif_ds_read_class_names(ds, path, err);
	if (rc == ISIF_OK && !ds->class_names && ds->num_classes == 10 && is_fashion_mnist_dir(dir))
		rc = isif_ds_set_class_names(ds, fashion_mnist_names, err);
	return rc;
}

enum isif_rc isif_idx_load(struct isif_dataset *ds, const char *dir, struct isif_error *err)
{
	int max_label = -1;
	int rc = load_split(&ds->train, dir, "train", &max_label, err);
	if (rc)
		return rc;
	rc = load_split(&ds->test, dir, "t10k", &max_label, err);
	if (rc)
		return rc;
	if (ds->test.h != ds->train.h || ds->test.w != ds->train.w)
		return isif_fail(err, ISIF_EFORMAT,
				 "%s: test images are %dx%d but train images %dx%d", dir,
				 ds->test.h, ds->test.w, ds->train.h, ds->train.w);
	ds->num_classes = max_label + 1;
	return idx_class_names(ds, dir, err);
}

/* The dimensions of an images file, checked as read_images checks them. */
static enum isif_rc probe_images(const char *path, uint32_t d[3], struct isif_error *err)
{
	gzFile f = open_gz(path, err);
	if (!f)
		return ISIF_EIO;
	int rc = read_header(f, IDX_IMAGES_MAGIC, d, 3, path, err);
	if (!rc && (d[0] > ISIF_DS_MAX_IMAGES || d[1] < 1 || d[2] < 1 ||
		    d[1] > ISIF_DS_MAX_SIDE || d[2] > ISIF_DS_MAX_SIDE))
		rc = isif_fail(err, ISIF_EFORMAT, "%s: dimensions %u x %u x %u out of range",
			       path, d[0], d[1], d[2]);
	gzclose(f);
	return rc;
}

/* One split's image count and size from its header, and its largest label
 * (a labels file holds a byte per image: small enough to read). */
static enum isif_rc probe_split(const char *dir, const char *prefix, int64_t *n, int *h, int *w,
				int *max_label, struct isif_error *err)
{
	char img[ISIF_DS_PATH_MAX], lab[ISIF_DS_PATH_MAX], name[64];
	uint32_t d[3];
	snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
	int rc = find_idx(img, dir, name, err);
	if (!rc) {
		snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
		rc = find_idx(lab, dir, name, err);
	}
	if (!rc)
		rc = probe_images(img, d, err);
	if (rc)
		return rc;
	struct isif_split s = { .n = d[0] };
	s.labels = malloc((size_t)s.n * sizeof *s.labels + 1);
	if (!s.labels)
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", lab);
	rc = read_labels(&s, lab, max_label, err);
	free(s.labels);
	*n = d[0];
	*h = (int)d[1];
	*w = (int)d[2];
	return rc;
}

enum isif_rc isif_idx_probe(const char *dir, struct isif_dataset_shape *out, struct isif_error *err)
{
	int max_label = -1, h, w;
	int rc = probe_split(dir, "train", &out->n_train, &out->h, &out->w, &max_label, err);
	if (!rc)
		rc = probe_split(dir, "t10k", &out->n_test, &h, &w, &max_label, err);
	if (rc)
		return rc;
	if (h != out->h || w != out->w)
		return isif_fail(err, ISIF_EFORMAT, "%s: test images are %dx%d but train images %dx%d",
				 dir, h, w, out->h, out->w);
	out->c = 1;
	out->num_classes = max_label + 1;
	return ISIF_OK;
}
