/*
 * core/base/npy.c — NumPy .npy files of little-endian float32 C-order arrays.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE in 1.0, u32 LE in
 * 2.0), then an ASCII Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by '\n', then the raw data.
 * The reader takes versions 1.0 and 2.0, descr '<f4' only, fortran_order
 * False, and parses the dict strictly (exactly those three keys, string,
 * bool and tuple-of-integers literals, bounded lengths); the data must be
 * exactly Πshape·4 bytes. The writer produces what NumPy 1.24 np.save writes
 * byte for byte: version 1.0, keys sorted, 21 − digits(shape[0]) spare spaces
 * after the dict (room to grow the first axis in place), then spaces and '\n'
 * so that the preamble is a multiple of 64 bytes (a full 64 when it already
 * is, as numpy's padding formula gives).
 *
 * Not here: other dtypes, Fortran order, version 3.0 (UTF-8 headers), .npz.
 */
#include "isif/base/npy.h"
#include "isif/base/fileio.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "'<f4' data is copied as is: little-endian hosts only"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21           /* numpy's GROWTH_AXIS_MAX_DIGITS */
#define NPY_MAX_HEADER 65536           /* refuse longer dict headers */
#define NPY_MAX_FILE ((size_t)1 << 36) /* refuse files over 64 GiB */
#define NPY_MAX_DIGITS 18              /* a dimension below 10^18 */

/* ---- header parser ----------------------------------------------------- */

struct npy_cur {
	const char *p, *end;
};

