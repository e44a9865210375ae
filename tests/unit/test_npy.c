/*
 * tests/unit/test_npy.c — .npy reading and writing against files written by
 * numpy itself (bytes generated once with /usr/bin/python3 and numpy 1.24.2
 * by tests/unit/gen_file_fixtures.py), round trips, and rejection of
 * unsupported or malformed files.
 */
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/fileio.h"
#include "isif/base/npy.h"

static void npy_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

static void npy_put(const char *path, const void *bytes, size_t len)
{
	struct isif_chunk c = { bytes, len };
	CHECK(isif_write_atomic(path, &c, 1, NULL) == ISIF_OK);
}

/* ---- numpy-written fixtures (gen_file_fixtures.py) --------------------- */

/* np.save of np.array([[0.5, -1.0, 2.0], [3.25, 1e-3, -7.5]], dtype='<f4') */
static const unsigned char npy_numpy_v1_2x3[] = {
	0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27,
	0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34,
	0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f,
	0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
	0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20,
	0x28, 0x32, 0x2c, 0x20, 0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x00, 0x3f,
	0x00, 0x00, 0x80, 0xbf, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x50, 0x40,
	0x6f, 0x12, 0x83, 0x3a, 0x00, 0x00, 0xf0, 0xc0,
};

/* np.lib.format.write_array(f, np.array([1.0, 2.0, 3.0], dtype='<f4'), version=(2, 0)) */
static const unsigned char npy_numpy_v2_3[] = {
	0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x02, 0x00, 0x74, 0x00, 0x00, 0x00,
	0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c,
	0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61,
	0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61,
	0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27,
	0x3a, 0x20, 0x28, 0x33, 0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x80, 0x3f,
	0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40,
};

/* np.save of np.array(1.5, dtype='<f4'), shape () */
static const unsigned char npy_numpy_scalar[] = {
	0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27,
	0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34,
	0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f,
	0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
	0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20,
	0x28, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0xc0, 0x3f,
};

static const float npy_2x3_values[6] = { 0.5f, -1.0f, 2.0f, 3.25f, 1e-3f, -7.5f };

TEST(npy_reads_numpy_files)
{
	char path[512];
	struct isif_error err = {0};
	struct isif_npy a;
	npy_path(path, sizeof path, "npy_numpy_v1.npy");
	npy_put(path, npy_numpy_v1_2x3, sizeof npy_numpy_v1_2x3);
	CHECK_MSG(isif_npy_read(path, &a, &err) == ISIF_OK, "%s", err.msg);
	CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
	CHECK(a.data && memcmp(a.data, npy_2x3_values, sizeof npy_2x3_values) == 0);
	free(a.data);

	npy_path(path, sizeof path, "npy_numpy_v2.npy");
	npy_put(path, npy_numpy_v2_3, sizeof npy_numpy_v2_3);
	CHECK_MSG(isif_npy_read(path, &a, &err) == ISIF_OK, "%s", err.msg);
	CHECK(a.ndim == 1 && a.shape[0] == 3);
	CHECK(a.data && a.data[0] == 1.0f && a.data[1] == 2.0f && a.data[2] == 3.0f);
	free(a.data);

	npy_path(path, sizeof path, "npy_numpy_scalar.npy");
	npy_put(path, npy_numpy_scalar, sizeof npy_numpy_scalar);
	CHECK_MSG(isif_npy_read(path, &a, &err) == ISIF_OK, "%s", err.msg);
	CHECK(a.ndim == 0 && a.data && a.data[0] == 1.5f);
	free(a.data);
}

static int npy_file_is(const char *path, const void *want, size_t len)
{
	void *got;
	size_t n;
	if (isif_read_file(path, 1 << 20, &got, &n, NULL) != ISIF_OK)
		return 0;
	int eq = n == len && memcmp(got, want, len) == 0;
	free(got);
	return eq;
}

TEST(npy_writes_what_numpy_writes)
{
	char path[512];
	struct isif_error err = {0};
	int64_t shape[2] = { 2, 3 };
	float one_half = 1.5f;
	npy_path(path, sizeof path, "npy_write_2x3.npy");
	CHECK_MSG(isif_npy_write(path, npy_2x3_values, 2, shape, &err) == ISIF_OK, "%s", err.msg);
	CHECK(npy_file_is(path, npy_numpy_v1_2x3, sizeof npy_numpy_v1_2x3));
	npy_path(path, sizeof path, "npy_write_scalar.npy");
	CHECK_MSG(isif_npy_write(path, &one_half, 0, NULL, &err) == ISIF_OK, "%s", err.msg);
	CHECK(npy_file_is(path, npy_numpy_scalar, sizeof npy_numpy_scalar));
}

