/*
 * server/dscache.c — the HTTP side's loaded datasets (see dscache.h): a
 * list of entries with a user count and a last-use tick. Loading runs
 * under the cache mutex, so two requests never load the same dataset
 * twice; it takes a second or two for the datasets isifd reads.
 */
#include "dscache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isif/train/spec.h"
#include "log.h"
#include "store_retrieval.h"

struct dscache_entry {
	struct dscache_entry *next;
	char name[ISIF_SPEC_NAME_LEN];
	int users;
	unsigned long used;
	struct isif_dataset ds;
};

struct dscache {
	struct store *st;
	int capacity;
	pthread_mutex_t mu;
	struct dscache_entry *list;
	unsigned long tick;
};

struct dscache *dscache_create(struct store *st, int capacity)
{
	struct dscache *dc = calloc(1, sizeof *dc);
	if (!dc)
		return NULL;
	dc->st = st;
	dc->capacity = capacity > 0 ? capacity : 1;
	pthread_mutex_init(&dc->mu, NULL);
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
	free(dc);
}

/* With mu held: unloads unused entries beyond the capacity, oldest first. */
static void trim(struct dscache *dc)
{
	for (;;) {
		int n = 0;
		struct dscache_entry **victim = NULL;
		for (struct dscache_entry **p = &dc->list; *p; p = &(*p)->next) {
			n++;
			if (!(*p)->users && (!victim || (*p)->used < (*victim)->used))
				victim = p;
		}
		if (n <= dc->capacity || !victim)
			return;
		struct dscache_entry *e = *victim;
		*victim = e->next;
		log_info("dataset %s: unloaded from the query cache", e->name);
		entry_free(e);
	}
}

static enum isif_rc load(struct dscache *dc, const char *name, struct dscache_entry **out, struct isif_error *err)
{
	char format[32], path[1024];
	struct isif_error e_db;
	enum isif_rc rc = store_dataset_lookup(dc->st, name, format, sizeof format, path,
					       sizeof path, &e_db);
	if (rc == ISIF_ENOTFOUND)
		return isif_fail(err, rc, "%s", e_db.msg);
	if (rc)
		return isif_fail(err, rc, "database: %s", e_db.msg);
	int fmt = isif_dataset_format_parse(format);
	struct dscache_entry *e = calloc(1, sizeof *e);
	if (fmt < 0 || !e) {
		free(e);
		return isif_fail(err, fmt < 0 ? ISIF_EFORMAT : ISIF_ENOMEM, "dataset %s: %s", name,
				 fmt < 0 ? "unknown format" : "out of memory");
	}
	rc = isif_dataset_load(&e->ds, path, (enum isif_dataset_format)fmt, NULL, err);
	if (rc) {
		free(e);
		return rc;
	}
	snprintf(e->name, sizeof e->name, "%s", name);
	struct dataset_info info = {e->ds.train.n, e->ds.test.n, e->ds.train.c, e->ds.train.h,
				    e->ds.train.w, e->ds.num_classes};
	store_dataset_set_info(dc->st, name, &info, NULL);   /* logged by the store */
	log_info("dataset %s: loaded for queries (%lld train, %lld test images)", name,
		 (long long)e->ds.train.n, (long long)e->ds.test.n);
	*out = e;
	return ISIF_OK;
}

enum isif_rc dscache_acquire(struct dscache *dc, const char *name, struct dscache_entry **out,
		    const struct isif_dataset **ds, struct isif_error *err)
{
	enum isif_rc rc = ISIF_OK;
	struct dscache_entry *e;
	pthread_mutex_lock(&dc->mu);
	for (e = dc->list; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			break;
	if (!e) {
		rc = load(dc, name, &e, err);
		if (rc == ISIF_OK) {
			e->next = dc->list;
			dc->list = e;
		}
	}
	if (rc == ISIF_OK) {
		e->users++;
		e->used = ++dc->tick;
		*out = e;
		*ds = &e->ds;
	}
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
