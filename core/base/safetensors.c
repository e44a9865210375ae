/*
 * core/base/safetensors.c — the generic safetensors reader and writer, and the
 * string→string metadata map. Model and optimizer checkpoints on top of it
 * live in checkpoint.c.
 *
 * File layout: u64 little-endian N, then N bytes of UTF-8 JSON
 *   {"__metadata__":{k:v,...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
 * padded with spaces to a multiple of 8, then the data section; offsets are
 * relative to the data section and the tensors tile it exactly.
 *
 * The writer is deterministic: "__metadata__" first (omitted when empty),
 * metadata in insertion order, tensors in the caller's order with their data
 * contiguous in that order, compact JSON escaped as serde_json does (the
 * reference implementation), header padded with spaces to 8 bytes.
 * The reader validates everything (see st_parse_entry, st_check_tiling) and
 * never trusts a size from the file.
 *
 * Not here: mmap, dtypes other than F32/I64, big-endian hosts.
 */
#include "isif/base/safetensors.h"
#include "isif/base/strbuf.h"
#include "isif/base/fileio.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is copied as is: little-endian hosts only"
#endif

#define ST_MAX_FILE ((size_t)1 << 36)  /* refuse files over 64 GiB */
#define ST_ALIGN 8                      /* blob alignment of every tensor */
#define ST_META_KEY "__metadata__"

/* ---- metadata ---------------------------------------------------------- */

enum isif_rc isif_st_meta_set(struct isif_st_meta *meta, const char *key, const char *value)
{
	if (!meta || !key || !value)
		return ISIF_EINVAL;
	char *v = strdup(value);
	if (!v)
		return ISIF_ENOMEM;
	for (size_t i = 0; i < meta->n; i++) {
		if (strcmp(meta->keys[i], key) == 0) {
			free(meta->values[i]);
			meta->values[i] = v;
			return ISIF_OK;
		}
	}
	char *k = strdup(key);
	char **keys = realloc(meta->keys, (meta->n + 1) * sizeof *keys);
	if (keys)
		meta->keys = keys;
	char **values = realloc(meta->values, (meta->n + 1) * sizeof *values);
	if (values)
		meta->values = values;
	if (!k || !keys || !values) {
		free(k);
		free(v);
		return ISIF_ENOMEM;
	}
	meta->keys[meta->n] = k;
	meta->values[meta->n] = v;
	meta->n++;
	return ISIF_OK;
}

const char *isif_st_meta_get(const struct isif_st_meta *meta, const char *key)
{
	for (size_t i = 0; meta && i < meta->n; i++)
		if (strcmp(meta->keys[i], key) == 0)
			return meta->values[i];
	return NULL;
}

void isif_st_meta_free(struct isif_st_meta *meta)
{
	if (!meta)
		return;
	for (size_t i = 0; i < meta->n; i++) {
		free(meta->keys[i]);
		free(meta->values[i]);
	}
	free(meta->keys);
	free(meta->values);
	memset(meta, 0, sizeof *meta);
}

/* ---- writer ------------------------------------------------------------ */

/* A JSON string as serde_json writes it: `"` `\` and control characters
 * escaped (\b \f \n \r \t, others \u00xx in lower-case hex), the rest raw. */
static void put_json_string(struct isif_strbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	isif_strbuf_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char esc[8];
		switch (*c) {
		case '"':  isif_strbuf_put(b, "\\\"", 2); break;
		case '\\': isif_strbuf_put(b, "\\\\", 2); break;
		case '\b': isif_strbuf_put(b, "\\b", 2); break;
		case '\f': isif_strbuf_put(b, "\\f", 2); break;
		case '\n': isif_strbuf_put(b, "\\n", 2); break;
		case '\r': isif_strbuf_put(b, "\\r", 2); break;
		case '\t': isif_strbuf_put(b, "\\t", 2); break;
		default:
			if (*c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*c >> 4];
				esc[5] = hex[*c & 15];
				isif_strbuf_put(b, esc, 6);
			} else {
				isif_strbuf_put(b, (const char *)c, 1);
			}
		}
	}
	isif_strbuf_put(b, "\"", 1);
}

/* True if s is well-formed UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF), as a JSON string must be. */
static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t cp;
		int extra;
		if (*p < 0x80) {
			p++;
			continue;
		} else if ((*p & 0xE0) == 0xC0) {
			cp = *p & 0x1F;
			extra = 1;
		} else if ((*p & 0xF0) == 0xE0) {
			cp = *p & 0x0F;
			extra = 2;
		} else if ((*p & 0xF8) == 0xF0) {
			cp = *p & 0x07;
			extra = 3;
		} else {
			return false;
		}
		p++;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (*p & 0x3F);
		}
		static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
		if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
	}
	return true;
}