/*
 * Preambles numpy 1.24 writes (gen_file_fixtures.py prints them): the dict,
 * 21 − digits(shape[0]) growth spaces, then padding so that magic + version +
 * length + header + '\n' is a multiple of 64 — a whole 64 more when it
 * already is, as for the last shape (10 + 181 + 1 = 192 → 256 bytes).
 */
TEST(npy_header_matches_numpy)
{
	static const struct {
		int ndim;
		int64_t shape[8];
		const char *dict;
		size_t total;
	} cases[] = {
		{ 0, { 0 }, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 128 },
		{ 1, { 5 }, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 128 },
		{ 2, { 2, 3 }, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 128 },
		{ 8, { 1, 1, 1, 1, 1, 1, 1, 1 },
		  "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1), }", 128 },
		{ 2, { 1000000000000LL, 0 },
		  "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 0), }", 128 },
		{ 8, { 0, 1000000000000LL, 1000000000000LL, 1000000000000LL, 1000000000000LL,
		       1000000000000LL, 1000000000000LL, 1000000000000LL },
		  "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000000000, "
		  "1000000000000, 1000000000000, 1000000000000, 1000000000000, 1000000000000, "
		  "1000000000000), }", 256 },
	};
	static const float zeros[8] = { 0 };
	char path[512];
	struct isif_error err = {0};
	npy_path(path, sizeof path, "npy_header.npy");
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		CHECK_MSG(isif_npy_write(path, zeros, cases[c].ndim, cases[c].shape, &err) == ISIF_OK,
			  "%s", err.msg);
		unsigned char *got;
		size_t len;
		CHECK(isif_read_file(path, 4096, (void **)&got, &len, &err) == ISIF_OK);
		size_t dl = strlen(cases[c].dict), total = cases[c].total;
		int64_t numel = 1;
		for (int d = 0; d < cases[c].ndim; d++)
			numel *= cases[c].shape[d];
		CHECK_MSG(len == total + 4 * (size_t)numel, "case %zu: %zu bytes", c, len);
		if (len < total)
			goto next;
		CHECK(memcmp(got, "\x93NUMPY\x01\x00", 8) == 0);
		CHECK_EQ(got[8] | got[9] << 8, total - 10);
		CHECK_MSG(memcmp(got + 10, cases[c].dict, dl) == 0, "case %zu: %.*s", c,
			  (int)(total - 10), got + 10);
		for (size_t i = 10 + dl; i < total - 1; i++)
			CHECK_MSG(got[i] == ' ', "case %zu byte %zu", c, i);
		CHECK(got[total - 1] == '\n');
next:
		free(got);
	}
}

TEST(npy_roundtrip_shapes)
{
	char path[512];
	struct isif_error err = {0};
	static const struct { int ndim; int64_t shape[8]; } cases[] = {
		{ 0, { 0 } }, { 1, { 7 } }, { 2, { 4, 3 } }, { 2, { 0, 4 } },
		{ 8, { 2, 1, 3, 1, 2, 1, 1, 2 } }, { 3, { 5, 12, 10 } },
	};
	float data[600];
	for (int i = 0; i < 600; i++)
		data[i] = (float)(i * 0.37 - 100.0);
	npy_path(path, sizeof path, "npy_roundtrip.npy");
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int64_t numel = 1;
		for (int d = 0; d < cases[c].ndim; d++)
			numel *= cases[c].shape[d];
		CHECK_MSG(isif_npy_write(path, data, cases[c].ndim, cases[c].shape, &err) == ISIF_OK,
			  "%s", err.msg);
		struct isif_npy a;
		CHECK_MSG(isif_npy_read(path, &a, &err) == ISIF_OK, "%s", err.msg);
		CHECK_EQ(a.ndim, cases[c].ndim);
		for (int d = 0; d < cases[c].ndim; d++)
			CHECK_EQ(a.shape[d], cases[c].shape[d]);
		CHECK(numel == 0 || (a.data && memcmp(a.data, data, (size_t)numel * 4) == 0));
		free(a.data);
	}
}