static void npy_skip_ws(struct npy_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

/* Consumes ch (after optional whitespace) if it is next. */
static bool npy_accept(struct npy_cur *c, char ch)
{
	npy_skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/* A quoted string literal without escapes ('...' or "..."), at most cap−1 chars. */
static bool npy_string(struct npy_cur *c, char *out, size_t cap)
{
	npy_skip_ws(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return false;
	char q = *c->p++;
	size_t n = 0;
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\' || n + 1 >= cap)
			return false;
		out[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	out[n] = '\0';
	return true;
}

/* The bare word w (True/False), not followed by another identifier character. */
static bool npy_word(struct npy_cur *c, const char *w)
{
	size_t n = strlen(w);
	npy_skip_ws(c);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
		return false;
	const char *after = c->p + n;
	if (after < c->end && (*after == '_' || (*after >= '0' && *after <= '9') ||
			       (*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z')))
		return false;
	c->p = after;
	return true;
}

/* A non-negative decimal integer literal below 10^18, no sign, no leading zero. */
static bool npy_int(struct npy_cur *c, int64_t *v)
{
	npy_skip_ws(c);
	const char *s = c->p;
	int64_t x = 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (c->p - s >= NPY_MAX_DIGITS)
			return false;
		x = x * 10 + (*c->p++ - '0');
	}
	size_t n = (size_t)(c->p - s);
	if (n == 0 || (n > 1 && s[0] == '0'))
		return false;
	*v = x;
	return true;
}

/* A shape tuple: (), (n,), (a, b[, ...][,]); a 1-tuple needs its comma. */
static bool npy_shape(struct npy_cur *c, struct isif_npy *out)
{
	if (!npy_accept(c, '('))
		return false;
	out->ndim = 0;
	if (npy_accept(c, ')'))
		return true;
	for (;;) {
		if (out->ndim >= ISIF_NPY_MAX_DIMS || !npy_int(c, &out->shape[out->ndim]))
			return false;
		out->ndim++;
		bool comma = npy_accept(c, ',');
		if (npy_accept(c, ')'))
			return out->ndim > 1 || comma;
		if (!comma)
			return false;
	}
}

/* One "key: value" pair of the dict; *seen collects the keys met so far. */
static enum isif_rc npy_pair(struct npy_cur *c, struct isif_npy *out, unsigned *seen, struct isif_error *err)
{
	char key[32], val[32];
	if (!npy_string(c, key, sizeof key) || !npy_accept(c, ':'))
		return isif_fail(err, ISIF_EFORMAT, "npy: malformed header dict");
	unsigned bit = strcmp(key, "descr") == 0 ? 1u
		     : strcmp(key, "fortran_order") == 0 ? 2u
		     : strcmp(key, "shape") == 0 ? 4u : 0u;
	if (!bit || (*seen & bit))
		return isif_fail(err, ISIF_EFORMAT, "npy: unexpected or repeated header key '%s'", key);
	*seen |= bit;
	if (bit == 1) {
		if (!npy_string(c, val, sizeof val))
			return isif_fail(err, ISIF_EFORMAT, "npy: descr is not a string");
		if (strcmp(val, "<f4") != 0)
			return isif_fail(err, ISIF_EFORMAT, "npy: dtype '%s' unsupported ('<f4' only)",
					 val);
	} else if (bit == 2) {
		if (npy_word(c, "True"))
			return isif_fail(err, ISIF_EFORMAT, "npy: Fortran-order arrays unsupported");
		if (!npy_word(c, "False"))
			return isif_fail(err, ISIF_EFORMAT, "npy: fortran_order is not True or False");
	} else if (!npy_shape(c, out)) {
		return isif_fail(err, ISIF_EFORMAT, "npy: shape is not a tuple of at most %d "
				 "integers below 10^18", ISIF_NPY_MAX_DIMS);
	}
	return ISIF_OK;
}

/* Parses the dict text h[0..len) into out->ndim/shape. */
static enum isif_rc npy_parse_dict(const char *h, size_t len, struct isif_npy *out, struct isif_error *err)
{
	struct npy_cur c = { h, h + len };
	unsigned seen = 0;
	if (!npy_accept(&c, '{'))
		return isif_fail(err, ISIF_EFORMAT, "npy: header is not a dict");
	while (!npy_accept(&c, '}')) {
		int rc = npy_pair(&c, out, &seen, err);
		if (rc)
			return rc;
		if (!npy_accept(&c, ',')) {
			if (!npy_accept(&c, '}'))
				return isif_fail(err, ISIF_EFORMAT, "npy: malformed header dict");
			break;
		}
	}
	npy_skip_ws(&c);
	if (c.p != c.end)
		return isif_fail(err, ISIF_EFORMAT, "npy: junk after the header dict");
	if (seen != 7)
		return isif_fail(err, ISIF_EFORMAT, "npy: header lacks descr, fortran_order or shape");
	return ISIF_OK;
}

/* ---- reader ------------------------------------------------------------ */

/* Length of the preamble (magic, version, length, dict) of buf[0..len). */
static enum isif_rc npy_parse_preamble(const unsigned char *buf, size_t len, struct isif_npy *out,
			      size_t *pre, struct isif_error *err)
{
	if (len < NPY_MAGIC_LEN + 2 || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
		return isif_fail(err, ISIF_EFORMAT, "npy: not a .npy file (bad magic)");
	int major = buf[6], minor = buf[7];
	if ((major != 1 && major != 2) || minor != 0)
		return isif_fail(err, ISIF_EFORMAT, "npy: version %d.%d unsupported (1.0, 2.0 only)",
				 major, minor);
	size_t lenbytes = major == 1 ? 2 : 4, start = NPY_MAGIC_LEN + 2 + lenbytes;
	if (len < start)
		return isif_fail(err, ISIF_EFORMAT, "npy: truncated header");
	size_t hlen = 0;
	for (size_t i = lenbytes; i-- > 0;)
		hlen = (hlen << 8) | buf[NPY_MAGIC_LEN + 2 + i];
	if (hlen > NPY_MAX_HEADER)
		return isif_fail(err, ISIF_EFORMAT, "npy: header of %zu bytes over the limit of %d",
				 hlen, NPY_MAX_HEADER);
	if (hlen > len - start)
		return isif_fail(err, ISIF_EFORMAT, "npy: truncated header");
	*pre = start + hlen;
	return npy_parse_dict((const char *)buf + start, hlen, out, err);
}

/* Fails unless the data section holds exactly Πshape float32 values. */
static enum isif_rc npy_check_size(const struct isif_npy *a, size_t data_len, struct isif_error *err)
{
	/* Πshape·4 is compared to data_len before each product, so nothing overflows. */
	uint64_t bytes = sizeof(float);
	bool zero = false;
	for (int i = 0; i < a->ndim; i++)
		zero |= a->shape[i] == 0;
	for (int i = 0; i < a->ndim && !zero; i++) {
		if (bytes > data_len / (uint64_t)a->shape[i])
			return isif_fail(err, ISIF_EFORMAT, "npy: shape needs more than the %zu data "
					 "bytes present (truncated?)", data_len);
		bytes *= (uint64_t)a->shape[i];
	}
	if (zero)
		bytes = 0;
	if (bytes != data_len)
		return isif_fail(err, ISIF_EFORMAT, "npy: %zu data bytes, shape needs %llu",
				 data_len, (unsigned long long)bytes);
	return ISIF_OK;
}

enum isif_rc isif_npy_read(const char *path, struct isif_npy *out, struct isif_error *err)
{
	void *buf;
	size_t len, pre = 0;
	struct isif_error why = {0};
	memset(out, 0, sizeof *out);
	int rc = isif_read_file(path, NPY_MAX_FILE, &buf, &len, err);
	if (rc)
		return rc;
	struct isif_npy a = { 0 };
	rc = npy_parse_preamble(buf, len, &a, &pre, &why);
	if (rc == ISIF_OK)
		rc = npy_check_size(&a, len - pre, &why);
	if (rc) {
		free(buf);
		return isif_fail(err, rc, "%.120s: %s", path, why.msg);
	}
	/* Move the data to the front of the (malloc-aligned) buffer and keep it. */
	memmove(buf, (char *)buf + pre, len - pre);
	void *shrunk = realloc(buf, len - pre ? len - pre : 1);
	a.data = shrunk ? shrunk : buf;
	*out = a;
	return ISIF_OK;
}

/* ---- writer ------------------------------------------------------------ */

/* The preamble numpy 1.24 writes for a '<f4' C-order array of this shape; its length. */
static size_t npy_build_preamble(char *h, size_t cap, int ndim, const int64_t *shape)
{
	/* magic, version 1.0, 2 length bytes filled in at the end */
	memcpy(h, NPY_MAGIC "\x01\x00\x00\x00", NPY_MAGIC_LEN + 4);
	size_t n = NPY_MAGIC_LEN + 4;
	n += (size_t)snprintf(h + n, cap - n, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
	for (int i = 0; i < ndim; i++)
		n += (size_t)snprintf(h + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
	n += (size_t)snprintf(h + n, cap - n, "%s), }", ndim == 1 ? "," : "");
	if (ndim > 0) {
		int digits = snprintf(NULL, 0, "%lld", (long long)shape[0]);
		for (int i = digits; i < NPY_GROWTH_DIGITS; i++)
			h[n++] = ' ';
	}
	/* numpy: padlen = 64 − (preamble + 1) % 64, then padlen spaces and '\n'. */
	size_t pad = NPY_ALIGN - (n + 1) % NPY_ALIGN;
	memset(h + n, ' ', pad);
	n += pad;
	h[n++] = '\n';
	size_t hlen = n - (NPY_MAGIC_LEN + 4);
	h[NPY_MAGIC_LEN + 2] = (char)(hlen & 0xff);
	h[NPY_MAGIC_LEN + 3] = (char)(hlen >> 8);
	return n;
}

enum isif_rc isif_npy_write(const char *path, const float *data, int ndim,
		   const int64_t *shape, struct isif_error *err)
{
	if (ndim < 0 || ndim > ISIF_NPY_MAX_DIMS || (ndim > 0 && !shape))
		return isif_fail(err, ISIF_EINVAL, "npy: rank %d out of 0..%d", ndim,
				 ISIF_NPY_MAX_DIMS);
	uint64_t bytes = sizeof(float);
	bool zero = false;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0 || shape[i] >= (int64_t)1000000000000000000LL)
			return isif_fail(err, ISIF_EINVAL, "npy: dimension %lld out of range",
					 (long long)shape[i]);
		zero |= shape[i] == 0;
	}
	for (int i = 0; i < ndim && !zero; i++) {
		if (bytes > NPY_MAX_FILE / (uint64_t)shape[i])
			return isif_fail(err, ISIF_ENOMEM, "npy: array too large");
		bytes *= (uint64_t)shape[i];
	}
	if (zero)
		bytes = 0;
	if (bytes && !data)
		return isif_fail(err, ISIF_EINVAL, "npy: no data");
	/* At most 8 dims of 18 digits: the preamble stays far below this. */
	char pre[512];
	size_t n = npy_build_preamble(pre, sizeof pre, ndim, shape);
	struct isif_chunk chunks[2] = { { pre, n }, { data, (size_t)bytes } };
	return isif_write_atomic(path, chunks, 2, err);
}
