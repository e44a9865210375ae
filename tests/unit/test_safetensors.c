/*
 * tests/unit/test_safetensors.c — the generic safetensors reader/writer:
 * round trips, the exact byte layout (derived by hand), a file laid out by
 * the reference rules (bytes generated once by gen_file_fixtures.py), and
 * rejection of every kind of malformed file.
 */
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isif/base/fileio.h"
#include "isif/base/safetensors.h"

/* ---- helpers ----------------------------------------------------------- */

static void st_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

/* A file image: 8-byte LE length of json, json, then dlen data bytes (zeros if data NULL). */
static unsigned char *st_image(const char *json, const void *data, size_t dlen, size_t *len)
{
	size_t n = strlen(json);
	unsigned char *b = calloc(8 + n + dlen + 1, 1);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(b + 8, json, n);
	if (data)
		memcpy(b + 8 + n, data, dlen);
	*len = 8 + n + dlen;
	return b;
}

/* Parses json + dlen zero data bytes; returns the rc and leaves the message in err. */
static enum isif_rc st_try(const char *json, size_t dlen, struct isif_error *err)
{
	size_t len;
	unsigned char *b = st_image(json, NULL, dlen, &len);
	struct isif_st_file f;
	err->msg[0] = '\0';
	int rc = isif_st_parse(b, len, &f, err);
	isif_st_file_free(&f);
	free(b);
	return rc;
}

#define CHECK_REJECT(json, dlen, needle)                                          \
	do {                                                                      \
		struct isif_error e_;                                             \
		int rc_ = st_try(json, dlen, &e_);                                \
		CHECK_MSG(rc_ == ISIF_EFORMAT, "rc %d for %s", rc_, json);        \
		CHECK_MSG(strstr(e_.msg, needle), "message \"%s\" lacks \"%s\"", e_.msg, needle); \
	} while (0)

static int st_files_equal(const char *a, const char *b)
{
	void *x, *y;
	size_t nx, ny;
	if (isif_read_file(a, 1 << 24, &x, &nx, NULL) || isif_read_file(b, 1 << 24, &y, &ny, NULL))
		return 0;
	int eq = nx == ny && memcmp(x, y, nx) == 0;
	free(x);
	free(y);
	return eq;
}

/* ---- round trips and layout ------------------------------------------- */

TEST(st_roundtrip_f32_i64_meta)
{
	char path[512];
	struct isif_error err = {0};
	float w[6] = { 1.5f, -2.25f, 3e-8f, 1e30f, -0.0f, 7.0f };
	int64_t count = -9000000000LL, big[2] = { INT64_MAX, INT64_MIN };
	struct isif_tensor ts[4] = {
		{ .name = "layer.weight", .dtype = ISIF_F32, .ndim = 2, .shape = { 2, 3 }, .data = w },
		{ .name = "bn.num_batches_tracked", .dtype = ISIF_I64, .ndim = 0, .data = &count },
		{ .name = "empty", .dtype = ISIF_F32, .ndim = 2, .shape = { 0, 5 }, .data = NULL },
		{ .name = "ints", .dtype = ISIF_I64, .ndim = 1, .shape = { 2 }, .data = big },
	};
	struct isif_st_meta meta = { 0 };
	CHECK(isif_st_meta_set(&meta, "model", "convnet") == ISIF_OK);
	CHECK(isif_st_meta_set(&meta, "spec", "{\"lr\": 0.03,\n\t\"x\": \"\\u00e9\"}") == ISIF_OK);
	CHECK(isif_st_meta_set(&meta, "epoch", "3") == ISIF_OK);
	st_path(path, sizeof path, "st_roundtrip.safetensors");
	CHECK_MSG(isif_st_write(path, ts, 4, &meta, &err) == ISIF_OK, "%s", err.msg);

	struct isif_st_file f;
	CHECK_MSG(isif_st_read(path, &f, &err) == ISIF_OK, "%s", err.msg);
	CHECK_EQ(f.n, 4);
	for (size_t i = 0; i < f.n && i < 4; i++) {
		CHECK(strcmp(f.tensors[i].name, ts[i].name) == 0);  /* file order kept */
		CHECK_EQ(f.tensors[i].dtype, ts[i].dtype);
		CHECK_EQ(f.tensors[i].ndim, ts[i].ndim);
		for (int d = 0; d < ts[i].ndim; d++)
			CHECK_EQ(f.tensors[i].shape[d], ts[i].shape[d]);
	}
	const struct isif_tensor *t = isif_st_find(&f, "layer.weight");
	CHECK(t && memcmp(t->data, w, sizeof w) == 0);
	CHECK(t && (uintptr_t)t->data % 4 == 0);
	t = isif_st_find(&f, "bn.num_batches_tracked");
	CHECK(t && t->ndim == 0 && isif_tensor_numel(t) == 1);
	CHECK(t && (uintptr_t)t->data % 8 == 0 && *(int64_t *)t->data == count);
	t = isif_st_find(&f, "ints");
	CHECK(t && ((int64_t *)t->data)[0] == INT64_MAX && ((int64_t *)t->data)[1] == INT64_MIN);
	CHECK(isif_st_find(&f, "nope") == NULL);
	CHECK_EQ(f.blob_size, sizeof w + 8 + 16);
	CHECK_EQ(f.meta.n, 3);
	if (f.meta.n == 3) {
		CHECK(strcmp(f.meta.keys[0], "model") == 0);  /* insertion order kept */
		CHECK(strcmp(f.meta.keys[1], "spec") == 0);
		CHECK(strcmp(f.meta.keys[2], "epoch") == 0);
	}
	CHECK(strcmp(isif_st_meta_get(&f.meta, "spec"), meta.values[1]) == 0);
	isif_st_file_free(&f);
	isif_st_meta_free(&meta);
}

