/*
 * server/dscache.c — the HTTP side's loaded datasets (see dscache.h): a
 * list of entries keyed by (resolved path, format, image size), each with
 * a user count and a last-use tick. A load runs without the cache mutex
 * (it takes seconds; dscache_peek must never wait for it): its entry is
 * marked loading, and other acquirers of the same key wait on a condition
 * for it instead of loading the files a second time.
 */
#include "dscache.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isif/train/spec.h"
#include "log.h"
#include "store_retrieval.h"

struct ds_key {
	char path[PATH_MAX];              /* resolved: one copy whatever the spelling */
	int format;                       /* enum isif_dataset_format as registered */
	int image_size;                   /* the folder reader's resize */
};

struct dscache_entry {
	struct dscache_entry *next;
	struct ds_key key;
	int users;
	unsigned long used;
	bool loading;                     /* being loaded, without the mutex */
	struct isif_dataset ds;
};

struct dscache {
	struct store *st;
	int capacity;
	pthread_mutex_t mu;
	pthread_cond_t loaded;            /* a load ended (either way) */
	struct dscache_entry *list;
	unsigned long tick;
	long loads;
	char folder_cache[1100];          /* "" : none */
	int64_t folder_cache_bytes;
	int threads;
};

void dscache_set_folder_cache(struct dscache *dc, const char *dir, int64_t max_bytes, int threads)
{
	snprintf(dc->folder_cache, sizeof dc->folder_cache, "%s", dir ? dir : "");
	dc->folder_cache_bytes = max_bytes;
	dc->threads = threads;
}

void dscache_folder_options(const struct dscache *dc, struct isif_dataset_options *opt)
{
	opt->threads = dc->threads;
	opt->cache_dir = dc->folder_cache[0] ? dc->folder_cache : NULL;
	opt->cache_max_bytes = dc->folder_cache_bytes;
}

void dscache_log_cache(const char *name, const struct isif_dataset *ds)
{
	if (ds->cache == ISIF_DS_CACHE_HIT)
		log_info("dataset %s: folder cache hit %s (mapped, nothing decoded)", name,
			 ds->cache_note);
	else if (ds->cache == ISIF_DS_CACHE_STORED)
		log_info("dataset %s: decoded, folder cache stored %s", name, ds->cache_note);
	else if (ds->cache == ISIF_DS_CACHE_UNSTORED)
		log_warn("dataset %s: decoded, folder cache %s", name, ds->cache_note);
}

struct dscache *dscache_create(struct store *st, int capacity)
{
	struct dscache *dc = calloc(1, sizeof *dc);
	if (!dc)
		return NULL;
	dc->st = st;
	dc->capacity = capacity > 0 ? capacity : 1;
	pthread_mutex_init(&dc->mu, NULL);
	pthread_cond_init(&dc->loaded, NULL);
	return dc;
}

static void entry_free(struct dscache_entry *e)
{
	isif_dataset_free(&e->ds);
	free(e);
}

void dscache_free(struct dscache *dc)
{
	if (!dc)
		return;
	while (dc->list) {
		struct dscache_entry *e = dc->list;
		dc->list = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&dc->mu);
	pthread_cond_destroy(&dc->loaded);
	free(dc);
}

long dscache_loads(struct dscache *dc)
{
	pthread_mutex_lock(&dc->mu);
	long n = dc->loads;
	pthread_mutex_unlock(&dc->mu);
	return n;
}

/* With mu held: unloads unused entries beyond the capacity, oldest first. */
static void trim(struct dscache *dc)
{
	for (;;) {
		int n = 0;
		struct dscache_entry **victim = NULL;
		for (struct dscache_entry **p = &dc->list; *p; p = &(*p)->next) {
			n++;
			if (!(*p)->users && !(*p)->loading && (!victim || (*p)->used < (*victim)->used))
				victim = p;
		}
		if (n <= dc->capacity || !victim)
			return;
		struct dscache_entry *e = *victim;
		*victim = e->next;
		log_info("dataset %s: unloaded from the query cache", e->key.path);
		entry_free(e);
	}
}

/* The key of the dataset registered as name (a database read, no lock). */
static enum isif_rc key_of(struct dscache *dc, const char *name, struct ds_key *k,
			   struct isif_error *err)
{
	char format[32], path[1024];
	struct isif_error e_db;
	enum isif_rc rc = store_dataset_lookup(dc->st, name, format, sizeof format, path,
					       sizeof path, &e_db);
	if (rc == ISIF_ENOTFOUND)
		return isif_fail(err, rc, "%s", e_db.msg);
	if (rc)
		return isif_fail(err, rc, "database: %s", e_db.msg);
	memset(k, 0, sizeof *k);
	k->format = isif_dataset_format_parse(format);
	if (k->format < 0)
		return isif_fail(err, ISIF_EFORMAT, "dataset %s: unknown format", name);
	struct isif_dataset_options opt;
	isif_dataset_options_default(&opt);
	int registered = store_dataset_image_size(dc->st, name);   /* POST /datasets image_size */
	k->image_size = registered > 0 ? registered : opt.image_size;
	/* Unresolvable (files gone): the path as registered, and the load says why. */
	if (!realpath(path, k->path))
		snprintf(k->path, sizeof k->path, "%s", path);
	return ISIF_OK;
}

/* With mu held: the entry of k, or NULL. */
static struct dscache_entry *find(struct dscache *dc, const struct ds_key *k)
{
	for (struct dscache_entry *e = dc->list; e; e = e->next)
		if (e->key.format == k->format && e->key.image_size == k->image_size &&
		    strcmp(e->key.path, k->path) == 0)
			return e;
	return NULL;
}

