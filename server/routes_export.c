/*
 * server/routes_export.c — GET /jobs/{id}/embeddings: a job's current
 * embedding index, one split at a time, as
 *   npy  float32 C-order [N, D] (NumPy format 1.0, header padded to 64 bytes),
 *   tsv  one row of D tab-separated values per image (TensorBoard
 *        projector's vectors), or with metadata=1 its metadata file:
 *        a header "index<TAB>label", then one row per image,
 *   csv  a header "id,label,e0,...,e{D-1}", then one row per image
 *        (id: the image's index in the dataset split).
 * Rows are in index order, the order /neighbors searches. The answer is
 * streamed from the shared in-memory index (held by a reference until the
 * response is done), so an export costs no copy of the index; text is
 * produced a row at a time. Floats are printed with 9 significant digits,
 * enough to read back the same float32.
 *
 * split=items exports the collection added after training (items.h) in
 * the same formats, oldest item first: npy and tsv the vectors alone,
 * tsv&metadata=1 "id<TAB>label<TAB>metadata", csv
 * "id,label,e0,...,e{D-1},metadata" (id: the item's id; label empty when
 * it has none; metadata its compact JSON object, quoted in csv, empty
 * when none). The items are copied when the request arrives (a snapshot:
 * adds and removes meanwhile do not tear the file), at most --max-items.
 */
#include "routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "items.h"

enum export_format { EXPORT_NPY, EXPORT_TSV, EXPORT_META, EXPORT_CSV };

#define SPLIT_ITEMS 2     /* beside index.h's SPLIT_TRAIN and SPLIT_TEST */

struct export {
	struct index_data *ix;
	int split;               /* SPLIT_TRAIN, SPLIT_TEST, or SPLIT_ITEMS */
	struct item_snapshot items;   /* SPLIT_ITEMS: the collection, copied */
	enum export_format fmt;
	char npy_header[128];
	size_t npy_header_len;
	int64_t next_row;        /* text: next row to format; -1: the header line */
	char *line;              /* text: the current line */
	size_t line_len, line_pos, line_cap;
};

/* The rows the export streams: a split's, or the items' copy. */
static void export_rows(const struct export *x, int64_t *n, const float **emb)
{
	if (x->split == SPLIT_ITEMS) {
		*n = x->items.n;
		*emb = x->items.emb;
	} else {
		*n = x->ix->split[x->split].n;
		*emb = x->ix->split[x->split].emb;
	}
}

/* NumPy format 1.0: magic, version, little-endian u16 header length, the
 * dict padded with spaces and a newline so data starts at a multiple of 64. */
static size_t npy_header(char *out, size_t cap, int64_t n, int d)
{
	char dict[96];
	int dl = snprintf(dict, sizeof dict,
			  "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
			  (long long)n, d);
	size_t total = (10 + (size_t)dl + 1 + 63) / 64 * 64;
	if (total > cap)
		return 0;
	size_t hlen = total - 10;
	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (char)(hlen & 0xff);
	out[9] = (char)(hlen >> 8);
	memset(out + 10, ' ', hlen);
	memcpy(out + 10, dict, (size_t)dl);
	out[total - 1] = '\n';
	return total;
}

static ssize_t read_npy(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct export *x = cls;
	int64_t rows;
	const float *emb;
	export_rows(x, &rows, &emb);
	uint64_t data = (uint64_t)rows * x->ix->dim * sizeof(float);
	size_t done = 0;
	if (pos < x->npy_header_len) {
		size_t n = x->npy_header_len - pos < max ? x->npy_header_len - pos : max;
		memcpy(buf, x->npy_header + pos, n);
		done = n;
		pos += n;
	}
	if (done < max && pos >= x->npy_header_len) {
		uint64_t off = pos - x->npy_header_len;
		size_t n = data - off < max - done ? (size_t)(data - off) : max - done;
		memcpy(buf + done, (const char *)emb + off, n);
		done += n;
	}
	return done ? (ssize_t)done : MHD_CONTENT_READER_END_OF_STREAM;
}

