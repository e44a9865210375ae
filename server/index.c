/*
 * server/index.c — per-job embedding indexes: the index.bin format, the
 * publishing of a new index by a job's worker, and the shared in-memory
 * copies the HTTP threads search (see index.h for the protocol).
 *
 * Lifetime of a loaded index: one reference for the cache slot that holds
 * it and one for each request using it; the last index_release frees the
 * blob and the model. A swap replaces the slot's pointer under the cache
 * mutex, so a request sees either the old copy or the new one, whole.
 */
#include "index.h"
#include "ann_index.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isif/data/augment.h"
#include "isif/data/image.h"
#include "isif/base/fileio.h"
#include "isif/nn/model.h"
#include "isif/base/rng.h"
#include "isif/eval/gallery.h"
#include "isif/train/checkpoint.h"
#include "isif/train/train.h"
#include "items.h"
#include "log.h"
#include "store_items.h"
#include "store_retrieval.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "index.bin is written in host order: little-endian hosts only"
#endif

#define INDEX_MAGIC "ISIFIDX1"
#define INDEX_HEADER_BYTES 256
#define INDEX_MAX_ROWS (INT64_C(1) << 27)   /* per split: 134M rows */
#define INDEX_MAX_DIM 4096
#define INDEX_MAX_SIDE 4096
#define EMBED_BATCH 16                      /* images per model forward */
#define GALLERY_BUCKETS 6                   /* k of a packed gallery: 16, 128, ... (k_bucket) */

/* The header as it lies on disk (every field naturally aligned). */
struct index_header {
	char magic[8];
	uint32_t header_bytes, dim;
	int64_t n[2];                 /* train, test rows */
	int32_t epoch, c, h, w;
	float mean[3], std[3];
	char model[ISIF_SPEC_NAME_LEN], dataset[ISIF_SPEC_NAME_LEN];
	int32_t crop;                 /* centre crop side (augment.random_crop), 0: none;
				       * files from before it hold 0 here */
	uint8_t reserved[52];
};
_Static_assert(sizeof(struct index_header) == INDEX_HEADER_BYTES, "index header is 256 bytes");

struct index_idpos {
	int32_t id;
	int32_t row;
};

struct index_priv {
	atomic_int refs;
	void *blob;                   /* the whole file, mapped read-only */
	size_t blob_len;
	pthread_mutex_t model_mu;     /* guards model and every forward */
	struct isif_model *model;
	pthread_mutex_t gal_mu;       /* guards gal and every search */
	struct isif_gallery *gal[2][GALLERY_BUCKETS];  /* packed splits, by k bucket */
};

static const char *const split_names[2] = {"train", "test"};

int index_split_parse(const char *name)
{
	for (int s = 0; s < 2; s++)
		if (name && strcmp(name, split_names[s]) == 0)
			return s;
	return -1;
}

const char *index_split_name(int split)
{
	return split == SPLIT_TEST ? "test" : "train";
}

/* ---- which rows ------------------------------------------------------------- */

static int label_in(int label, const int *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == label)
			return 1;
	return 0;
}

/* As core/train/train.c select_images: the classes filter keeps dataset order,
 * then train_subset takes the head of a fixed seeded shuffle. */
int64_t index_select_rows(const struct isif_job_spec *spec, const struct isif_dataset *ds,
			  int split, int32_t *out)
{
	const struct isif_split *s = split == SPLIT_TRAIN ? &ds->train : &ds->test;
	const int *set = split == SPLIT_TRAIN ? spec->train_classes : spec->test_classes;
	int n_set = split == SPLIT_TRAIN ? spec->n_train_classes : spec->n_test_classes;
	int64_t n = 0;
	for (int64_t i = 0; i < s->n; i++)
		if (!spec->has_classes || label_in(s->labels[i], set, n_set))
			out[n++] = (int32_t)i;
	if (split == SPLIT_TRAIN)
		n = isif_train_subset(out, n, spec->train_subset);
	return n;
}

/* ---- index.bin -------------------------------------------------------------- */

static size_t file_bytes(int64_t n0, int64_t n1, int dim)
{
	return INDEX_HEADER_BYTES + (size_t)(n0 + n1) * (2 * sizeof(int32_t) + (size_t)dim * sizeof(float));
}

