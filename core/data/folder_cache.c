/*
 * core/data/folder_cache.c — the decoded cache of image folders: one file per
 * (folder, file list, options), named folder-<32 hex digits of the key>.isifds
 * in the cache directory, holding exactly what a load returns:
 *
 *   header (struct cache_header) | class names, NUL-terminated, padded to 8 |
 *   train labels (int32) | test labels (int32) | zero padding to 4096 |
 *   train pixels | test pixels (uint8 CHW rows)
 *
 * A later load with the same key maps the file read-only (MAP_SHARED: the
 * ranks of one machine share the page cache's single copy) and points the
 * splits into it; the header carries mean/std, so a hit reads only the
 * header, names and labels, and a rank's pages are the rows it touches.
 * Trust: the file must have the exact size the header computes, the key,
 * and a checksum over header, names and labels (not the pixels: that would
 * read every page); otherwise it is removed and the folder decoded again.
 * Files are written as a temporary (.tmp-*) then fsync + rename, so a crash
 * never leaves a partial file under the final name, and only after every
 * image decoded. Concurrent builders of one key (MPI ranks, daemon jobs)
 * serialise on flock(folder-<key>.lock): the second maps the first's file.
 * Disk use: before writing, older cache files (by mtime; a hit touches it)
 * are removed until the total plus the new file fits max_bytes; a file
 * larger than max_bytes is not stored. An evicted file's lock file goes with
 * it. Temporaries older than a day are removed by the same scan.
 */
#include "data/folder_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "ISIFDS01"
#define PAGE 4096u
#define STALE_TMP_SECONDS (24 * 3600)

struct cache_header {
	char magic[8];
	uint64_t key_lo, key_hi;
	uint64_t file_bytes;          /* the whole file */
	uint64_t names_bytes;         /* the class-name block, padded to 8 */
	uint64_t pix_off;             /* page-aligned start of the train pixels */
	uint64_t meta_sum;            /* FNV-1a 64 over header (this field 0), names, labels */
	int64_t n_train, n_test;
	int32_t c, h, w, num_classes;
	float mean[3], std[3];
};

/* ---- hashing ---------------------------------------------------------------- */

typedef unsigned __int128 u128;

static u128 fnv128(u128 h, const void *p, size_t n)
{
	const u128 prime = ((u128)1 << 88) + 0x13b;
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= prime;
	}
	return h;
}

static uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static u128 hash_entries(u128 h, const struct folder_entries *l, size_t skip,
			 struct isif_error *err, enum isif_rc *rc)
{
	for (int64_t i = 0; i < l->n && !*rc; i++) {
		struct stat st;
		if (stat(l->v[i].path, &st) != 0) {
			*rc = isif_fail(err, ISIF_EIO, "%s: %s", l->v[i].path, strerror(errno));
			break;
		}
		int64_t f[6] = { l->v[i].label, (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
				 (int64_t)st.st_mtim.tv_nsec, (int64_t)st.st_ino, (int64_t)st.st_dev };
		const char *rel = l->v[i].path + skip;
		h = fnv128(h, rel, strlen(rel) + 1);
		h = fnv128(h, f, sizeof f);
	}
	return h;
}

enum isif_rc folder_cache_key(struct folder_key *key, const char *root,
			      const struct folder_entries *train, const struct folder_entries *test,
			      const struct isif_dataset_options *opt, struct isif_error *err)
{
	char real[PATH_MAX];
	if (!realpath(root, real))
		return isif_fail(err, ISIF_EIO, "%s: %s", root, strerror(errno));
	u128 h = ((u128)0x6c62272e07bb0142ULL << 64) | 0x62b821756295c58dULL;
	static const char version[] = "isif folder cache 1";
	int64_t o[6] = { opt->image_size, (int64_t)opt->holdout_seed, opt->limits.max_bytes,
			 opt->limits.max_pixels, opt->limits.max_side, (int64_t)train->n };
	h = fnv128(h, version, sizeof version);
	h = fnv128(h, real, strlen(real) + 1);
	h = fnv128(h, o, sizeof o);
	enum isif_rc rc = ISIF_OK;
	size_t skip = strlen(root);   /* entries are root + "/..." */
	h = hash_entries(h, train, skip, err, &rc);
	h = fnv128(h, "|test|", 6);
	h = hash_entries(h, test, skip, err, &rc);
	key->lo = (uint64_t)h;
	key->hi = (uint64_t)(h >> 64);
	return rc;
}

/* ---- layout ----------------------------------------------------------------- */

static bool cache_path(char *out, size_t cap, const char *dir, const struct folder_key *k,
		       const char *ext)
{
	int n = snprintf(out, cap, "%s/folder-%016llx%016llx.%s", dir, (unsigned long long)k->hi,
			 (unsigned long long)k->lo, ext);
	return n > 0 && (size_t)n < cap;
}

static size_t split_bytes(int64_t n, int32_t c, int32_t h, int32_t w)
{
	return (size_t)n * (size_t)c * (size_t)h * (size_t)w;
}

static size_t pad_to(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* Where each part starts, from the header's counts; false when they overflow
 * or are out of the readers' caps. */
static bool layout(const struct cache_header *hd, size_t *labels_off, size_t *pix_off,
		   size_t *total)
{
	if (hd->n_train < 1 || hd->n_test < 0 || hd->n_train > ISIF_DS_MAX_IMAGES ||
	    hd->n_test > ISIF_DS_MAX_IMAGES || (hd->c != 1 && hd->c != 3) || hd->h < 1 ||
	    hd->h > ISIF_DS_MAX_SIDE || hd->w != hd->h || hd->num_classes < 1 ||
	    hd->num_classes > 1000000 || hd->names_bytes > (64u << 20) || hd->names_bytes % 8)
		return false;
	*labels_off = sizeof *hd + (size_t)hd->names_bytes;
	size_t labels = (size_t)(hd->n_train + hd->n_test) * sizeof(int32_t);
	*pix_off = pad_to(*labels_off + labels, PAGE);
	*total = *pix_off + split_bytes(hd->n_train + hd->n_test, hd->c, hd->h, hd->w);
	return true;
}

static uint64_t meta_sum(const struct cache_header *hd, const unsigned char *base,
			 size_t labels_off, size_t labels_bytes)
{
	struct cache_header z = *hd;
	z.meta_sum = 0;
	uint64_t s = fnv64(0xcbf29ce484222325ULL, &z, sizeof z);
	return fnv64(s, base + sizeof z, labels_off - sizeof z + labels_bytes);
}

/* ---- reading ---------------------------------------------------------------- */

/* Checks a mapped file; fills ds from it when it is whole and consistent. */
static bool adopt(struct isif_dataset *ds, unsigned char *base, size_t len,
		  const struct folder_key *key)
{
	struct cache_header hd;
	size_t labels_off, pix_off, total;
	if (len < sizeof hd)
		return false;
	memcpy(&hd, base, sizeof hd);
	if (memcmp(hd.magic, CACHE_MAGIC, 8) != 0 || hd.key_lo != key->lo || hd.key_hi != key->hi ||
	    !layout(&hd, &labels_off, &pix_off, &total) || total != len || hd.file_bytes != len ||
	    hd.pix_off != pix_off)
		return false;
	int64_t n = hd.n_train + hd.n_test;
	if (meta_sum(&hd, base, labels_off, (size_t)n * 4) != hd.meta_sum)
		return false;
	int32_t *labels = (int32_t *)(base + labels_off);
	for (int64_t i = 0; i < n; i++)
		if (labels[i] < 0 || labels[i] >= hd.num_classes)
			return false;
	/* class names: exactly num_classes NUL-terminated strings */
	const char *names = (const char *)base + sizeof hd, *end = names + hd.names_bytes;
	char **v = calloc((size_t)hd.num_classes, sizeof *v);
	int k = 0;
	for (const char *p = names; v && k < hd.num_classes && p < end && *p; k++) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		if (!z || !(v[k] = strdup(p)))
			break;
		p = z + 1;
	}
	if (!v || k != hd.num_classes || !v[k - 1]) {
		for (int i = 0; v && i < k; i++)
			free(v[i]);
		free(v);
		return false;
	}
	struct isif_split *sp[2] = { &ds->train, &ds->test };
	int64_t counts[2] = { hd.n_train, hd.n_test };
	size_t off = pix_off;
	for (int s = 0; s < 2; s++) {
		sp[s]->n = counts[s];
		sp[s]->c = hd.c;
		sp[s]->h = hd.h;
		sp[s]->w = hd.w;
		sp[s]->pixels = base + off;
		sp[s]->labels = labels + (s ? hd.n_train : 0);
		off += split_bytes(counts[s], hd.c, hd.h, hd.w);
	}
	ds->num_classes = hd.num_classes;
	ds->class_names = v;
	memcpy(ds->mean, hd.mean, sizeof hd.mean);
	memcpy(ds->std, hd.std, sizeof hd.std);
	ds->map = base;
	ds->map_len = len;
	ds->cache = ISIF_DS_CACHE_HIT;
	return true;
}

bool folder_cache_open(struct isif_dataset *ds, const char *cache_dir, const struct folder_key *key,
		       bool remove_bad)
{
	char path[PATH_MAX];
	struct stat st;
	if (!cache_path(path, sizeof path, cache_dir, key, "isifds"))
		return false;
	/* O_NONBLOCK: a FIFO planted under the name must not block the open */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	void *base = MAP_FAILED;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (base != MAP_FAILED && adopt(ds, base, (size_t)st.st_size, key)) {
		futimens(fd, NULL);   /* recently used: evicted last */
		close(fd);
		snprintf(ds->cache_note, sizeof ds->cache_note, "%s", path);
		return true;
	}
	if (base != MAP_FAILED)
		munmap(base, (size_t)st.st_size);
	close(fd);
	if (remove_bad)   /* under the lock: not a builder's fresh file */
		unlink(path);   /* truncated or inconsistent: never trusted, rebuilt */
	return false;
}

/* ---- locking ---------------------------------------------------------------- */

/* mkdir -p dir, each level created private (0700). */
static bool make_dirs(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
		return false;
	for (char *p = path + 1;; p++) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return false;
		if (!slash)
			return true;
		*slash = '/';
		p = slash;
	}
}