/* Byte size of t's data, after checking the fields a writer relies on. */
static enum isif_rc st_check_tensor(const struct isif_tensor *t, size_t *bytes, struct isif_error *err)
{
	if (!t->name || !t->name[0])
		return isif_fail(err, ISIF_EINVAL, "safetensors: tensor with an empty name");
	if (strcmp(t->name, ST_META_KEY) == 0 || !utf8_valid(t->name))
		return isif_fail(err, ISIF_EINVAL, "safetensors: invalid tensor name \"%.100s\"",
				 t->name);
	if (t->dtype != ISIF_F32 && t->dtype != ISIF_I64)
		return isif_fail(err, ISIF_EINVAL, "%.100s: unknown dtype %d", t->name,
				 (int)t->dtype);
	if (t->ndim < 0 || t->ndim > ISIF_MAX_DIMS)
		return isif_fail(err, ISIF_EINVAL, "%.100s: rank %d out of 0..%d", t->name,
				 t->ndim, ISIF_MAX_DIMS);
	uint64_t size = isif_dtype_size(t->dtype);
	for (int i = 0; i < t->ndim; i++) {
		uint64_t d = (uint64_t)t->shape[i];
		if (t->shape[i] < 0)
			return isif_fail(err, ISIF_EINVAL, "%.100s: negative dimension %lld",
					 t->name, (long long)t->shape[i]);
		if (d && size > ST_MAX_FILE / d)
			return isif_fail(err, ISIF_ENOMEM, "%.100s: too large", t->name);
		size *= d;
	}
	if (size && !t->data)
		return isif_fail(err, ISIF_EINVAL, "%.100s: no data", t->name);
	*bytes = (size_t)size;
	return ISIF_OK;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails if two tensors share a name (sorted copy of the names, neighbours compared). */
static enum isif_rc st_check_unique(const struct isif_tensor *tensors, size_t n, struct isif_error *err)
{
	if (n < 2)
		return ISIF_OK;
	const char **names = malloc(n * sizeof *names);
	if (!names)
		return isif_fail(err, ISIF_ENOMEM, "safetensors: out of memory");
	for (size_t i = 0; i < n; i++)
		names[i] = tensors[i].name;
	qsort(names, n, sizeof *names, cmp_str_ptr);
	int rc = ISIF_OK;
	for (size_t i = 1; i < n && rc == ISIF_OK; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			rc = isif_fail(err, ISIF_EINVAL, "safetensors: duplicate tensor \"%.100s\"",
				       names[i]);
	free(names);
	return rc;
}

static enum isif_rc st_check_meta(const struct isif_st_meta *meta, struct isif_error *err)
{
	for (size_t i = 0; meta && i < meta->n; i++) {
		if (!meta->keys[i] || !meta->values[i] || !utf8_valid(meta->keys[i]) ||
		    !utf8_valid(meta->values[i]))
			return isif_fail(err, ISIF_EINVAL, "safetensors: metadata entry %zu is "
					 "missing or not UTF-8", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(meta->keys[i], meta->keys[j]) == 0)
				return isif_fail(err, ISIF_EINVAL, "safetensors: duplicate "
						 "metadata key \"%.100s\"", meta->keys[i]);
	}
	return ISIF_OK;
}

/* The padded JSON header for tensors whose byte sizes are bytes[]. */
static void st_build_header(struct isif_strbuf *b, const struct isif_tensor *tensors, size_t n,
			    const size_t *bytes, const struct isif_st_meta *meta)
{
	bool first = true;
	isif_strbuf_put(b, "{", 1);
	if (meta && meta->n) {
		isif_strbuf_puts(b, "\"" ST_META_KEY "\":{");
		for (size_t i = 0; i < meta->n; i++) {
			if (i)
				isif_strbuf_put(b, ",", 1);
			put_json_string(b, meta->keys[i]);
			isif_strbuf_put(b, ":", 1);
			put_json_string(b, meta->values[i]);
		}
		isif_strbuf_put(b, "}", 1);
		first = false;
	}
	uint64_t offset = 0;
	for (size_t i = 0; i < n; i++) {
		const struct isif_tensor *t = &tensors[i];
		if (!first)
			isif_strbuf_put(b, ",", 1);
		first = false;
		put_json_string(b, t->name);
		isif_strbuf_puts(b, ":{\"dtype\":\"");
		isif_strbuf_puts(b, isif_dtype_name(t->dtype));
		isif_strbuf_puts(b, "\",\"shape\":[");
		for (int d = 0; d < t->ndim; d++) {
			if (d)
				isif_strbuf_put(b, ",", 1);
			isif_strbuf_printf(b, "%llu", (unsigned long long)(uint64_t)t->shape[d]);
		}
		isif_strbuf_puts(b, "],\"data_offsets\":[");
		isif_strbuf_printf(b, "%llu", (unsigned long long)offset);
		isif_strbuf_put(b, ",", 1);
		offset += bytes[i];
		isif_strbuf_printf(b, "%llu", (unsigned long long)offset);
		isif_strbuf_puts(b, "]}");
	}
	isif_strbuf_put(b, "}", 1);
	/* The reference implementation pads with spaces to a multiple of 8. */
	while (!b->failed && b->len % 8)
		isif_strbuf_put(b, " ", 1);
}

enum isif_rc isif_st_write(const char *path, const struct isif_tensor *tensors, size_t n,
		  const struct isif_st_meta *meta, struct isif_error *err)
{
	size_t *bytes = calloc(n ? n : 1, sizeof *bytes);
	struct isif_chunk *chunks = calloc(n + 2, sizeof *chunks);
	struct isif_strbuf hdr;
	int rc = ISIF_OK;
	isif_strbuf_init(&hdr, ISIF_ST_MAX_HEADER);
	if (!bytes || !chunks) {
		rc = isif_fail(err, ISIF_ENOMEM, "safetensors: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && rc == ISIF_OK; i++)
		rc = st_check_tensor(&tensors[i], &bytes[i], err);
	if (rc == ISIF_OK)
		rc = st_check_unique(tensors, n, err);
	if (rc == ISIF_OK)
		rc = st_check_meta(meta, err);
	if (rc)
		goto out;
	st_build_header(&hdr, tensors, n, bytes, meta);
	if (hdr.failed) {
		rc = isif_fail(err, ISIF_ENOMEM, "safetensors: header over %u bytes or out of memory",
			       ISIF_ST_MAX_HEADER);
		goto out;
	}
	uint8_t len_le[8];
	for (int i = 0; i < 8; i++)
		len_le[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
	chunks[0] = (struct isif_chunk){ len_le, sizeof len_le };
	chunks[1] = (struct isif_chunk){ hdr.p, hdr.len };
	for (size_t i = 0; i < n; i++)
		chunks[2 + i] = (struct isif_chunk){ tensors[i].data, bytes[i] };
	rc = isif_write_atomic(path, chunks, n + 2, err);
out:
	isif_strbuf_free(&hdr);
	free(chunks);
	free(bytes);
	return rc;
}

/* ---- reader ------------------------------------------------------------ */

/* Where tensor idx lies in the data section. */
struct st_span {
	uint64_t begin, end;
	size_t idx;
};

/* A non-negative JSON integer, or -1. */
static long long st_json_uint(const json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	return json_integer_value(v);
}

/* Fills t (name not set) and *sp from one header entry; numel·size must equal
 * end − begin and the span must lie inside the data_len-byte data section. */
static enum isif_rc st_parse_entry(const char *name, json_t *v, size_t data_len,
			  struct isif_tensor *t, struct st_span *sp, struct isif_error *err)
{
	json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
	json_t *offs = json_object_get(v, "data_offsets");
	if (!json_is_object(v))
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": entry is not an object", name);
	if (json_object_size(v) != 3 || !json_is_string(dt) || !json_is_array(shape) ||
	    !json_is_array(offs))
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": expected exactly a dtype "
				 "string, a shape array and a data_offsets array", name);
	const char *dts = json_string_value(dt);
	if (strcmp(dts, "F32") == 0)
		t->dtype = ISIF_F32;
	else if (strcmp(dts, "I64") == 0)
		t->dtype = ISIF_I64;
	else
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": unsupported dtype \"%.20s\" "
				 "(F32 and I64 only)", name, dts);
	size_t rank = json_array_size(shape);
	if (rank > ISIF_MAX_DIMS)
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": rank %zu over %d", name,
				 rank, ISIF_MAX_DIMS);
	t->ndim = (int)rank;
	/* bytes = size·Πshape, checked against the data section before each product. */
	uint64_t bytes = isif_dtype_size(t->dtype);
	bool zero = false;
	for (size_t i = 0; i < rank; i++) {
		long long d = st_json_uint(json_array_get(shape, i));
		if (d < 0)
			return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": shape[%zu] is not a "
					 "non-negative integer", name, i);
		t->shape[i] = d;
		zero |= d == 0;
	}
	for (size_t i = 0; i < rank && !zero; i++) {
		if (bytes > data_len / (uint64_t)t->shape[i])
			return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": shape larger than the "
					 "%zu-byte data section", name, data_len);
		bytes *= (uint64_t)t->shape[i];
	}
	if (zero)
		bytes = 0;
	long long b = st_json_uint(json_array_get(offs, 0));
	long long e = st_json_uint(json_array_get(offs, 1));
	if (json_array_size(offs) != 2 || b < 0 || e < 0)
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": data_offsets is not two "
				 "non-negative integers", name);
	if (b > e || (uint64_t)e > data_len)
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": data_offsets [%lld,%lld] "
				 "outside the %zu-byte data section", name, b, e, data_len);
	if ((uint64_t)(e - b) != bytes)
		return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\": its %s shape needs %llu "
				 "bytes, data_offsets span %lld", name, dts,
				 (unsigned long long)bytes, e - b);
	sp->begin = (uint64_t)b;
	sp->end = (uint64_t)e;
	return ISIF_OK;
}