TEST(st_layout_bytes_by_hand)
{
	char path[512];
	struct isif_error err = {0};
	float a[2] = { 1.0f, -2.0f };
	int64_t b = 7;
	struct isif_tensor ts[2] = {
		{ .name = "a", .dtype = ISIF_F32, .ndim = 1, .shape = { 2 }, .data = a },
		{ .name = "b", .dtype = ISIF_I64, .ndim = 0, .data = &b },
	};
	struct isif_st_meta meta = { 0 };
	isif_st_meta_set(&meta, "model", "xy");
	st_path(path, sizeof path, "st_layout.safetensors");
	CHECK_MSG(isif_st_write(path, ts, 2, &meta, &err) == ISIF_OK, "%s", err.msg);
	isif_st_meta_free(&meta);
	/*
	 * Derived by hand: the compact JSON below is 137 bytes
	 * ({ 1, "__metadata__" 14, : 1, {"model":"xy"} 14, , 1, "a" 3, : 1,
	 * {"dtype":"F32","shape":[2],"data_offsets":[0,8]} 48, , 1, "b" 3, : 1,
	 * {"dtype":"I64","shape":[],"data_offsets":[8,16]} 48, } 1), padded with
	 * 7 spaces to 144 = 0x90; then 1.0f = 0x3f800000 and -2.0f = 0xc0000000
	 * little-endian, and 7 as 8 little-endian bytes.
	 */
	static const char json[] =
		"{\"__metadata__\":{\"model\":\"xy\"},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		"\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}       ";
	static const unsigned char head[8] = { 0x90, 0, 0, 0, 0, 0, 0, 0 };
	static const unsigned char data[16] = { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,
						0x07, 0, 0, 0, 0, 0, 0, 0 };
	void *got;
	size_t len;
	CHECK(sizeof json - 1 == 144);
	CHECK(isif_read_file(path, 4096, &got, &len, &err) == ISIF_OK);
	CHECK_EQ(len, 8 + 144 + 16);
	if (len == 8 + 144 + 16) {
		const unsigned char *g = got;
		CHECK(memcmp(g, head, 8) == 0);
		CHECK_MSG(memcmp(g + 8, json, 144) == 0, "header %.144s", (const char *)g + 8);
		CHECK(memcmp(g + 152, data, 16) == 0);
	}
	free(got);
}

/*
 * A file laid out by the reference rules of the Python `safetensors` package:
 * generated once by tests/unit/gen_file_fixtures.py with struct + json
 * (numbers: I64 12345678901234; F32 [0.25,-4,8.5]; F32 [[0.5,-1.25],[3,1e-3]];
 * metadata note = 'tab\there "q" é').
 */