int folder_cache_lock(const char *cache_dir, const struct folder_key *key)
{
	char path[PATH_MAX];
	if (!make_dirs(cache_dir))
		return -1;
	if (!cache_path(path, sizeof path, cache_dir, key, "lock"))
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) != 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

void folder_cache_unlock(int fd)
{
	if (fd >= 0)
		close(fd);   /* releases the flock */
}

void folder_cache_unlock_failed(int fd, const char *cache_dir, const struct folder_key *key)
{
	char path[PATH_MAX];
	if (fd >= 0 && cache_path(path, sizeof path, cache_dir, key, "lock"))
		unlink(path);   /* a loader waiting on it then decodes beside a newcomer:
				 * as after an eviction, the rename keeps files whole */
	folder_cache_unlock(fd);
}

/* ---- bounding the directory --------------------------------------------------- */

struct cached_file {
	char name[NAME_MAX + 1];
	time_t mtime;
	off_t size;
};

static int oldest_first(const void *a, const void *b)
{
	const struct cached_file *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->name, y->name);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Removes stale temporaries, then the oldest cache files until need more bytes fit
 * within max_bytes; false when they cannot. */
static bool make_room(const char *dir, int64_t need, int64_t max_bytes)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct cached_file *v = NULL;
	int64_t n = 0, cap = 0, total = 0;
	char path[PATH_MAX];
	time_t now = time(NULL);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		struct stat st;
		bool tmp = strncmp(e->d_name, ".tmp-", 5) == 0;
		if ((!tmp && !has_suffix(e->d_name, ".isifds")) ||
		    snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
		    lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (tmp && now - st.st_mtime > STALE_TMP_SECONDS) {
			unlink(path);
			continue;
		}
		total += st.st_size;
		if (tmp)
			continue;   /* another builder's, counted but not removed */
		struct cached_file *nv = folder_grow(v, n, &cap, sizeof *v);
		if (!nv)
			break;
		v = nv;
		snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
		v[n].mtime = st.st_mtime;
		v[n++].size = st.st_size;
	}
	closedir(d);
	if (n > 1)
		qsort(v, (size_t)n, sizeof *v, oldest_first);
	for (int64_t i = 0; i < n && total + need > max_bytes; i++) {
		if (snprintf(path, sizeof path, "%s/%s", dir, v[i].name) >= (int)sizeof path ||
		    unlink(path) != 0)
			continue;
		total -= v[i].size;   /* a process mapping it keeps its pages */
		/* its lock file too (at worst a builder of that key then decodes
		 * beside another: the rename keeps the result whole) */
		strcpy(path + strlen(path) - strlen("isifds"), "lock");
		unlink(path);
	}
	free(v);
	return total + need <= max_bytes;
}

/* ---- writing ---------------------------------------------------------------- */

static bool write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n > (1u << 30) ? (1u << 30) : n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

/* The class names as the file stores them; *len padded to 8. */
static char *names_block(const struct isif_dataset *ds, size_t *len)
{
	size_t n = 0;
	for (int i = 0; i < ds->num_classes; i++)
		n += strlen(ds->class_names[i]) + 1;
	*len = pad_to(n, 8);
	char *b = calloc(1, *len + 1);
	for (int i = 0, at = 0; b && i < ds->num_classes; i++) {
		size_t k = strlen(ds->class_names[i]) + 1;
		memcpy(b + at, ds->class_names[i], k);
		at += (int)k;
	}
	return b;
}