enum isif_rc index_file_write(const char *path, const struct index_data *m, struct isif_error *err)
{
	struct index_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, INDEX_MAGIC, 8);
	h.header_bytes = INDEX_HEADER_BYTES;
	h.dim = (uint32_t)m->dim;
	h.epoch = m->epoch;
	h.c = m->c;
	h.h = m->h;
	h.w = m->w;
	h.crop = m->crop;
	for (int k = 0; k < 3; k++) {
		h.mean[k] = m->mean[k];
		h.std[k] = m->std[k];
	}
	snprintf(h.model, sizeof h.model, "%s", m->model);
	snprintf(h.dataset, sizeof h.dataset, "%s", m->dataset);
	struct isif_chunk chunks[7] = {{&h, sizeof h}};
	for (int s = 0; s < 2; s++) {
		size_t n = (size_t)m->split[s].n;
		h.n[s] = m->split[s].n;
		chunks[1 + 2 * s] = (struct isif_chunk){m->split[s].ids, n * sizeof(int32_t)};
		chunks[2 + 2 * s] = (struct isif_chunk){m->split[s].labels, n * sizeof(int32_t)};
		chunks[5 + s] = (struct isif_chunk){m->split[s].emb, n * (size_t)m->dim * sizeof(float)};
	}
	return isif_write_atomic(path, chunks, 7, err);
}

static int by_id_cmp(const void *a, const void *b)
{
	const struct index_idpos *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static void data_free(struct index_data *ix)
{
	if (!ix)
		return;
	ann_state_free(ix->ann);        /* hook: the approximate index (ann_index.c) */
	item_set_free(ix->items);
	if (ix->priv) {
		isif_model_free(ix->priv->model);
		pthread_mutex_destroy(&ix->priv->model_mu);
		for (int sp = 0; sp < 2; sp++)
			for (int b = 0; b < GALLERY_BUCKETS; b++)
				isif_gallery_free(ix->priv->gal[sp][b]);
		pthread_mutex_destroy(&ix->priv->gal_mu);
		if (ix->priv->blob)
			munmap(ix->priv->blob, ix->priv->blob_len);
		free(ix->priv);
	}
	for (int s = 0; s < 2; s++)
		free(ix->split[s].by_id);
	for (int i = 0; i < ix->n_classes; i++)
		free(ix->class_names[i]);
	free(ix->class_names);
	free(ix);
}

/* Checks the header against the file's length; fills ix's scalars. */
static enum isif_rc parse_header(struct index_data *ix, const void *blob, size_t len, const char *path,
			struct isif_error *err)
{
	struct index_header h;
	if (len < sizeof h)
		return isif_fail(err, ISIF_EFORMAT, "%s: truncated header", path);
	memcpy(&h, blob, sizeof h);
	if (memcmp(h.magic, INDEX_MAGIC, 8) != 0 || h.header_bytes != INDEX_HEADER_BYTES)
		return isif_fail(err, ISIF_EFORMAT, "%s: not an isifd index file", path);
	if (h.dim < 1 || h.dim > INDEX_MAX_DIM || h.n[0] < 1 || h.n[0] > INDEX_MAX_ROWS ||
	    h.n[1] < 0 || h.n[1] > INDEX_MAX_ROWS)
		return isif_fail(err, ISIF_EFORMAT, "%s: bad sizes (dim %u, %lld + %lld rows)", path,
				 h.dim, (long long)h.n[0], (long long)h.n[1]);
	if ((h.c != 1 && h.c != 3) || h.h < 1 || h.h > INDEX_MAX_SIDE || h.w < 1 ||
	    h.w > INDEX_MAX_SIDE)
		return isif_fail(err, ISIF_EFORMAT, "%s: bad image shape %dx%dx%d", path, h.c, h.h, h.w);
	if (h.crop < 0 || h.crop > h.h || h.crop > h.w || (h.crop > 0 && h.crop < 16))
		return isif_fail(err, ISIF_EFORMAT, "%s: bad crop %d", path, h.crop);
	for (int k = 0; k < 3; k++)
		if (!isfinite(h.mean[k]) || !(h.std[k] > 0) || !isfinite(h.std[k]))
			return isif_fail(err, ISIF_EFORMAT, "%s: bad normalisation", path);
	if (!memchr(h.model, 0, sizeof h.model) || !h.model[0] ||
	    !memchr(h.dataset, 0, sizeof h.dataset))
		return isif_fail(err, ISIF_EFORMAT, "%s: bad model or dataset name", path);
	size_t want = file_bytes(h.n[0], h.n[1], (int)h.dim);
	if (len != want)
		return isif_fail(err, ISIF_EFORMAT, "%s: %zu bytes, the header says %zu", path, len, want);
	ix->epoch = h.epoch;
	ix->dim = (int)h.dim;
	ix->c = h.c;
	ix->h = h.h;
	ix->w = h.w;
	ix->crop = h.crop;
	memcpy(ix->mean, h.mean, sizeof ix->mean);
	memcpy(ix->std, h.std, sizeof ix->std);
	memcpy(ix->model, h.model, sizeof ix->model);
	memcpy(ix->dataset, h.dataset, sizeof ix->dataset);
	ix->split[0].n = h.n[0];
	ix->split[1].n = h.n[1];
	return ISIF_OK;
}

/* Points the splits into the blob and builds the id → row maps. */
static enum isif_rc map_rows(struct index_data *ix, const char *path, struct isif_error *err)
{
	const char *p = (const char *)ix->priv->blob + INDEX_HEADER_BYTES;
	for (int s = 0; s < 2; s++) {
		struct index_split *sp = &ix->split[s];
		sp->ids = (const int32_t *)p;
		p += sp->n * sizeof(int32_t);
		sp->labels = (const int32_t *)p;
		p += sp->n * sizeof(int32_t);
	}
	for (int s = 0; s < 2; s++) {
		struct index_split *sp = &ix->split[s];
		sp->emb = (const float *)p;
		p += sp->n * ix->dim * sizeof(float);
		sp->by_id = malloc((size_t)(sp->n ? sp->n : 1) * sizeof *sp->by_id);
		if (!sp->by_id)
			return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", path);
		for (int64_t r = 0; r < sp->n; r++) {
			if (sp->ids[r] < 0 || sp->labels[r] < -1)
				return isif_fail(err, ISIF_EFORMAT, "%s: bad id or label in row %lld",
						 path, (long long)r);
			sp->by_id[r] = (struct index_idpos){sp->ids[r], (int32_t)r};
		}
		qsort(sp->by_id, (size_t)sp->n, sizeof *sp->by_id, by_id_cmp);
		for (int64_t r = 1; r < sp->n; r++)
			if (sp->by_id[r].id == sp->by_id[r - 1].id)
				return isif_fail(err, ISIF_EFORMAT, "%s: image %d twice in %s", path,
						 sp->by_id[r].id, split_names[s]);
	}
	return ISIF_OK;
}

/* The JSON header of a safetensors file (malloc'd, NUL-terminated), or NULL. */
static char *st_header(const char *path)
{
	uint8_t len8[8];
	char *text = NULL;
	FILE *f = fopen(path, "rb");
	if (!f || fread(len8, 1, 8, f) != 8)
		goto out;
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | len8[i];
	if (n < 2 || n > ISIF_ST_MAX_HEADER || !(text = malloc(n + 1)))
		goto out;
	if (fread(text, 1, n, f) != n) {
		free(text);
		text = NULL;
		goto out;
	}
	text[n] = '\0';
out:
	if (f)
		fclose(f);
	return text;
}

/* ix's class names from the "classes" metadata of its model (a JSON array
 * of strings, written by isif_checkpoint_dataset_meta). Names are a
 * convenience: a model without them, or with a malformed list, has none. */
static void load_class_names(struct index_data *ix)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/model.safetensors", ix->dir);
	char *text = st_header(path);
	json_t *hdr = text ? json_loads(text, 0, NULL) : NULL;
	const char *list = json_string_value(json_object_get(json_object_get(hdr, "__metadata__"),
							     "classes"));
	json_t *names = list ? json_loads(list, 0, NULL) : NULL;
	size_t n = json_is_array(names) ? json_array_size(names) : 0;
	char **v = n && n <= 1 << 20 ? calloc(n, sizeof *v) : NULL;
	for (size_t i = 0; v && i < n; i++) {
		const char *name = json_string_value(json_array_get(names, i));
		if (!name || !(v[i] = strdup(name))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			v = NULL;
		}
	}
	if (v) {
		ix->class_names = v;
		ix->n_classes = (int)n;
	}
	json_decref(names);
	json_decref(hdr);
	free(text);
}