/* With mu held: e is in use by one more request. */
static void take(struct dscache *dc, struct dscache_entry *e, struct dscache_entry **out,
		 const struct isif_dataset **ds)
{
	e->users++;
	e->used = ++dc->tick;
	*out = e;
	*ds = &e->ds;
}

/* A JSON array of n floats at float precision (9 significant digits). */
static json_t *floats(const float *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; a && i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

void dscache_info_of(const struct isif_dataset *ds, struct dataset_info *info, char **norm,
		     char **names)
{
	*info = (struct dataset_info){ds->train.n, ds->test.n, ds->train.c, ds->train.h,
				      ds->train.w, ds->num_classes, NULL, NULL, 0};
	int c = ds->train.c < 1 ? 1 : ds->train.c > 3 ? 3 : ds->train.c;
	json_t *o = json_pack("{s:o, s:o}", "mean", floats(ds->mean, c), "std", floats(ds->std, c));
	*norm = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
	json_decref(o);
	/* names that are not UTF-8 (a folder in another encoding) make no list */
	json_t *a = ds->class_names && ds->num_classes > 0 ? json_array() : NULL;
	for (int i = 0; a && i < ds->num_classes; i++)
		if (json_array_append_new(a, json_string(ds->class_names[i]))) {
			json_decref(a);
			a = NULL;
		}
	*names = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	info->normalization = *norm;
	info->class_names = *names;
}

/* Loads e's files (called without mu; e is marked loading). */
static enum isif_rc load(struct dscache *dc, const char *name, struct dscache_entry *e,
			 struct isif_error *err)
{
	struct isif_dataset_options opt;
	isif_dataset_options_default(&opt);
	opt.image_size = e->key.image_size;
	dscache_folder_options(dc, &opt);
	enum isif_rc rc = isif_dataset_load(&e->ds, e->key.path,
					    (enum isif_dataset_format)e->key.format, &opt, err);
	if (rc)
		return rc;
	dscache_log_cache(name, &e->ds);
	struct dataset_info info;
	char *norm, *names;
	dscache_info_of(&e->ds, &info, &norm, &names);
	store_dataset_set_info(dc->st, name, &info, NULL);   /* logged by the store */
	free(norm);
	free(names);
	log_info("dataset %s: loaded for queries from %s (%lld train, %lld test images)", name,
		 e->key.path, (long long)e->ds.train.n, (long long)e->ds.test.n);
	return ISIF_OK;
}

enum isif_rc dscache_acquire(struct dscache *dc, const char *name, struct dscache_entry **out,
		    const struct isif_dataset **ds, struct isif_error *err)
{
	struct ds_key k;
	enum isif_rc rc = key_of(dc, name, &k, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&dc->mu);
	struct dscache_entry *e;
	while ((e = find(dc, &k)) && e->loading)
		pthread_cond_wait(&dc->loaded, &dc->mu);
	if (e) {
		take(dc, e, out, ds);
		pthread_mutex_unlock(&dc->mu);
		return ISIF_OK;
	}
	if (!(e = calloc(1, sizeof *e))) {
		pthread_mutex_unlock(&dc->mu);
		return isif_fail(err, ISIF_ENOMEM, "dataset %s: out of memory", name);
	}
	e->key = k;
	e->loading = true;
	e->next = dc->list;
	dc->list = e;
	dc->loads++;
	pthread_mutex_unlock(&dc->mu);
	rc = load(dc, name, e, err);
	pthread_mutex_lock(&dc->mu);
	e->loading = false;
	if (rc == ISIF_OK) {
		take(dc, e, out, ds);
	} else {
		for (struct dscache_entry **p = &dc->list; *p; p = &(*p)->next)
			if (*p == e) {
				*p = e->next;
				break;
			}
		entry_free(e);
	}
	pthread_cond_broadcast(&dc->loaded);
	pthread_mutex_unlock(&dc->mu);
	return rc;
}

enum isif_rc dscache_peek(struct dscache *dc, const char *name, struct dscache_entry **out,
			  const struct isif_dataset **ds, struct isif_error *err)
{
	struct ds_key k;
	enum isif_rc rc = key_of(dc, name, &k, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&dc->mu);
	struct dscache_entry *e = find(dc, &k);
	if (e && !e->loading)
		take(dc, e, out, ds);
	else
		rc = isif_fail(err, ISIF_EEMPTY, "dataset %s: not loaded", name);
	pthread_mutex_unlock(&dc->mu);
	return rc;
}

void dscache_release(struct dscache *dc, struct dscache_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&dc->mu);
	e->users--;
	trim(dc);
	pthread_mutex_unlock(&dc->mu);
}

/* ---- --dataset-root ------------------------------------------------------------ */

/* Is path (resolved) the directory root (resolved) or inside it? */
static bool under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

enum isif_rc dscache_resolve_in_roots(const char *roots, const char *path, char *resolved,
				      size_t len, struct isif_error *err)
{
	char real[PATH_MAX], root[PATH_MAX], one[PATH_MAX];
	struct stat sb;
	bool ok = path[0] == '/' && realpath(path, real) && stat(real, &sb) == 0 &&
		  S_ISDIR(sb.st_mode) && access(real, R_OK | X_OK) == 0 && strlen(real) < len;
	for (const char *p = roots; ok && *p;) {
		size_t n = strcspn(p, ",");
		if (n > 0 && n < sizeof one) {
			memcpy(one, p, n);
			one[n] = '\0';
			if (realpath(one, root) && under(real, root)) {
				snprintf(resolved, len, "%s", real);
				return ISIF_OK;
			}
		}
		p += n + (p[n] == ',');
	}
	return isif_fail(err, ISIF_EFORBIDDEN, "path: not a readable directory under the dataset "
			 "roots isifd was given (--dataset-root)");
}