static const unsigned char st_reference_file[] = {
	0xe8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x5f, 0x5f,
	0x6d, 0x65, 0x74, 0x61, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x5f, 0x22, 0x3a,
	0x7b, 0x22, 0x6e, 0x6f, 0x74, 0x65, 0x22, 0x3a, 0x22, 0x74, 0x61, 0x62,
	0x5c, 0x74, 0x68, 0x65, 0x72, 0x65, 0x20, 0x5c, 0x22, 0x71, 0x5c, 0x22,
	0x20, 0xc3, 0xa9, 0x22, 0x7d, 0x2c, 0x22, 0x62, 0x6e, 0x2e, 0x6e, 0x75,
	0x6d, 0x5f, 0x62, 0x61, 0x74, 0x63, 0x68, 0x65, 0x73, 0x5f, 0x74, 0x72,
	0x61, 0x63, 0x6b, 0x65, 0x64, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79,
	0x70, 0x65, 0x22, 0x3a, 0x22, 0x49, 0x36, 0x34, 0x22, 0x2c, 0x22, 0x73,
	0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x5d, 0x2c, 0x22, 0x64, 0x61,
	0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a,
	0x5b, 0x30, 0x2c, 0x38, 0x5d, 0x7d, 0x2c, 0x22, 0x62, 0x22, 0x3a, 0x7b,
	0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32,
	0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x33,
	0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73,
	0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x38, 0x2c, 0x32, 0x30, 0x5d, 0x7d,
	0x2c, 0x22, 0x77, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65,
	0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61,
	0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x2c, 0x32, 0x5d, 0x2c, 0x22, 0x64,
	0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22,
	0x3a, 0x5b, 0x32, 0x30, 0x2c, 0x33, 0x36, 0x5d, 0x7d, 0x7d, 0x20, 0x20,
	0xf2, 0x2f, 0xce, 0x73, 0x3a, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e,
	0x00, 0x00, 0x80, 0xc0, 0x00, 0x00, 0x08, 0x41, 0x00, 0x00, 0x00, 0x3f,
	0x00, 0x00, 0xa0, 0xbf, 0x00, 0x00, 0x40, 0x40, 0x6f, 0x12, 0x83, 0x3a,
};

TEST(st_reads_reference_layout_and_resaves_identically)
{
	char path[512];
	struct isif_error err = {0};
	struct isif_st_file f;
	CHECK_MSG(isif_st_parse(st_reference_file, sizeof st_reference_file, &f, &err) == ISIF_OK,
		  "%s", err.msg);
	CHECK_EQ(f.n, 3);
	const struct isif_tensor *t = isif_st_find(&f, "bn.num_batches_tracked");
	CHECK(t && t->dtype == ISIF_I64 && t->ndim == 0 && *(int64_t *)t->data == 12345678901234LL);
	t = isif_st_find(&f, "b");
	CHECK(t && t->ndim == 1 && t->shape[0] == 3);
	if (t) {
		const float *b = t->data;
		CHECK(b[0] == 0.25f && b[1] == -4.0f && b[2] == 8.5f);
	}
	t = isif_st_find(&f, "w");
	CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 2);
	if (t) {
		const float *w = t->data;
		CHECK(w[0] == 0.5f && w[1] == -1.25f && w[2] == 3.0f && w[3] == 1e-3f);
	}
	const char *note = isif_st_meta_get(&f.meta, "note");
	CHECK(note && strcmp(note, "tab\there \"q\" \xc3\xa9") == 0);

	/* Our writer follows the same rules, so writing it back gives the same bytes. */
	st_path(path, sizeof path, "st_reference_resave.safetensors");
	CHECK_MSG(isif_st_write(path, f.tensors, f.n, &f.meta, &err) == ISIF_OK, "%s", err.msg);
	isif_st_file_free(&f);
	void *got;
	size_t len;
	CHECK(isif_read_file(path, 4096, &got, &len, &err) == ISIF_OK);
	CHECK_EQ(len, sizeof st_reference_file);
	CHECK(len == sizeof st_reference_file && memcmp(got, st_reference_file, len) == 0);
	free(got);
}