static bool write_file(int fd, const struct isif_dataset *ds, const struct cache_header *hd,
		       const char *names, size_t labels_off, size_t pix_off)
{
	static const char zeros[PAGE];
	size_t tr = (size_t)ds->train.n * 4, te = (size_t)ds->test.n * 4;
	size_t pad = pix_off - labels_off - tr - te;
	return write_all(fd, hd, sizeof *hd) && write_all(fd, names, (size_t)hd->names_bytes) &&
	       write_all(fd, ds->train.labels, tr) && write_all(fd, ds->test.labels, te) &&
	       write_all(fd, zeros, pad) &&
	       write_all(fd, ds->train.pixels, split_bytes(ds->train.n, hd->c, hd->h, hd->w)) &&
	       write_all(fd, ds->test.pixels, split_bytes(ds->test.n, hd->c, hd->h, hd->w)) &&
	       fsync(fd) == 0;
}

/* The header of ds, its checksum over the names and labels as they will be
 * written; false when ds does not fit the layout. */
static bool make_header(struct cache_header *hd, const struct isif_dataset *ds,
			const struct folder_key *key, const char *names, size_t names_len,
			size_t *labels_off, size_t *pix_off)
{
	size_t total;
	memset(hd, 0, sizeof *hd);
	memcpy(hd->magic, CACHE_MAGIC, 8);
	hd->key_lo = key->lo;
	hd->key_hi = key->hi;
	hd->names_bytes = names_len;
	hd->n_train = ds->train.n;
	hd->n_test = ds->test.n;
	hd->c = ds->train.c;
	hd->h = ds->train.h;
	hd->w = ds->train.w;
	hd->num_classes = ds->num_classes;
	memcpy(hd->mean, ds->mean, sizeof hd->mean);
	memcpy(hd->std, ds->std, sizeof hd->std);
	if (!layout(hd, labels_off, pix_off, &total))
		return false;
	hd->file_bytes = total;
	hd->pix_off = *pix_off;
	/* the checksum runs over the bytes as laid out: header, names, labels */
	size_t tr = (size_t)ds->train.n * 4, te = (size_t)ds->test.n * 4;
	unsigned char *meta = malloc(*labels_off + tr + te);
	if (!meta)
		return false;
	memcpy(meta, hd, sizeof *hd);
	memcpy(meta + sizeof *hd, names, names_len);
	memcpy(meta + *labels_off, ds->train.labels, tr);
	memcpy(meta + *labels_off + tr, ds->test.labels, te);
	hd->meta_sum = meta_sum(hd, meta, *labels_off, tr + te);
	free(meta);
	return true;
}

void folder_cache_store(struct isif_dataset *ds, const char *cache_dir, const struct folder_key *key,
			int64_t max_bytes)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct cache_header hd;
	size_t names_len = 0, labels_off = 0, pix_off = 0;
	char *names = ds->class_names ? names_block(ds, &names_len) : NULL;
	ds->cache = ISIF_DS_CACHE_UNSTORED;
	if (!names || !make_header(&hd, ds, key, names, names_len, &labels_off, &pix_off)) {
		snprintf(ds->cache_note, sizeof ds->cache_note, "not stored: cannot lay out the file");
		free(names);
		return;
	}
	if (max_bytes <= 0)
		max_bytes = ISIF_DS_CACHE_MAX_DEFAULT;
	if (!cache_path(path, sizeof path, cache_dir, key, "isifds") ||
	    snprintf(tmp, sizeof tmp, "%s/.tmp-%016llx-XXXXXX", cache_dir,
		     (unsigned long long)key->lo) >= (int)sizeof tmp) {
		snprintf(ds->cache_note, sizeof ds->cache_note, "not stored: path too long");
	} else if ((int64_t)hd.file_bytes > max_bytes || !make_room(cache_dir, (int64_t)hd.file_bytes,
								     max_bytes)) {
		snprintf(ds->cache_note, sizeof ds->cache_note,
			 "not stored: %llu bytes do not fit the cache bound of %lld bytes",
			 (unsigned long long)hd.file_bytes, (long long)max_bytes);
	} else {
		int fd = mkstemp(tmp);
		bool ok = fd >= 0 && write_file(fd, ds, &hd, names, labels_off, pix_off);
		if (fd >= 0)
			close(fd);
		if (ok && rename(tmp, path) == 0) {
			int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
			ds->cache = ISIF_DS_CACHE_STORED;
			snprintf(ds->cache_note, sizeof ds->cache_note, "%s", path);
		} else {
			snprintf(ds->cache_note, sizeof ds->cache_note, "not stored: %s: %s",
				 cache_dir, strerror(errno));
			if (fd >= 0)
				unlink(tmp);
		}
	}
	free(names);
}