/* Appends printf text to the current line (sized for the longest line). */
static void put(struct export *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct export *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(x->line + x->line_len, x->line_cap - x->line_len, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < x->line_cap - x->line_len)
		x->line_len += (size_t)n;
}

/* Appends an item's metadata as one csv field: quoted, quotes doubled. */
static void put_csv_json(struct export *x, const char *json)
{
	put(x, "\"");
	for (const char *p = json; *p; p++)
		put(x, *p == '"' ? "\"\"" : "%c", *p);
	put(x, "\"");
}

/* An item's row: the tsv metadata row, or a csv row (the vector between
 * label and metadata). */
static void put_item(struct export *x, int64_t r, const float *v)
{
	const struct item_snapshot *it = &x->items;
	char label[16] = "";
	if (it->label[r] >= 0)
		snprintf(label, sizeof label, "%d", it->label[r]);
	if (x->fmt == EXPORT_META) {
		put(x, "%s\t%s\t%s\n", it->id[r], label, it->meta[r] ? it->meta[r] : "");
		return;
	}
	put(x, "%s,%s", it->id[r], label);
	for (int j = 0; j < x->ix->dim; j++)
		put(x, ",%.9g", (double)v[j]);
	put(x, ",");
	if (it->meta[r])
		put_csv_json(x, it->meta[r]);
	put(x, "\n");
}

/* The header line of the text formats that have one (false: none). */
static bool put_header(struct export *x)
{
	bool items = x->split == SPLIT_ITEMS;
	if (x->fmt == EXPORT_META) {
		put(x, items ? "id\tlabel\tmetadata\n" : "index\tlabel\n");
		return true;
	}
	if (x->fmt != EXPORT_CSV)
		return false;
	put(x, "id,label");
	for (int j = 0; j < x->ix->dim; j++)
		put(x, ",e%d", j);
	put(x, items ? ",metadata\n" : "\n");
	return true;
}

/* Formats the next line (header or row) into x->line; false at the end. */
static bool next_line(struct export *x)
{
	int d = x->ix->dim;
	int64_t rows;
	const float *emb;
	export_rows(x, &rows, &emb);
	x->line_len = x->line_pos = 0;
	if (x->next_row < 0) {
		x->next_row = 0;
		if (put_header(x))
			return true;
	}
	if (x->next_row >= rows)
		return false;
	int64_t r = x->next_row++;
	const float *v = emb + r * d;
	if (x->split == SPLIT_ITEMS && x->fmt != EXPORT_TSV) {
		put_item(x, r, v);
	} else if (x->fmt == EXPORT_META) {
		const struct index_split *s = &x->ix->split[x->split];
		put(x, "%d\t%d\n", s->ids[r], s->labels[r]);
	} else if (x->fmt == EXPORT_CSV) {
		const struct index_split *s = &x->ix->split[x->split];
		put(x, "%d,%d", s->ids[r], s->labels[r]);
		for (int j = 0; j < d; j++)
			put(x, ",%.9g", (double)v[j]);
		put(x, "\n");
	} else {
		for (int j = 0; j < d; j++)
			put(x, j ? "\t%.9g" : "%.9g", (double)v[j]);
		put(x, "\n");
	}
	return true;
}

static ssize_t read_text(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct export *x = cls;
	size_t done = 0;
	(void)pos;   /* sequential */
	while (done < max) {
		if (x->line_pos == x->line_len && !next_line(x))
			break;
		size_t n = x->line_len - x->line_pos;
		if (n > max - done)
			n = max - done;
		memcpy(buf + done, x->line + x->line_pos, n);
		x->line_pos += n;
		done += n;
	}
	return done ? (ssize_t)done : MHD_CONTENT_READER_END_OF_STREAM;
}

static void export_free(void *cls)
{
	struct export *x = cls;
	index_release(x->ix);
	item_snapshot_free(&x->items);
	free(x->line);
	free(x);
}

static int parse_format(const char *f, bool metadata)
{
	if (!f || strcmp(f, "npy") == 0)
		return metadata ? -1 : EXPORT_NPY;
	if (strcmp(f, "tsv") == 0)
		return metadata ? EXPORT_META : EXPORT_TSV;
	if (strcmp(f, "csv") == 0)
		return metadata ? -1 : EXPORT_CSV;
	return -1;
}

