/*
 * server/checkpoints.c — the store of uploaded starting checkpoints
 * (checkpoints.h). Names are checked before any path is built, so a name
 * never leaves STATE/checkpoints.
 */
#include "checkpoints.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isif/base/fileio.h"
#include "isif/base/safetensors.h"

#define SUFFIX ".safetensors"

/* Two uploads of one name at once: one stores, the other gets 409. */
static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;

bool checkpoint_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 63 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

void checkpoint_file(const char *state_dir, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/checkpoints/%s" SUFFIX, state_dir, name);
}

enum isif_rc checkpoint_store(const char *state_dir, const char *name, const void *buf,
			      size_t len, json_t **info, struct isif_error *err)
{
	char dir[1100], path[1200];
	struct isif_st_file f;
	*info = NULL;
	if (isif_st_parse(buf, len, &f, err))
		return ISIF_EFORMAT;
	const char *model = isif_st_meta_get(&f.meta, "model");
	*info = json_pack("{s:s, s:I, s:I, s:o}", "name", name, "bytes", (json_int_t)len,
			  "tensors", (json_int_t)f.n, "model",
			  model ? json_string(model) : json_null());
	isif_st_file_free(&f);
	if (!*info)
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	snprintf(dir, sizeof dir, "%s/checkpoints", state_dir);
	checkpoint_file(state_dir, name, path, sizeof path);
	enum isif_rc rc = ISIF_OK;
	pthread_mutex_lock(&store_mu);
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		rc = isif_fail(err, ISIF_EIO, "%s: %s", dir, strerror(errno));
	else if (access(path, F_OK) == 0)
		rc = isif_fail(err, ISIF_ECONFLICT, "checkpoint \"%s\" exists; upload under "
			       "another name", name);
	else {
		struct isif_chunk c = { buf, len };
		rc = isif_write_atomic(path, &c, 1, err);
	}
	pthread_mutex_unlock(&store_mu);
	if (rc) {
		json_decref(*info);
		*info = NULL;
	}
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

enum isif_rc checkpoint_list(const char *state_dir, json_t **out, struct isif_error *err)
{
	char dir[1100], path[1200];
	snprintf(dir, sizeof dir, "%s/checkpoints", state_dir);
	json_t *list = json_array();
	*out = NULL;
	if (!list)
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name), k = strlen(SUFFIX);
		char name[64];
		if (n <= k || n - k >= sizeof name || strcmp(e->d_name + n - k, SUFFIX) != 0)
			continue;
		memcpy(name, e->d_name, n - k);
		name[n - k] = 0;
		struct stat st;
		checkpoint_file(state_dir, name, path, sizeof path);
		if (!checkpoint_name_ok(name) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		json_array_append_new(list, json_pack("{s:s, s:I}", "name", name, "bytes",
						      (json_int_t)st.st_size));
	}
	if (d)
		closedir(d);
	size_t n = json_array_size(list);
	json_t **items = malloc((n ? n : 1) * sizeof *items);
	if (!items) {
		json_decref(list);
		return isif_fail(err, ISIF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(list, i));
	qsort(items, n, sizeof *items, by_name);
	json_array_clear(list);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, items[i]);
	free(items);
	*out = json_pack("{s:o}", "checkpoints", list);
	return *out ? ISIF_OK : isif_fail(err, ISIF_ENOMEM, "out of memory");
}