static enum isif_rc st_parse_meta(json_t *obj, struct isif_st_meta *meta, struct isif_error *err)
{
	const char *key;
	json_t *v;
	if (!json_is_object(obj))
		return isif_fail(err, ISIF_EFORMAT, ST_META_KEY " is not an object");
	json_object_foreach(obj, key, v) {
		if (!json_is_string(v))
			return isif_fail(err, ISIF_EFORMAT, ST_META_KEY " value of \"%.100s\" is not "
					 "a string", key);
		if (isif_st_meta_set(meta, key, json_string_value(v)) != ISIF_OK)
			return isif_fail(err, ISIF_ENOMEM, "safetensors: out of memory");
	}
	return ISIF_OK;
}

static int cmp_span(const void *a, const void *b)
{
	const struct st_span *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* The spans, sorted by offset, must tile [0, data_len) with no gap or overlap. */
static enum isif_rc st_check_tiling(const struct isif_st_file *f, struct st_span *spans,
			   size_t data_len, struct isif_error *err)
{
	qsort(spans, f->n, sizeof *spans, cmp_span);
	uint64_t pos = 0;
	for (size_t i = 0; i < f->n; i++) {
		const char *name = f->tensors[spans[i].idx].name;
		if (spans[i].begin < pos)
			return isif_fail(err, ISIF_EFORMAT, "tensor \"%.100s\" overlaps tensor "
					 "\"%.100s\"", name, f->tensors[spans[i - 1].idx].name);
		if (spans[i].begin > pos)
			return isif_fail(err, ISIF_EFORMAT, "gap of %llu bytes before tensor \"%.100s\"",
					 (unsigned long long)(spans[i].begin - pos), name);
		pos = spans[i].end;
	}
	if (pos != data_len)
		return isif_fail(err, ISIF_EFORMAT, "data section has %zu bytes, tensors cover %llu",
				 data_len, (unsigned long long)pos);
	return ISIF_OK;
}

/*
 * Gives f an aligned blob and points the tensors into it. When every tensor
 * begins at a multiple of its element size the blob is the data section
 * itself, moved to the front of buf (which malloc aligned); otherwise (F32
 * data of odd length before I64 data) each tensor is copied to the next
 * multiple of ST_ALIGN of a fresh blob. Takes ownership of buf.
 */
static enum isif_rc st_place_blob(struct isif_st_file *f, const struct st_span *spans, char *buf,
			 size_t data_off, size_t data_len, struct isif_error *err)
{
	bool aligned = true;
	size_t need = 0;
	for (size_t i = 0; i < f->n; i++) {
		size_t size = isif_dtype_size(f->tensors[spans[i].idx].dtype);
		aligned &= spans[i].begin % size == 0;
		need = (need + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN + (spans[i].end - spans[i].begin);
	}
	if (aligned) {
		memmove(buf, buf + data_off, data_len);
		char *shrunk = realloc(buf, data_len ? data_len : 1);
		f->blob = shrunk ? shrunk : buf;
		f->blob_size = data_len;
		for (size_t i = 0; i < f->n; i++)
			f->tensors[spans[i].idx].data = (char *)f->blob + spans[i].begin;
		return ISIF_OK;
	}
	char *blob = malloc(need ? need : 1);
	if (!blob) {
		free(buf);
		return isif_fail(err, ISIF_ENOMEM, "safetensors: cannot allocate %zu bytes", need);
	}
	size_t pos = 0;
	for (size_t i = 0; i < f->n; i++) {
		size_t len = spans[i].end - spans[i].begin;
		pos = (pos + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
		memcpy(blob + pos, buf + data_off + spans[i].begin, len);
		f->tensors[spans[i].idx].data = blob + pos;
		pos += len;
	}
	free(buf);
	f->blob = blob;
	f->blob_size = need;
	return ISIF_OK;
}

/* Parses the JSON header's entries into out (tensors in file order) and spans. */
static enum isif_rc st_parse_header(json_t *root, size_t data_len, struct isif_st_file *out,
			   struct st_span **spans_out, struct isif_error *err)
{
	size_t count = json_object_size(root);
	if (json_object_get(root, ST_META_KEY))
		count--;
	out->tensors = calloc(count ? count : 1, sizeof *out->tensors);
	struct st_span *spans = calloc(count ? count : 1, sizeof *spans);
	*spans_out = spans;
	if (!out->tensors || !spans)
		return isif_fail(err, ISIF_ENOMEM, "safetensors: out of memory");
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		int rc;
		if (strcmp(key, ST_META_KEY) == 0) {
			rc = st_parse_meta(v, &out->meta, err);
		} else {
			struct isif_tensor *t = &out->tensors[out->n];
			rc = st_parse_entry(key, v, data_len, t, &spans[out->n], err);
			if (rc == ISIF_OK && !(t->name = strdup(key)))
				rc = isif_fail(err, ISIF_ENOMEM, "safetensors: out of memory");
			spans[out->n].idx = out->n;
			if (rc == ISIF_OK)
				out->n++;
		}
		if (rc)
			return rc;
	}
	return ISIF_OK;
}

/* Parses a whole file held in buf (malloc'd, len bytes); takes ownership of buf. */
static enum isif_rc st_parse_owned(char *buf, size_t len, struct isif_st_file *out, struct isif_error *err)
{
	memset(out, 0, sizeof *out);
	if (len < 8) {
		free(buf);
		return isif_fail(err, ISIF_EFORMAT, "%zu bytes: too short for the 8-byte header "
				 "length", len);
	}
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | (uint8_t)buf[i];
	int rc = ISIF_OK;
	if (hlen > ISIF_ST_MAX_HEADER)
		rc = isif_fail(err, ISIF_EFORMAT, "header length %llu over the limit of %u",
			       (unsigned long long)hlen, ISIF_ST_MAX_HEADER);
	else if (hlen > len - 8)
		rc = isif_fail(err, ISIF_EFORMAT, "header length %llu beyond the end of the "
			       "%zu-byte file", (unsigned long long)hlen, len);
	else if (hlen < 2 || buf[8] != '{')
		rc = isif_fail(err, ISIF_EFORMAT, "header is not a JSON object");
	if (rc) {
		free(buf);
		return rc;
	}
	json_error_t jerr;
	json_t *root = json_loadb(buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	struct st_span *spans = NULL;
	size_t data_off = 8 + (size_t)hlen, data_len = len - data_off;
	if (!root)
		rc = isif_fail(err, ISIF_EFORMAT, "header JSON: %s (column %d)", jerr.text,
			       jerr.column);
	else if (!json_is_object(root))
		rc = isif_fail(err, ISIF_EFORMAT, "header is not a JSON object");
	else
		rc = st_parse_header(root, data_len, out, &spans, err);
	json_decref(root);
	if (rc == ISIF_OK)
		rc = st_check_tiling(out, spans, data_len, err);
	if (rc == ISIF_OK)
		rc = st_place_blob(out, spans, buf, data_off, data_len, err);
	else
		free(buf);
	free(spans);
	if (rc)
		isif_st_file_free(out);
	return rc;
}

enum isif_rc isif_st_parse(const void *buf, size_t len, struct isif_st_file *out, struct isif_error *err)
{
	memset(out, 0, sizeof *out);
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return isif_fail(err, ISIF_ENOMEM, "safetensors: cannot allocate %zu bytes", len);
	if (len)
		memcpy(copy, buf, len);
	return st_parse_owned(copy, len, out, err);
}

enum isif_rc isif_st_read(const char *path, struct isif_st_file *out, struct isif_error *err)
{
	void *buf;
	size_t len;
	struct isif_error why = {0};
	memset(out, 0, sizeof *out);
	int rc = isif_read_file(path, ST_MAX_FILE, &buf, &len, err);
	if (rc)
		return rc;
	rc = st_parse_owned(buf, len, out, &why);
	if (rc)
		return isif_fail(err, rc, "%.120s: %s", path, why.msg);
	return ISIF_OK;
}

void isif_st_file_free(struct isif_st_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; f->tensors && i < f->n; i++)
		free((char *)f->tensors[i].name);
	free(f->tensors);
	isif_st_meta_free(&f->meta);
	free(f->blob);
	memset(f, 0, sizeof *f);
}

const struct isif_tensor *isif_st_find(const struct isif_st_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}