TEST(st_resave_is_byte_identical)
{
	char p1[512], p2[512];
	struct isif_error err = {0};
	float x[5] = { 1, 2, 3, 4, 5 };
	int64_t n = 42;
	struct isif_tensor ts[3] = {
		{ .name = "x", .dtype = ISIF_F32, .ndim = 1, .shape = { 5 }, .data = x },
		{ .name = "n", .dtype = ISIF_I64, .ndim = 0, .data = &n },
		{ .name = "y.\"quoted\"\n", .dtype = ISIF_F32, .ndim = 3, .shape = { 1, 1, 2 }, .data = x },
	};
	struct isif_st_meta meta = { 0 };
	isif_st_meta_set(&meta, "z", "1");
	isif_st_meta_set(&meta, "a", "ctl\x01\x1f");
	st_path(p1, sizeof p1, "st_resave1.safetensors");
	st_path(p2, sizeof p2, "st_resave2.safetensors");
	CHECK_MSG(isif_st_write(p1, ts, 3, &meta, &err) == ISIF_OK, "%s", err.msg);
	isif_st_meta_free(&meta);
	struct isif_st_file f;
	CHECK_MSG(isif_st_read(p1, &f, &err) == ISIF_OK, "%s", err.msg);
	/* x (20 bytes) puts n at offset 20: the reader must realign it. */
	const struct isif_tensor *t = isif_st_find(&f, "n");
	CHECK(t && (uintptr_t)t->data % 8 == 0 && *(int64_t *)t->data == 42);
	t = isif_st_find(&f, "y.\"quoted\"\n");
	CHECK(t && ((float *)t->data)[1] == 2.0f);
	CHECK(strcmp(isif_st_meta_get(&f.meta, "a"), "ctl\x01\x1f") == 0);
	CHECK_MSG(isif_st_write(p2, f.tensors, f.n, &f.meta, &err) == ISIF_OK, "%s", err.msg);
	isif_st_file_free(&f);
	CHECK(st_files_equal(p1, p2));
}