const char *index_class_name(const struct index_data *ix, int label)
{
	return label >= 0 && label < ix->n_classes ? ix->class_names[label] : NULL;
}

/* The file mapped read-only and private: the page cache holds one copy of
 * an index however many times it is loaded, and loading costs no read of
 * its matrices (the search packs them once, on first use). index.bin is
 * never modified in place (a newer index is a new directory), so the
 * mapping stays valid while the file is unlinked. */
static enum isif_rc map_file(const char *path, void **out, size_t *len, struct isif_error *err)
{
	*out = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0)
		return isif_fail(err, ISIF_EIO, "%s: %s", path,
				 strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 1 ||
	    (uint64_t)sb.st_size > file_bytes(INDEX_MAX_ROWS, INDEX_MAX_ROWS, INDEX_MAX_DIM)) {
		close(fd);
		return isif_fail(err, ISIF_EFORMAT, "%s: not a regular file of a valid size", path);
	}
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return isif_fail(err, ISIF_ENOMEM, "%s: mmap: %s", path, strerror(errno));
	*out = p;
	*len = (size_t)sb.st_size;
	return ISIF_OK;
}

enum isif_rc index_load_dir(const char *dir, struct index_data **out, struct isif_error *err)
{
	char path[1100];
	size_t len = 0;
	*out = NULL;
	struct index_data *ix = calloc(1, sizeof *ix);
	if (!ix || !(ix->priv = calloc(1, sizeof *ix->priv))) {
		free(ix);
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	}
	atomic_init(&ix->priv->refs, 1);
	pthread_mutex_init(&ix->priv->model_mu, NULL);
	pthread_mutex_init(&ix->priv->gal_mu, NULL);
	snprintf(ix->dir, sizeof ix->dir, "%s", dir);
	snprintf(path, sizeof path, "%s/index.bin", dir);
	int rc = map_file(path, &ix->priv->blob, &len, err);
	ix->priv->blob_len = len;
	if (!rc)
		rc = parse_header(ix, ix->priv->blob, len, path, err);
	if (!rc)
		rc = map_rows(ix, path, err);
	if (rc) {
		data_free(ix);
		return rc;
	}
	load_class_names(ix);
	if (!(ix->items = item_set_create(ix->dim))) {
		data_free(ix);
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	}
	ix->ann = ann_state_open(ix);   /* hook: ann.faiss beside index.bin, if built (ann_index.c) */
	*out = ix;
	return ISIF_OK;
}

