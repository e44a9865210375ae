/*
 * core/data/folder_walk.c — listing an image folder: sorted directory
 * listings, and the recursive walk of one class folder in torchvision
 * ImageFolder's order (`sorted(os.walk(class_dir, followlinks=True))`, then
 * `sorted(files)` in each): every folder below the class, sorted by its path
 * (byte order), each contributing its image files sorted by name.
 *
 * Links are followed, like torchvision; a folder that is one of its own
 * ancestors (same device and inode: a link loop) is skipped. The walk is
 * bounded: ISIF_DS_MAX_DEPTH levels below the class folder and
 * ISIF_DS_MAX_DIRS folders per load (an error past either), and
 * ISIF_DS_MAX_IMAGES images per split. Hidden names ('.' first) are skipped.
 */
#include "data/folder_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

void folder_names_free(struct folder_names *l)
{
	for (int64_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

void folder_entries_free(struct folder_entries *l)
{
	for (int64_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof *l);
}

void *folder_grow(void *v, int64_t n, int64_t *cap, size_t sz)
{
	if (n < *cap)
		return v;
	int64_t ncap = *cap ? *cap * 2 : 16;
	void *nv = realloc(v, (size_t)ncap * sz);
	if (nv)
		*cap = ncap;
	return nv;
}

enum isif_rc folder_names_push(struct folder_names *l, const char *s, const char *what,
			       struct isif_error *err)
{
	char *copy = strdup(s);
	char **nv = copy ? folder_grow(l->v, l->n, &l->cap, sizeof *nv) : NULL;
	if (!nv) {
		free(copy);
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", what);
	}
	l->v = nv;
	l->v[l->n++] = copy;
	return ISIF_OK;
}

static bool is_image_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
		       strcasecmp(dot, ".png") == 0);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum isif_rc folder_list_dir(const char *dir, bool dirs, struct folder_names *out,
			     struct isif_error *err)
{
	char path[ISIF_DS_PATH_MAX];
	int rc = ISIF_OK;
	memset(out, 0, sizeof *out);
	DIR *d = opendir(dir);
	if (!d)
		return isif_fail(err, ISIF_EIO, "%s%s: %s", FOLDER_PATH(dir), strerror(errno));
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || (!dirs && !is_image_name(e->d_name)))
			continue;
		if ((rc = isif_ds_join(path, dir, e->d_name, err)) != ISIF_OK)
			break;
		/* d_type spares a stat per plain file or folder (the cache key stats
		 * each file anyway); links and unknown types are stat'ed, followed */
		bool known = e->d_type == DT_REG || e->d_type == DT_DIR;
		bool wanted = known ? (e->d_type == DT_DIR) == dirs
				    : dirs ? isif_ds_is_dir(path) : isif_ds_is_file(path);
		if (!wanted)
			continue;
		if (out->n >= ISIF_DS_MAX_IMAGES) {
			rc = isif_fail(err, ISIF_EFORMAT, "%s%s: more than %lld entries", FOLDER_PATH(dir),
				       ISIF_DS_MAX_IMAGES);
			break;
		}
		if ((rc = folder_names_push(out, e->d_name, dir, err)) != ISIF_OK)
			break;
	}
	closedir(d);
	if (rc)
		folder_names_free(out);
	else if (out->n > 1)
		qsort(out->v, (size_t)out->n, sizeof *out->v, by_name);
	return rc;
}

/* The folders of one walk, and the (device, inode) of the current path's
 * ancestors for the loop check. */
struct walk {
	struct folder_names dirs;
	dev_t dev[ISIF_DS_MAX_DEPTH + 2];
	ino_t ino[ISIF_DS_MAX_DEPTH + 2];
	int64_t *count;
};

static enum isif_rc walk_dir(struct walk *w, const char *dir, int depth, struct isif_error *err)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return isif_fail(err, ISIF_EIO, "%s%s: %s", FOLDER_PATH(dir), strerror(errno));
	for (int k = 0; k < depth; k++)
		if (w->dev[k] == st.st_dev && w->ino[k] == st.st_ino)
			return ISIF_OK;   /* a link back to an ancestor: a loop, skipped */
	if (depth > ISIF_DS_MAX_DEPTH)
		return isif_fail(err, ISIF_EFORMAT, "%s%s: more than %d folder levels below a class",
				 FOLDER_PATH(dir), ISIF_DS_MAX_DEPTH);
	if (++*w->count > ISIF_DS_MAX_DIRS)
		return isif_fail(err, ISIF_EFORMAT, "%s%s: more than %lld folders", FOLDER_PATH(dir),
				 ISIF_DS_MAX_DIRS);
	w->dev[depth] = st.st_dev;
	w->ino[depth] = st.st_ino;
	struct folder_names subs;
	char path[ISIF_DS_PATH_MAX];
	int rc = folder_names_push(&w->dirs, dir, dir, err);
	if (!rc)
		rc = folder_list_dir(dir, true, &subs, err);
	if (rc)
		return rc;
	for (int64_t i = 0; i < subs.n && !rc; i++) {
		rc = isif_ds_join(path, dir, subs.v[i], err);
		if (!rc)
			rc = walk_dir(w, path, depth + 1, err);
	}
	folder_names_free(&subs);
	return rc;
}

/* Appends the images of one folder (sorted) with the given label. */
static enum isif_rc add_files(struct folder_entries *l, const char *dir, int32_t label,
			      int64_t *added, struct isif_error *err)
{
	char path[ISIF_DS_PATH_MAX];
	struct folder_names files;
	int rc = folder_list_dir(dir, false, &files, err);
	for (int64_t i = 0; i < files.n && !rc; i++) {
		if (l->n >= ISIF_DS_MAX_IMAGES) {
			rc = isif_fail(err, ISIF_EFORMAT, "%s%s: more than %lld images", FOLDER_PATH(dir),
				       ISIF_DS_MAX_IMAGES);
			break;
		}
		if ((rc = isif_ds_join(path, dir, files.v[i], err)) != ISIF_OK)
			break;
		char *copy = strdup(path);
		struct folder_entry *nv = copy ? folder_grow(l->v, l->n, &l->cap, sizeof *nv) : NULL;
		if (!nv) {
			free(copy);
			rc = isif_fail(err, ISIF_ENOMEM, "%s%s: out of memory", FOLDER_PATH(dir));
			break;
		}
		l->v = nv;
		l->v[l->n].path = copy;
		l->v[l->n].label = label;
		l->n++;
		++*added;
	}
	folder_names_free(&files);
	return rc;
}

enum isif_rc folder_walk_class(struct folder_entries *l, const char *class_dir, int32_t label,
			       int64_t *dirs, int64_t *added, struct isif_error *err)
{
	struct walk w = { .count = dirs };
	*added = 0;
	int rc = walk_dir(&w, class_dir, 0, err);
	if (!rc && w.dirs.n > 1)   /* os.walk's tuples sorted: by the folder's path */
		qsort(w.dirs.v, (size_t)w.dirs.n, sizeof *w.dirs.v, by_name);
	for (int64_t i = 0; i < w.dirs.n && !rc; i++)
		rc = add_files(l, w.dirs.v[i], label, added, err);
	folder_names_free(&w.dirs);
	return rc;
}