enum MHD_Result route_job_embeddings(struct request *rq)
{
	static const char *const ext[] = {"npy", "tsv", "metadata.tsv", "csv"};
	static const char *const type[] = {
		"application/octet-stream", "text/tab-separated-values; charset=utf-8",
		"text/tab-separated-values; charset=utf-8", "text/csv; charset=utf-8"};
	const char *meta = http_query(rq, "metadata"), *split_name = http_query(rq, "split");
	if (meta && strcmp(meta, "0") != 0 && strcmp(meta, "1") != 0)
		return http_error(rq, 400, "invalid_parameter", "metadata: must be 0 or 1");
	int fmt = parse_format(http_query(rq, "format"), meta && meta[0] == '1');
	if (fmt < 0)
		return http_error(rq, 400, "invalid_parameter", "format: must be npy, tsv or csv "
				  "(metadata=1 goes with tsv)");
	int split = !split_name ? SPLIT_TRAIN
		    : strcmp(split_name, "items") == 0 ? SPLIT_ITEMS : index_split_parse(split_name);
	if (split < 0)
		return http_error(rq, 400, "invalid_parameter", "split: must be train, test or items");
	struct isif_error err = {0};
	struct index_data *ix = NULL;
	switch (index_acquire(rq->app->indexes, rq->id, &ix, &err)) {
	case ISIF_OK:
		break;
	case ISIF_ENOTFOUND:
		return http_error(rq, 404, "not_found", "no job %lld", (long long)rq->id);
	case ISIF_EEMPTY:
		return http_error(rq, 404, "no_index", "job %lld has no embedding index yet",
				  (long long)rq->id);
	default:
		return http_error(rq, 500, "internal", "index unreadable: %s", err.msg);
	}
	struct export *x = calloc(1, sizeof *x);
	bool ok = x != NULL;
	if (x) {
		x->ix = ix;
		x->split = split;
		x->fmt = (enum export_format)fmt;
		x->next_row = -1;
		x->line_cap = (size_t)ix->dim * 24 + 64;
		if (split == SPLIT_ITEMS && ix->items)
			ok = item_set_snapshot(ix->items, &x->items) == ISIF_OK;
		/* an item's line also holds its id and its metadata (quoted: at
		 * most twice its length) */
		for (int64_t i = 0; ok && i < x->items.n; i++) {
			size_t m = strlen(x->items.id[i]) + 16 +
				   (x->items.meta[i] ? 2 * strlen(x->items.meta[i]) + 2 : 0);
			if ((size_t)ix->dim * 24 + 64 + m > x->line_cap)
				x->line_cap = (size_t)ix->dim * 24 + 64 + m;
		}
		x->line = ok ? malloc(x->line_cap) : NULL;
	}
	if (!x || !x->line) {
		if (x)
			export_free(x);
		else
			index_release(ix);
		return http_error(rq, 503, "unavailable", "out of memory");
	}
	int64_t rows;
	const float *emb;
	export_rows(x, &rows, &emb);
	struct MHD_Response *r;
	if (fmt == EXPORT_NPY) {
		x->npy_header_len = npy_header(x->npy_header, sizeof x->npy_header, rows, ix->dim);
		uint64_t size = x->npy_header_len + (uint64_t)rows * ix->dim * sizeof(float);
		r = MHD_create_response_from_callback(size, 64 << 10, read_npy, x, export_free);
	} else {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 << 10, read_text, x,
						      export_free);
	}
	if (!r) {
		export_free(x);
		return MHD_NO;
	}
	char disp[160];
	snprintf(disp, sizeof disp, "attachment; filename=\"job-%lld-epoch-%d-%s.%s\"",
		 (long long)rq->id, ix->epoch, split == SPLIT_ITEMS ? "items" : index_split_name(split),
		 ext[fmt]);
	MHD_add_response_header(r, "Content-Type", type[fmt]);
	MHD_add_response_header(r, "Content-Disposition", disp);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	return http_respond(rq, 200, r);
}