/* ---- rejections -------------------------------------------------------- */

/* Writes a version-major .npy file made of this dict text and nbytes of data
 * (zeros when data is NULL) to path. */
static void npy_put_dict(const char *path, int major, const char *dict, const void *data,
			 size_t nbytes)
{
	size_t dl = strlen(dict), lb = major == 1 ? 2 : 4, n = 8 + lb + dl + nbytes;
	unsigned char *b = calloc(n, 1);
	memcpy(b, "\x93NUMPY", 6);
	b[6] = (unsigned char)major;
	for (size_t i = 0; i < lb; i++)
		b[8 + i] = (unsigned char)(dl >> (8 * i));
	memcpy(b + 8 + lb, dict, dl);
	if (data)
		memcpy(b + 8 + lb + dl, data, nbytes);
	npy_put(path, b, n);
	free(b);
}

/* Reads such a file and checks the result is ISIF_EFORMAT with needle in the message. */
static void npy_expect_reject(int line, int major, const char *dict, size_t nbytes,
			      const char *needle)
{
	char path[512];
	struct isif_error err = {0};
	npy_path(path, sizeof path, "npy_reject.npy");
	npy_put_dict(path, major, dict, NULL, nbytes);
	struct isif_npy a;
	int rc = isif_npy_read(path, &a, &err);
	if (rc != ISIF_EFORMAT || !strstr(err.msg, needle))
		test_fail_at(__FILE__, line, "%s: rc %d, message \"%s\" (want \"%s\")", dict, rc,
			     err.msg, needle);
	if (rc == ISIF_OK)
		free(a.data);
}

#define NPY_DICT(descr, fo, shape) \
	"{'descr': '" descr "', 'fortran_order': " fo ", 'shape': " shape ", }\n"
#define REJECT(major, dict, nbytes, needle) npy_expect_reject(__LINE__, major, dict, nbytes, needle)

TEST(npy_reject_dtypes_and_order)
{
	REJECT(1, NPY_DICT("<f8", "False", "(2,)"), 16, "'<f8' unsupported");
	REJECT(1, NPY_DICT(">f4", "False", "(2,)"), 8, "'>f4' unsupported");
	REJECT(1, NPY_DICT("|f4", "False", "(2,)"), 8, "'|f4'");
	REJECT(1, NPY_DICT("<i4", "False", "(2,)"), 8, "'<i4'");
	REJECT(1, NPY_DICT("f4", "False", "(2,)"), 8, "'f4'");
	REJECT(1, NPY_DICT("<f4", "True", "(2, 2)"), 16, "Fortran");
	REJECT(1, NPY_DICT("<f4", "0", "(2,)"), 8, "fortran_order");
	REJECT(1, NPY_DICT("<f4", "Falsey", "(2,)"), 8, "fortran_order");
}

TEST(npy_reject_sizes)
{
	/* truncated, one byte too many, and a shape whose size overflows */
	REJECT(1, NPY_DICT("<f4", "False", "(2, 3)"), 23, "23 data bytes");
	REJECT(1, NPY_DICT("<f4", "False", "(2, 3)"), 25, "25 data bytes");
	REJECT(2, NPY_DICT("<f4", "False", "(3,)"), 0, "0 data bytes");
	REJECT(1, NPY_DICT("<f4", "False", "()"), 0, "0 data bytes");
	REJECT(1, NPY_DICT("<f4", "False", "(4294967296, 4294967296, 4294967296, 4294967296)"),
	       16, "truncated");
	REJECT(1, NPY_DICT("<f4", "False", "(999999999999999999, 999999999999999999)"), 16,
	       "truncated");
}

