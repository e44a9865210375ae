/*
 * core/data/folder_impl.h — internals of the image-folder reader shared by
 * dataset_folder.c (layout, splits), folder_walk.c (the recursive class
 * walk), folder_decode.c (threaded decoding) and folder_cache.c (the
 * decoded cache). Not part of the public API.
 */
#ifndef ISIF_FOLDER_IMPL_H
#define ISIF_FOLDER_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "data/dataset_impl.h"

struct folder_names {
	char **v;
	int64_t n, cap;
};

struct folder_entry {
	char *path;
	int32_t label;
};

struct folder_entries {
	struct folder_entry *v;
	int64_t n, cap;
};

/* printf arguments for "%s%s": path p, its head elided ("...") past
 * FOLDER_MSG_PATH bytes, so that a message keeps its reason within
 * ISIF_ERR_LEN however deep the folder. */
#define FOLDER_MSG_PATH 120
#define FOLDER_PATH(p) (strlen(p) > FOLDER_MSG_PATH ? "..." : ""), \
	((p) + (strlen(p) > FOLDER_MSG_PATH ? strlen(p) - FOLDER_MSG_PATH : 0))

void folder_names_free(struct folder_names *l);
void folder_entries_free(struct folder_entries *l);

/* Returns v (elements of size sz, n used, *cap allocated), moved if need be,
 * with room for one more; NULL when out of memory (v is then untouched). */
void *folder_grow(void *v, int64_t n, int64_t *cap, size_t sz);

/* Appends a copy of s to l; ISIF_ENOMEM naming `what`. */
enum isif_rc folder_names_push(struct folder_names *l, const char *s, const char *what,
			       struct isif_error *err);

/* Sorted names (byte order) in dir of sub-directories (dirs) or image files
 * (!dirs), hidden ones (a leading '.') skipped, links followed. */
enum isif_rc folder_list_dir(const char *dir, bool dirs, struct folder_names *out,
			     struct isif_error *err);

/* Appends the images anywhere below class_dir with the given label, in
 * torchvision ImageFolder's order (folders by sorted path, files sorted in
 * each); *added counts them. *dirs counts the folders walked (capped). */
enum isif_rc folder_walk_class(struct folder_entries *l, const char *class_dir, int32_t label,
			       int64_t *dirs, int64_t *added, struct isif_error *err);

/* Allocates sp and decodes l's images into it with opt->threads threads;
 * the bytes, and the error reported (the first bad file in list order),
 * do not depend on the thread count. *any_colour is set when a file had
 * colour. */
enum isif_rc folder_decode(struct isif_split *sp, const struct folder_entries *l,
			   const char *what, const struct isif_dataset_options *opt,
			   bool *any_colour, struct isif_error *err);

/* The cache key of a listed folder: 16 bytes of a 128-bit FNV-1a hash over
 * the format version, the root's real path, the options that shape the
 * result, and every file's path, label, size, mtime and inode. */
struct folder_key {
	uint64_t lo, hi;
};
enum isif_rc folder_cache_key(struct folder_key *key, const char *root,
			      const struct folder_entries *train, const struct folder_entries *test,
			      const struct isif_dataset_options *opt, struct isif_error *err);

/* Maps the cache file of key into ds when one is present and valid (ds->cache
 * = HIT, true); otherwise returns false, ds untouched, and with remove_bad
 * (the caller holds the key's lock) removes a truncated or inconsistent file. */
bool folder_cache_open(struct isif_dataset *ds, const char *cache_dir, const struct folder_key *key,
		       bool remove_bad);

/* Takes the build lock of key (blocking: another process decoding the same
 * folder is waited for); returns its fd, or −1 when none could be taken. */
int folder_cache_lock(const char *cache_dir, const struct folder_key *key);
void folder_cache_unlock(int fd);
/* Releases a build lock after a failed load and removes its lock file (no
 * cache file will ever go with it; a waiter then decodes on its own). */
void folder_cache_unlock_failed(int fd, const char *cache_dir, const struct folder_key *key);

/* Writes ds (loaded, with mean/std) as the cache file of key: a temporary
 * file, fsync, rename, within opt->cache_max_bytes (older files evicted).
 * Sets ds->cache to STORED or UNSTORED and ds->cache_note; never fails the load. */
void folder_cache_store(struct isif_dataset *ds, const char *cache_dir, const struct folder_key *key,
			int64_t max_bytes);

#endif