void index_release(struct index_data *ix)
{
	if (ix && atomic_fetch_sub(&ix->priv->refs, 1) == 1)
		data_free(ix);
}

static struct index_data *index_ref(struct index_data *ix)
{
	atomic_fetch_add(&ix->priv->refs, 1);
	return ix;
}

int64_t index_find_row(const struct index_data *ix, int split, int64_t id)
{
	const struct index_split *sp = &ix->split[split];
	if (id < 0 || id > INT32_MAX)
		return -1;
	struct index_idpos key = {(int32_t)id, 0};
	const struct index_idpos *hit = bsearch(&key, sp->by_id, (size_t)sp->n, sizeof key, by_id_cmp);
	return hit ? hit->row : -1;
}

/* ---- publishing ------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb, (void)f;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tree(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) == 0)
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* model.safetensors: a hard link to the checkpoint (which the trainer only
 * ever replaces by rename), or a copy where links are not possible. */
static enum isif_rc link_model(const char *checkpoint, const char *dst, struct isif_error *err)
{
	if (link(checkpoint, dst) == 0)
		return ISIF_OK;
	void *buf = NULL;
	size_t len = 0;
	int rc = isif_read_file(checkpoint, (size_t)4 << 30, &buf, &len, err);
	if (!rc) {
		struct isif_chunk ch = {buf, len};
		rc = isif_write_atomic(dst, &ch, 1, err);
	}
	free(buf);
	return rc;
}

/* Removes the job's index-* entries other than `keep` (a name). */
static void remove_other_indexes(const char *job_dir, const char *keep)
{
	char path[1400];
	DIR *d = opendir(job_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "index-", 6) != 0 || strcmp(e->d_name, keep) == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", job_dir, e->d_name);
		remove_tree(path);
	}
	closedir(d);
}

/* Fills the index's rows from the source: ids and labels of the selected
 * dataset images, checked against the number of embeddings. */
static enum isif_rc source_rows(const struct index_source *src, int32_t *ids[2], int32_t *labels[2],
		       struct isif_error *err)
{
	for (int s = 0; s < 2; s++) {
		const struct isif_split *sp = s == SPLIT_TRAIN ? &src->ds->train : &src->ds->test;
		ids[s] = malloc((size_t)(sp->n ? sp->n : 1) * sizeof(int32_t));
		labels[s] = malloc((size_t)(sp->n ? sp->n : 1) * sizeof(int32_t));
		if (!ids[s] || !labels[s])
			return isif_fail(err, ISIF_ENOMEM, "out of memory");
		int64_t n = index_select_rows(src->spec, src->ds, s, ids[s]);
		if (n != src->n[s])
			return isif_fail(err, ISIF_EINVAL, "%lld %s embeddings for %lld selected images",
					 (long long)src->n[s], split_names[s], (long long)n);
		for (int64_t r = 0; r < n; r++)
			labels[s][r] = sp->labels[ids[s][r]];
	}
	return ISIF_OK;
}

