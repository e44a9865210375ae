/*
 * core/data/folder_decode.c — decoding a folder's listed images into a split
 * with several threads. Image i always lands in row i, whichever thread
 * decodes it, so the bytes are the same for any thread count. Threads take
 * rows from a shared counter; after a failure, rows past the first failing
 * one are skipped, while the rows before it are still decoded, so the error
 * reported is the first bad file in list order whatever the thread count.
 * One bad file fails the whole load (the single-threaded reader's rule).
 */
#include "data/folder_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "isif/base/fileio.h"
#include "isif/data/image.h"

#define MAX_DECODE_THREADS 64

struct decode_job {
	struct isif_split *sp;
	const struct folder_entries *l;
	const struct isif_dataset_options *opt;
	atomic_llong next;          /* next row to take */
	atomic_llong first_bad;     /* lowest failing row so far, or l->n */
	atomic_bool colour;
	pthread_mutex_t mu;
	struct isif_error err;      /* of first_bad */
	enum isif_rc rc;
};

/* Reads and decodes one file, then resizes it to s×s and writes it with 3
 * channels into dst; *colour says whether the file had 3 channels. */
static enum isif_rc load_image(uint8_t *dst, int s, const char *path,
			       const struct isif_dataset_options *opt, uint8_t *tmp,
			       bool *colour, struct isif_error *err)
{
	struct isif_error msg;
	struct stat st;
	void *buf = NULL;
	size_t len;
	uint8_t *pix = NULL;
	int c, h, w;
	if (stat(path, &st) != 0)
		return isif_fail(err, ISIF_EIO, "%s%s: %s", FOLDER_PATH(path), strerror(errno));
	if ((int64_t)st.st_size > opt->limits.max_bytes)
		return isif_fail(err, ISIF_ERANGE, "%s%s: %lld bytes, over the limit of %lld",
				 FOLDER_PATH(path), (long long)st.st_size, (long long)opt->limits.max_bytes);
	int rc = isif_read_file(path, (size_t)opt->limits.max_bytes, &buf, &len, err);
	if (rc)
		return rc;
	rc = isif_image_decode(buf, len, &opt->limits, &pix, &c, &h, &w, &msg);
	free(buf);
	if (rc)
		return isif_fail(err, rc, "%s%s: %s", FOLDER_PATH(path), msg.msg);
	*colour = c == 3;
	if (c == 3) {
		isif_image_resize_u8(dst, s, s, pix, 3, h, w);
	} else {
		isif_image_resize_u8(tmp, s, s, pix, 1, h, w);
		isif_image_convert_u8(dst, 3, tmp, 1, s, s);
	}
	free(pix);
	return ISIF_OK;
}

/* Records row i's failure when it is the first in list order so far. */
static void note_failure(struct decode_job *j, long long i, enum isif_rc rc,
			 const struct isif_error *e)
{
	pthread_mutex_lock(&j->mu);
	if (i < atomic_load(&j->first_bad)) {
		atomic_store(&j->first_bad, i);
		j->err = *e;
		j->rc = rc;
	}
	pthread_mutex_unlock(&j->mu);
}

static void *decode_rows(void *arg)
{
	struct decode_job *j = arg;
	int s = j->opt->image_size;
	size_t per = 3 * (size_t)s * (size_t)s;
	uint8_t *tmp = malloc((size_t)s * (size_t)s);
	for (;;) {
		long long i = atomic_fetch_add(&j->next, 1);
		if (i >= j->l->n || i > atomic_load(&j->first_bad))
			break;
		struct isif_error e = {0};
		bool colour = false;
		enum isif_rc rc = tmp ? load_image(j->sp->pixels + (size_t)i * per, s,
						   j->l->v[i].path, j->opt, tmp, &colour, &e)
				      : isif_fail(&e, ISIF_ENOMEM, "%s: out of memory",
						  j->l->v[i].path);
		if (rc)
			note_failure(j, i, rc, &e);
		else if (colour)
			atomic_store(&j->colour, true);
	}
	free(tmp);
	return NULL;
}

enum isif_rc folder_decode(struct isif_split *sp, const struct folder_entries *l,
			   const char *what, const struct isif_dataset_options *opt,
			   bool *any_colour, struct isif_error *err)
{
	int s = opt->image_size;
	int rc = isif_ds_split_alloc(sp, l->n, 3, s, s, what, err);
	if (rc)
		return rc;
	for (int64_t i = 0; i < l->n; i++)
		sp->labels[i] = l->v[i].label;
	struct decode_job j = { .sp = sp, .l = l, .opt = opt, .rc = ISIF_OK };
	atomic_init(&j.next, 0);
	atomic_init(&j.first_bad, (long long)l->n);
	atomic_init(&j.colour, false);
	pthread_mutex_init(&j.mu, NULL);
	int n = opt->threads < 1 ? 1 : opt->threads > MAX_DECODE_THREADS ? MAX_DECODE_THREADS
									 : opt->threads;
	if (n > l->n)
		n = l->n > 0 ? (int)l->n : 1;
	pthread_t tid[MAX_DECODE_THREADS];
	int started = 0;
	for (; started < n - 1; started++)   /* the caller's thread is one of them */
		if (pthread_create(&tid[started], NULL, decode_rows, &j) != 0)
			break;                /* fewer threads: same bytes, only slower */
	decode_rows(&j);
	for (int k = 0; k < started; k++)
		pthread_join(tid[k], NULL);
	pthread_mutex_destroy(&j.mu);
	if (atomic_load(&j.colour))
		*any_colour = true;
	if (j.rc) {
		if (err)
			*err = j.err;
		return j.rc;
	}
	return ISIF_OK;
}