TEST(st_empty_file_and_meta_api)
{
	char path[512];
	struct isif_error err = {0};
	st_path(path, sizeof path, "st_empty.safetensors");
	CHECK_MSG(isif_st_write(path, NULL, 0, NULL, &err) == ISIF_OK, "%s", err.msg);
	void *got;
	size_t len;
	CHECK(isif_read_file(path, 4096, &got, &len, &err) == ISIF_OK);
	/* "{}" padded to 8 bytes, no data. */
	CHECK(len == 16 && memcmp(got, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
	free(got);
	struct isif_st_file f;
	CHECK(isif_st_read(path, &f, &err) == ISIF_OK && f.n == 0 && f.meta.n == 0);
	isif_st_file_free(&f);

	struct isif_st_meta m = { 0 };
	CHECK(isif_st_meta_set(&m, "k", "1") == ISIF_OK);
	CHECK(isif_st_meta_set(&m, "j", "2") == ISIF_OK);
	CHECK(isif_st_meta_set(&m, "k", "3") == ISIF_OK);
	CHECK_EQ(m.n, 2);
	CHECK(strcmp(isif_st_meta_get(&m, "k"), "3") == 0);
	CHECK(strcmp(m.keys[0], "k") == 0);
	CHECK(isif_st_meta_get(&m, "x") == NULL);
	isif_st_meta_free(&m);
	CHECK(m.n == 0 && m.keys == NULL);
}

/* ---- rejections -------------------------------------------------------- */

#define ENT(name, dt, shape, b, e) \
	"\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

TEST(st_reject_header_length)
{
	struct isif_error err = {0};
	struct isif_st_file f;
	unsigned char b[16] = { 0 };
	/* shorter than the 8-byte length */
	CHECK(isif_st_parse(b, 5, &f, &err) == ISIF_EFORMAT);
	CHECK(isif_st_parse(b, 0, &f, &err) == ISIF_EFORMAT);
	/* N = 0 and N = 1 */
	CHECK(isif_st_parse(b, 8, &f, &err) == ISIF_EFORMAT);
	b[0] = 1;
	b[8] = '{';
	CHECK(isif_st_parse(b, 9, &f, &err) == ISIF_EFORMAT);
	/* N beyond the end of the file */
	size_t len;
	unsigned char *img = st_image("{}      ", NULL, 0, &len);
	CHECK(isif_st_parse(img, len - 1, &f, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "beyond the end"), "%s", err.msg);
	img[0] = 0xff;  /* 255 > 8 bytes left */
	CHECK(isif_st_parse(img, len, &f, &err) == ISIF_EFORMAT);
	free(img);
	/* N over ISIF_ST_MAX_HEADER, refused before anything is read */
	uint64_t big = (uint64_t)ISIF_ST_MAX_HEADER + 1;
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(big >> (8 * i));
	CHECK(isif_st_parse(b, 16, &f, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "limit"), "%s", err.msg);
	memset(b, 0xff, 8);  /* 2^64 − 1 */
	CHECK(isif_st_parse(b, 16, &f, &err) == ISIF_EFORMAT);
	isif_st_file_free(&f);
}

TEST(st_reject_zero_length_and_missing_file)
{
	char path[512];
	struct isif_error err = {0};
	struct isif_st_file f;
	st_path(path, sizeof path, "st_zero.safetensors");
	FILE *fp = fopen(path, "wb");
	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	CHECK(isif_st_read(path, &f, &err) == ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "st_zero.safetensors"), "%s", err.msg);
	st_path(path, sizeof path, "st_does_not_exist.safetensors");
	CHECK(isif_st_read(path, &f, &err) == ISIF_EIO);
	isif_st_file_free(&f);
}

TEST(st_reject_truncated_data)
{
	char path[512];
	struct isif_error err = {0};
	float x[4] = { 1, 2, 3, 4 };
	struct isif_tensor t = { .name = "x", .dtype = ISIF_F32, .ndim = 1, .shape = { 4 }, .data = x };
	st_path(path, sizeof path, "st_trunc.safetensors");
	CHECK(isif_st_write(path, &t, 1, NULL, &err) == ISIF_OK);
	void *buf;
	size_t len;
	CHECK(isif_read_file(path, 4096, &buf, &len, &err) == ISIF_OK);
	struct isif_st_file f;
	CHECK(isif_st_parse(buf, len, &f, &err) == ISIF_OK);
	isif_st_file_free(&f);
	for (size_t cut = 1; cut <= 16; cut += 5) {
		CHECK(isif_st_parse(buf, len - cut, &f, &err) == ISIF_EFORMAT);
		CHECK_MSG(strstr(err.msg, "\"x\""), "%s", err.msg);
	}
	/* an extra trailing byte is refused as well */
	unsigned char *longer = calloc(len + 1, 1);
	memcpy(longer, buf, len);
	CHECK(isif_st_parse(longer, len + 1, &f, &err) == ISIF_EFORMAT);
	free(longer);
	free(buf);
}

TEST(st_reject_offsets)
{
	/* out of range */
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 8, 16) "}", 8, "outside");
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 8, 0) "}", 8, "outside");
	/* overlap: b starts inside a */
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 0, 8) "," ENT("b", "F32", "[2]", 4, 12) "}", 12,
		     "overlaps");
	/* same span twice */
	CHECK_REJECT("{" ENT("a", "F32", "[1]", 0, 4) "," ENT("b", "F32", "[1]", 0, 4) "}", 8,
		     "overlaps");
	/* gap between tensors, at the start, and bytes left over at the end */
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 0, 8) "," ENT("b", "F32", "[2]", 12, 20) "}", 20,
		     "gap");
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 4, 12) "}", 12, "gap");
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 0, 8) "}", 12, "data section has 12 bytes");
	/* not integers / wrong count / negative */
	CHECK_REJECT("{" ENT("a", "F32", "[2]", 0, 8.0) "}", 8, "data_offsets");
	CHECK_REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
		     "data_offsets");
	CHECK_REJECT("{" ENT("a", "F32", "[2]", -8, 0) "}", 8, "data_offsets");
	/* in any order in the header, tiling is judged by offset: this one is fine */
	struct isif_error err = {0};
	CHECK(st_try("{" ENT("b", "F32", "[1]", 8, 12) "," ENT("a", "I64", "[]", 0, 8) "}", 12,
		     &err) == ISIF_OK);
	CHECK(st_try("{" ENT("z", "F32", "[0]", 0, 0) "," ENT("a", "F32", "[1]", 0, 4) "}", 4,
		     &err) == ISIF_OK);
}