enum isif_rc index_publish(struct store *st, const struct index_source *src, struct isif_error *err)
{
	char name[64], dir[1100], tmp[1200], file[1300];
	int32_t *ids[2] = {NULL, NULL}, *labels[2] = {NULL, NULL};
	struct index_data *m = calloc(1, sizeof *m);
	struct timespec now;
	int rc = ISIF_OK;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(name, sizeof name, "index-%06d-%llx", src->epoch,
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
	snprintf(dir, sizeof dir, "%s/%s", src->job_dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", dir);
	if (!m) {
		rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
		goto out;
	}
	rc = source_rows(src, ids, labels, err);
	if (rc)
		goto out;
	m->epoch = src->epoch;
	m->dim = src->dim;
	m->c = src->ds->train.c;
	m->h = src->ds->train.h;
	m->w = src->ds->train.w;
	m->crop = src->spec->random_crop;
	memcpy(m->mean, src->ds->mean, sizeof m->mean);
	memcpy(m->std, src->ds->std, sizeof m->std);
	snprintf(m->model, sizeof m->model, "%s", src->spec->model);
	snprintf(m->dataset, sizeof m->dataset, "%s", src->spec->dataset);
	for (int s = 0; s < 2; s++)
		m->split[s] = (struct index_split){src->n[s], ids[s], labels[s], src->emb[s], NULL};
	if (mkdir(tmp, 0750) != 0) {
		rc = isif_fail(err, ISIF_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	snprintf(file, sizeof file, "%s/index.bin", tmp);
	rc = index_file_write(file, m, err);
	snprintf(file, sizeof file, "%s/model.safetensors", tmp);
	if (!rc)
		rc = link_model(src->checkpoint_path, file, err);
	if (!rc && (fsync_path(tmp) != 0 || rename(tmp, dir) != 0 || fsync_path(src->job_dir) != 0))
		rc = isif_fail(err, ISIF_EIO, "%s: %s", dir, strerror(errno));
	if (rc)
		goto out;
	struct index_row row = {.job = src->job, .epoch = src->epoch, .n_train = src->n[0],
				.n_test = src->n[1], .dim = src->dim,
				.bytes = (int64_t)file_bytes(src->n[0], src->n[1], src->dim)};
	snprintf(row.path, sizeof row.path, "jobs/%lld/%s", (long long)src->job, name);
	struct isif_error e_db;
	if (store_index_put(st, &row, &e_db) != ISIF_OK) {
		rc = isif_fail(err, ISIF_EIO, "recording the index: %s", e_db.msg);
		goto out;
	}
	remove_other_indexes(src->job_dir, name);
	log_info("job %lld: embedding index of epoch %d stored (%lld train, %lld test rows)",
		 (long long)src->job, src->epoch, (long long)src->n[0], (long long)src->n[1]);
out:
	if (rc) {
		remove_tree(tmp);
		remove_tree(dir);
	}
	for (int s = 0; s < 2; s++) {
		free(ids[s]);
		free(labels[s]);
	}
	free(m);
	return rc;
}

/* ---- the cache -------------------------------------------------------------- */

struct slot {
	int64_t job;                  /* 0: free */
	char path[INDEX_PATH_LEN];    /* the row's path when it was loaded */
	struct index_data *ix;
	uint64_t used;                /* LRU tick */
	long long gen;                /* store_index_generation when the row was last read */
};

struct index_cache {
	struct store *st;
	char state_dir[1024];
	pthread_mutex_t mu;           /* slots, tick, loads */
	pthread_mutex_t load_mu;      /* one file load at a time (held without mu) */
	pthread_mutex_t items_mu;     /* item adds and deletes, and item loads with the install
				       * that follows (held without mu; order: load_mu, items_mu, mu) */
	int n;
	struct slot *slots;
	uint64_t tick;
	long loads;
};

struct index_cache *index_cache_create(struct store *st, const char *state_dir, int capacity)
{
	struct index_cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->n = capacity > 0 ? capacity : 1;
	c->slots = calloc((size_t)c->n, sizeof *c->slots);
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->st = st;
	snprintf(c->state_dir, sizeof c->state_dir, "%s", state_dir);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->load_mu, NULL);
	pthread_mutex_init(&c->items_mu, NULL);
	return c;
}

void index_cache_free(struct index_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		index_release(c->slots[i].ix);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->load_mu);
	pthread_mutex_destroy(&c->items_mu);
	free(c->slots);
	free(c);
}

long index_cache_loads(struct index_cache *c)
{
	pthread_mutex_lock(&c->mu);
	long n = c->loads;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* With c->mu held: the slot of job, or NULL. */
static struct slot *find_slot(struct index_cache *c, int64_t job)
{
	for (int i = 0; i < c->n; i++)
		if (c->slots[i].job == job)
			return &c->slots[i];
	return NULL;
}

/* With c->mu held: a reference to the cached copy of row, or NULL; the
 * slot is then known current as of generation gen. */
static struct index_data *cached(struct index_cache *c, const struct index_row *row,
				 long long gen)
{
	struct slot *s = find_slot(c, row->job);
	if (!s || strcmp(s->path, row->path) != 0)
		return NULL;
	s->used = ++c->tick;
	s->gen = gen;
	return index_ref(s->ix);
}

/* A reference to the job's cached index when no index row changed since
 * the slot was checked against the database, else NULL (look it up). */
static struct index_data *current(struct index_cache *c, int64_t job, long long gen)
{
	pthread_mutex_lock(&c->mu);
	struct slot *s = find_slot(c, job);
	struct index_data *ix = NULL;
	if (s && s->gen == gen) {
		s->used = ++c->tick;
		ix = index_ref(s->ix);
	}
	pthread_mutex_unlock(&c->mu);
	return ix;
}

/* With c->mu held: puts ix (taking one reference for the slot) in the
 * job's slot, a free one or the least recently used one. Returns the
 * displaced index for the caller to release outside the lock. */
static struct index_data *install(struct index_cache *c, const struct index_row *row,
				  struct index_data *ix, long long gen)
{
	struct slot *s = find_slot(c, row->job);
	if (!s) {
		/* A free slot, else the least recently used one. */
		s = &c->slots[0];
		for (int i = 1; i < c->n && s->job; i++)
			if (!c->slots[i].job || c->slots[i].used < s->used)
				s = &c->slots[i];
	}
	struct index_data *old = s->ix;
	s->job = row->job;
	snprintf(s->path, sizeof s->path, "%s", row->path);
	s->ix = index_ref(ix);
	s->used = ++c->tick;
	s->gen = gen;
	return old;
}

/* Drops the job's slot (deleted job or index gone). */
static void forget(struct index_cache *c, int64_t job)
{
	pthread_mutex_lock(&c->mu);
	struct slot *s = find_slot(c, job);
	struct index_data *old = NULL;
	if (s) {
		old = s->ix;
		memset(s, 0, sizeof *s);
	}
	pthread_mutex_unlock(&c->mu);
	index_release(old);
}

/* store_items_each's callback: one stored item into the set. */
static enum isif_rc load_item(void *arg, int64_t seq, const char *id, int32_t label,
			      const char *meta, const float *emb)
{
	return item_set_add(arg, seq, id, label, meta, emb);
}

/* With items_mu held: a reference to the job's cached index, or NULL. */
static struct index_data *cached_job(struct index_cache *c, int64_t job)
{
	pthread_mutex_lock(&c->mu);
	struct slot *s = find_slot(c, job);
	struct index_data *ix = s ? index_ref(s->ix) : NULL;
	pthread_mutex_unlock(&c->mu);
	return ix;
}

enum isif_rc index_items_add(struct index_cache *c, int64_t job, const struct item_new *items,
			     int n, int dim, bool replace, int64_t max_items, struct item_added *out,
			     struct isif_error *err)
{
	pthread_mutex_lock(&c->items_mu);
	enum isif_rc rc = store_items_add(c->st, job, items, n, dim, replace, max_items, out, err);
	struct index_data *ix = rc ? NULL : cached_job(c, job);
	for (int i = 0; ix && i < n; i++) {
		if (out[i].replaced >= 0)
			item_set_remove(ix->items, out[i].replaced);
		if (ix->dim != dim || item_set_add(ix->items, out[i].seq, items[i].id, items[i].label,
						   items[i].metadata, items[i].emb) != ISIF_OK) {
			/* committed but not in memory: the next load must read it */
			log_warn("job %lld: item \"%s\" stored but not loaded; reloading the index",
				 (long long)job, items[i].id);
			index_release(ix);
			ix = NULL;
			forget(c, job);
		}
	}
	pthread_mutex_unlock(&c->items_mu);
	index_release(ix);
	return rc;
}

enum isif_rc index_items_delete(struct index_cache *c, int64_t job, const char *id,
				struct isif_error *err)
{
	int64_t seq = -1;
	pthread_mutex_lock(&c->items_mu);
	enum isif_rc rc = store_items_delete(c->st, job, id, &seq, err);
	struct index_data *ix = rc ? NULL : cached_job(c, job);
	if (ix)
		item_set_remove(ix->items, seq);
	pthread_mutex_unlock(&c->items_mu);
	index_release(ix);
	return rc;
}

struct index_data *index_acquire_current(struct index_cache *c, int64_t job)
{
	return current(c, job, store_index_generation(c->st));
}

enum isif_rc index_acquire(struct index_cache *c, int64_t job, struct index_data **out, struct isif_error *err)
{
	struct index_row row;
	/* no index row changed since the slot was read: no SQL on the path of
	 * every query */
	long long gen = store_index_generation(c->st);
	if ((*out = current(c, job, gen)))
		return ISIF_OK;
	/* A newer index may replace the directory between the lookup and the
	 * load; the lookup is then repeated. */
	enum isif_rc rc = ISIF_EIO;
	for (int attempt = 0; attempt < 3; attempt++) {
		struct isif_error e_db;
		gen = store_index_generation(c->st);
		rc = store_index_get(c->st, job, &row, &e_db);
		if (rc == ISIF_ENOTFOUND || rc == ISIF_EEMPTY) {
			forget(c, job);
			return isif_fail(err, rc, "%s", e_db.msg);
		}
		if (rc)
			return isif_fail(err, rc, "database: %s", e_db.msg);
		pthread_mutex_lock(&c->mu);
		*out = cached(c, &row, gen);
		pthread_mutex_unlock(&c->mu);
		if (*out)
			return ISIF_OK;
		pthread_mutex_lock(&c->load_mu);
		pthread_mutex_lock(&c->mu);
		*out = cached(c, &row, gen);    /* another request may have loaded it meanwhile */
		pthread_mutex_unlock(&c->mu);
		if (*out) {
			pthread_mutex_unlock(&c->load_mu);
			return ISIF_OK;
		}
		char dir[1600];
		struct index_data *ix = NULL;
		snprintf(dir, sizeof dir, "%s/%s", c->state_dir, row.path);
		rc = index_load_dir(dir, &ix, err);
		if (rc == ISIF_OK) {
			ix->job = job;
			pthread_mutex_lock(&c->items_mu);
			rc = store_items_each(c->st, job, ix->dim, load_item, ix->items, err);
			struct index_data *old = NULL;
			if (rc == ISIF_OK) {
				pthread_mutex_lock(&c->mu);
				c->loads++;
				old = install(c, &row, ix, gen);
				pthread_mutex_unlock(&c->mu);
			}
			pthread_mutex_unlock(&c->items_mu);
			index_release(old);
			if (rc == ISIF_OK) {
				*out = ix;    /* the reference index_load_dir gave */
			} else {
				index_release(ix);
				pthread_mutex_unlock(&c->load_mu);
				return rc;
			}
		}
		pthread_mutex_unlock(&c->load_mu);
		if (rc == ISIF_OK)
			return ISIF_OK;
		if (access(dir, F_OK) == 0)
			break;        /* there but unreadable: no retry helps */
	}
	return rc;
}

/* ---- queries ---------------------------------------------------------------- */

void index_input_size(const struct index_data *ix, int *in_h, int *in_w)
{
	*in_h = ix->crop > 0 ? ix->crop : ix->h;
	*in_w = ix->crop > 0 ? ix->crop : ix->w;
}

enum isif_rc index_preprocess(const struct index_data *ix, const uint8_t *px, int c, int h, int w,
		     float *out, struct isif_error *err)
{
	size_t plane = (size_t)ix->h * (size_t)ix->w;
	uint8_t *sized = NULL, *conv = NULL;
	float *ws = NULL;
	int rc = ISIF_OK;
	if (c != 1 && c != 3)
		return isif_fail(err, ISIF_EINVAL, "%d channels", c);
	const uint8_t *img = px;
	if (h != ix->h || w != ix->w) {
		if (!(sized = malloc(plane * (size_t)c)))
			goto nomem;
		isif_image_resize_u8(sized, ix->h, ix->w, px, c, h, w);
		img = sized;
	}
	if (c != ix->c) {
		if (!(conv = malloc(plane * (size_t)ix->c)))
			goto nomem;
		isif_image_convert_u8(conv, ix->c, img, c, ix->h, ix->w);
		img = conv;
	}
	struct isif_augment aug;
	struct isif_rng unused;
	int ih, iw;
	index_input_size(ix, &ih, &iw);
	if (ix->crop)
		isif_augment_center(&aug, ih, iw, ix->mean, ix->std);
	else
		isif_augment_none(&aug, ih, iw, ix->mean, ix->std);
	size_t ws_len = isif_augment_workspace(&aug, ix->c, ix->h, ix->w);
	if (!(ws = malloc((ws_len ? ws_len : 1) * sizeof(float))))
		goto nomem;
	isif_rng_seed(&unused, 0, 0);
	isif_augment_apply(out, img, ix->c, ix->h, ix->w, &aug, &unused, ws);
	goto out;
nomem:
	rc = isif_fail(err, ISIF_ENOMEM, "out of memory");
out:
	free(sized);
	free(conv);
	free(ws);
	return rc;
}

/* With model_mu held: the model of the index's checkpoint. */
static enum isif_rc load_model(struct index_data *ix, struct isif_error *err)
{
	char path[1100];
	struct isif_model *m = NULL;
	snprintf(path, sizeof path, "%s/model.safetensors", ix->dir);
	int rc = isif_model_create(&m, ix->model, ix->c, ix->dim, 0, err);
	if (!rc)
		rc = isif_checkpoint_load(m, path, NULL, err);
	int ih, iw;
	index_input_size(ix, &ih, &iw);
	if (!rc)
		rc = isif_model_plan(m, EMBED_BATCH, ih, iw, err);
	if (rc) {
		isif_model_free(m);
		return rc;
	}
	ix->priv->model = m;
	return ISIF_OK;
}

enum isif_rc index_embed(struct index_data *ix, const float *x, int n, float *out, struct isif_error *err)
{
	int ih, iw;
	index_input_size(ix, &ih, &iw);
	size_t img = (size_t)ix->c * (size_t)ih * (size_t)iw;
	int rc = ISIF_OK;
	pthread_mutex_lock(&ix->priv->model_mu);
	if (!ix->priv->model)
		rc = load_model(ix, err);
	for (int i = 0; !rc && i < n; i += EMBED_BATCH) {
		int count = n - i < EMBED_BATCH ? n - i : EMBED_BATCH;
		const float *emb;
		rc = isif_model_forward(ix->priv->model, x + (size_t)i * img, count, ih, iw,
					false, 1, &emb, err);
		if (!rc)
			memcpy(out + (size_t)i * ix->dim, emb, (size_t)count * ix->dim * sizeof(float));
	}
	pthread_mutex_unlock(&ix->priv->model_mu);
	return rc;
}

/* ---- search ----------------------------------------------------------------- */

/* The k a packed gallery keeps for a request of k results: a few sizes, so
 * that requests with different k share one packed copy (the first k of the
 * bucket's k best are the k best: one total order). */
static int k_bucket(int k)
{
	static const int sizes[GALLERY_BUCKETS - 1] = {16, 128, 1024, 8192, 32768};
	for (int b = 0; b < GALLERY_BUCKETS - 1; b++)
		if (k <= sizes[b])
			return b;
	return GALLERY_BUCKETS - 1;
}

static enum isif_rc search_exact(struct index_data *ix, int split, const float *q, int nq, int k,
				 int threads, int max_batch, int64_t *idx, float *sim,
				 struct isif_error *err);

enum isif_rc index_search_batch(struct index_data *ix, int split, const float *q, int nq, int k,
				int threads, int max_batch, int64_t *idx, float *sim,
				struct isif_error *err)
{
	static const int sizes[GALLERY_BUCKETS] = {16, 128, 1024, 8192, 32768, 100001};
	const struct index_split *g = &ix->split[split];
	if (k < 1 || k > sizes[GALLERY_BUCKETS - 1] || nq < 1)
		return isif_fail(err, ISIF_EINVAL, "search: k %d, %d queries", k, nq);
	for (int64_t i = 0; g->n == 0 && i < (int64_t)nq * k; i++) {
		idx[i] = -1;
		sim[i] = -INFINITY;
	}
	if (g->n == 0)
		return ISIF_OK;
	/* the job's approximate index (ann_index.c), when it has one for this
	 * split, answers the batch instead of the exact scan below */
	enum isif_rc rc = ISIF_OK;
	if (!index_ann_search(ix, split, q, nq, k, idx, sim))
		rc = search_exact(ix, split, q, nq, k, threads, max_batch, idx, sim, err);
	/* the items added after training join the train split, exactly */
	if (!rc && split == SPLIT_TRAIN && ix->items)
		item_set_merge_into(ix->items, g->n, q, nq, k, idx, sim);
	return rc;
}

/* The exact top-k of the split's own rows (index_search_batch). */
static enum isif_rc search_exact(struct index_data *ix, int split, const float *q, int nq, int k,
				 int threads, int max_batch, int64_t *idx, float *sim,
				 struct isif_error *err)
{
	static const int sizes[GALLERY_BUCKETS] = {16, 128, 1024, 8192, 32768, 100001};
	const struct index_split *g = &ix->split[split];
	int b = k_bucket(k);
	int kb = sizes[b];
	enum isif_rc rc = ISIF_OK;
	int64_t *bi = malloc((size_t)nq * (size_t)kb * sizeof *bi);
	float *bs = malloc((size_t)nq * (size_t)kb * sizeof *bs);
	if (!bi || !bs) {
		rc = isif_fail(err, ISIF_ENOMEM, "search: out of memory");
		goto out;
	}
	pthread_mutex_lock(&ix->priv->gal_mu);
	struct isif_gallery **gal = &ix->priv->gal[split][b];
	if (!*gal)
		rc = isif_gallery_create(gal, g->emb, g->n, ix->dim, kb, threads, max_batch, err);
	if (!rc)
		isif_gallery_search(*gal, q, nq, bi, bs);
	pthread_mutex_unlock(&ix->priv->gal_mu);
	for (int i = 0; !rc && i < nq; i++) {
		memcpy(idx + (size_t)i * k, bi + (size_t)i * kb, (size_t)k * sizeof *idx);
		memcpy(sim + (size_t)i * k, bs + (size_t)i * kb, (size_t)k * sizeof *sim);
	}
out:
	free(bi);
	free(bs);
	return rc;
}