TEST(npy_reject_garbage_header)
{
	REJECT(1, "[1, 2]\n", 0, "not a dict");
	REJECT(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), \n", 8, "malformed");
	REJECT(1, "{'descr': '<f4', 'fortran_order': False}\n", 8, "lacks");
	REJECT(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8, "'x'");
	REJECT(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8,
	       "repeated");
	REJECT(1, NPY_DICT("<f4", "False", "(2)"), 8, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "(-2,)"), 8, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "(2.0,)"), 8, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "(02,)"), 8, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "(2L,)"), 8, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), 4, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "(1000000000000000000,)"), 4, "shape");
	REJECT(1, NPY_DICT("<f4", "False", "[2]"), 8, "shape");
	REJECT(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x\n", 8, "junk");
	REJECT(1, "{'descr': '<\\f4', 'fortran_order': False, 'shape': (2,), }\n", 8, "descr");
	REJECT(1, "{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }\n", 8, "");
	REJECT(1, "", 0, "not a dict");
	/* accepted variants: double quotes, no trailing comma, extra spaces, tuple comma */
	char path[512];
	struct isif_error err = {0};
	static const float one_two[2] = { 1.0f, 2.0f };
	npy_path(path, sizeof path, "npy_variant.npy");
	npy_put_dict(path, 1, "{ \"shape\" : (1, 2,) ,'fortran_order':False,\"descr\":'<f4'}\n",
		     one_two, sizeof one_two);
	struct isif_npy a;
	CHECK_MSG(isif_npy_read(path, &a, &err) == ISIF_OK, "%s", err.msg);
	CHECK(a.ndim == 2 && a.shape[0] == 1 && a.shape[1] == 2);
	CHECK(a.data && a.data[0] == 1.0f && a.data[1] == 2.0f);
	free(a.data);
}

TEST(npy_reject_preamble)
{
	char path[512];
	struct isif_error err = {0};
	struct isif_npy a;
	unsigned char b[160];
	npy_path(path, sizeof path, "npy_preamble.npy");
	/* empty and 7-byte files, bad magic */
	npy_put(path, b, 0);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	npy_put(path, "\x93NUMPY\x01", 7);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	memcpy(b, npy_numpy_v1_2x3, sizeof npy_numpy_v1_2x3);
	b[1] = 'n';
	npy_put(path, b, sizeof npy_numpy_v1_2x3);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "magic"), "%s", err.msg);
	/* versions 3.0 and 1.1 */
	memcpy(b, npy_numpy_v1_2x3, sizeof npy_numpy_v1_2x3);
	b[6] = 3;
	npy_put(path, b, sizeof npy_numpy_v1_2x3);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "version 3.0"), "%s", err.msg);
	b[6] = 1;
	b[7] = 1;
	npy_put(path, b, sizeof npy_numpy_v1_2x3);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	/* header length beyond the file, and over the limit (version 2.0) */
	memcpy(b, npy_numpy_v1_2x3, sizeof npy_numpy_v1_2x3);
	b[8] = 0xff;
	npy_put(path, b, sizeof npy_numpy_v1_2x3);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "truncated header"), "%s", err.msg);
	memcpy(b, npy_numpy_v2_3, sizeof npy_numpy_v2_3);
	b[11] = 0x7f;
	npy_put(path, b, sizeof npy_numpy_v2_3);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "limit"), "%s", err.msg);
	/* header cut short */
	npy_put(path, npy_numpy_v1_2x3, 60);
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EFORMAT);
	npy_path(path, sizeof path, "npy_missing.npy");
	CHECK(isif_npy_read(path, &a, &err) == ISIF_EIO);
}

TEST(npy_writer_rejects_bad_input)
{
	char path[512];
	struct isif_error err = {0};
	int64_t shape[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	float x = 0;
	npy_path(path, sizeof path, "npy_bad_write.npy");
	CHECK(isif_npy_write(path, &x, 9, shape, &err) == ISIF_EINVAL);
	CHECK(isif_npy_write(path, &x, -1, shape, &err) == ISIF_EINVAL);
	shape[0] = -1;
	CHECK(isif_npy_write(path, &x, 1, shape, &err) == ISIF_EINVAL);
	shape[0] = 2;
	CHECK(isif_npy_write(path, NULL, 1, shape, &err) == ISIF_EINVAL);
	shape[0] = (int64_t)1 << 40;
	shape[1] = (int64_t)1 << 40;
	CHECK(isif_npy_write(path, &x, 2, shape, &err) == ISIF_ENOMEM);
	FILE *fp = fopen(path, "rb");
	CHECK(fp == NULL);
	if (fp)
		fclose(fp);
	npy_path(path, sizeof path, "no/dir/x.npy");
	shape[0] = 1;
	CHECK(isif_npy_write(path, &x, 1, shape, &err) == ISIF_EIO);
}