TEST(st_reject_dtype_and_shape)
{
	CHECK_REJECT("{" ENT("layer.w", "BF16", "[2]", 0, 4) "}", 4, "\"layer.w\": unsupported dtype \"BF16\"");
	CHECK_REJECT("{" ENT("a", "F64", "[1]", 0, 8) "}", 8, "F64");
	CHECK_REJECT("{" ENT("a", "f32", "[1]", 0, 4) "}", 4, "f32");
	/* numel·size ≠ end − begin */
	CHECK_REJECT("{" ENT("a", "F32", "[3]", 0, 8) "}", 12, "needs 12 bytes");
	CHECK_REJECT("{" ENT("a", "I64", "[]", 0, 4) "}", 4, "\"a\"");
	CHECK_REJECT("{" ENT("a", "F32", "[]", 0, 8) "}", 8, "needs 4 bytes");
	/* negative, fractional, string dims, rank over 4, huge product */
	CHECK_REJECT("{" ENT("a", "F32", "[-1]", 0, 0) "}", 0, "shape[0]");
	CHECK_REJECT("{" ENT("a", "F32", "[2.0]", 0, 8) "}", 8, "shape[0]");
	CHECK_REJECT("{" ENT("a", "F32", "[\"2\"]", 0, 8) "}", 8, "shape[0]");
	CHECK_REJECT("{" ENT("a", "F32", "[1,1,1,1,1]", 0, 4) "}", 4, "rank 5");
	CHECK_REJECT("{" ENT("a", "F32", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, "larger");
	CHECK_REJECT("{" ENT("a", "F32", "[99999999999999999999]", 0, 4) "}", 4, "JSON");
	/* a zero dim makes the product 0 however large the others are */
	struct isif_error err = {0};
	CHECK(st_try("{" ENT("a", "F32", "[4294967296,0,4294967296]", 0, 0) "}", 0, &err) == ISIF_OK);
}

TEST(st_reject_bad_json)
{
	CHECK_REJECT("[1,2,3] ", 0, "not a JSON object");
	CHECK_REJECT("\"abc\"   ", 0, "not a JSON object");
	CHECK_REJECT("{\"a\":", 0, "JSON");
	CHECK_REJECT("{\"a\":5}", 0, "\"a\": entry is not an object");
	CHECK_REJECT("{\"a\":[1]}", 0, "not an object");
	CHECK_REJECT("{} x", 0, "JSON");
	CHECK_REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "expected exactly");
	CHECK_REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
		     "expected exactly");
	CHECK_REJECT("{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "expected exactly");
	CHECK_REJECT("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
	CHECK_REJECT("{\"__metadata__\":[\"k\"]}", 0, "not an object");
	/* invalid UTF-8 in a name */
	CHECK_REJECT("{\"\xff\":{}}", 0, "JSON");
}

TEST(st_reject_duplicates)
{
	CHECK_REJECT("{" ENT("a", "F32", "[1]", 0, 4) "," ENT("a", "F32", "[1]", 4, 8) "}", 8, "JSON");
	CHECK_REJECT("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "JSON");
	CHECK_REJECT("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "JSON");
}

TEST(st_writer_rejects_bad_input)
{
	char path[512];
	struct isif_error err = {0};
	float x[2] = { 1, 2 };
	struct isif_tensor ts[2] = {
		{ .name = "a", .dtype = ISIF_F32, .ndim = 1, .shape = { 2 }, .data = x },
		{ .name = "a", .dtype = ISIF_F32, .ndim = 1, .shape = { 2 }, .data = x },
	};
	st_path(path, sizeof path, "st_bad_write.safetensors");
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	CHECK_MSG(strstr(err.msg, "duplicate"), "%s", err.msg);
	ts[1].name = "__metadata__";
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	ts[1].name = "b";
	ts[1].ndim = 5;
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	ts[1].ndim = 1;
	ts[1].shape[0] = -1;
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	ts[1].shape[0] = 2;
	ts[1].dtype = (enum isif_dtype)7;
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	ts[1].dtype = ISIF_F32;
	ts[1].name = "bad\xc3";  /* truncated UTF-8 sequence */
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	ts[1].name = "b";
	ts[1].data = NULL;
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EINVAL);
	ts[1].data = x;
	FILE *fp = fopen(path, "rb");
	CHECK(fp == NULL);  /* nothing was written by the failures above */
	if (fp)
		fclose(fp);
	st_path(path, sizeof path, "no/such/dir/x.safetensors");
	CHECK(isif_st_write(path, ts, 2, NULL, &err) == ISIF_EIO);
}
