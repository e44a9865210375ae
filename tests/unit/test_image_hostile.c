/*
 * tests/unit/test_image_hostile.c — files whose decoding work is not
 * bounded by their byte count, and the decoder refusing them fast
 * (core/data/image_codec.c): a PNG whose deflate stream goes on for
 * gigabytes past its 16×16 rows (in one IDAT, in many, or past a larger
 * image), ancillary chunks that inflate to megabytes each, and progressive
 * JPEGs that repeat a scan over a 4096² image hundreds of times. The
 * hostile files are written here byte by byte; ordinary files (libpng's and
 * libjpeg's own writers, progressive included) still decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/clock.h"
#include "isif/base/common.h"
#include "isif/data/image.h"

/* Seconds a refusal may take: well under a second, more under sanitizers. */
static double refusal_limit_s(void)
{
	return getenv("SANITIZED") ? 4.0 : 1.0;
}

/* A growable byte buffer (aborts the test on out of memory). */
struct bytes {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct bytes *b, const void *data, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
}

static void put_u32(struct bytes *b, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, be, 4);
}

/* ---- PNG ------------------------------------------------------------------------ */

static void png_chunk(struct bytes *b, const char *type, const uint8_t *data, size_t n)
{
	if (!data)
		data = (const uint8_t *)"";   /* crc32(c, NULL, 0) would restart the CRC */
	put_u32(b, (uint32_t)n);
	put(b, type, 4);
	put(b, data, n);
	uLong crc = crc32(crc32(0, (const Bytef *)type, 4), data, (uInt)n);
	put_u32(b, (uint32_t)crc);
}

static void png_head(struct bytes *b, int w, int h)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	uint8_t ihdr[13] = {0};
	put(b, sig, 8);
	for (int i = 0; i < 4; i++) {
		ihdr[i] = (uint8_t)((unsigned)w >> (24 - 8 * i));
		ihdr[4 + i] = (uint8_t)((unsigned)h >> (24 - 8 * i));
	}
	ihdr[8] = 8;   /* 8-bit gray, deflate, no filter method, no interlace */
	png_chunk(b, "IHDR", ihdr, sizeof ihdr);
}

/*
 * A zlib stream of w×h gray rows of zeros (each with its filter byte)
 * followed by `extra_mib` MiB more zeros that no row needs: one
 * full-flushed segment of 1 MiB of zeros (about 1 KiB compressed, no
 * reference across the flush) repeated, then an empty final stored block
 * and the Adler-32 of everything (zeros leave its low half alone and add it
 * to the high half once per byte).
 */
static void bomb_zlib(struct bytes *z, int w, int h, long extra_mib)
{
	size_t raw_n = (size_t)h * (size_t)(w + 1), seg_cap = 1 << 20;
	uint8_t *raw = calloc(raw_n, 1), *zeros = calloc(1 << 20, 1), *seg = malloc(seg_cap);
	z_stream s;
	memset(&s, 0, sizeof s);
	deflateInit(&s, 9);
	s.next_in = raw;
	s.avail_in = (uInt)raw_n;
	s.next_out = seg;
	s.avail_out = (uInt)seg_cap;
	deflate(&s, Z_FULL_FLUSH);
	put(z, seg, seg_cap - s.avail_out);
	s.next_in = zeros;
	s.avail_in = 1 << 20;
	s.next_out = seg;
	s.avail_out = (uInt)seg_cap;
	deflate(&s, Z_FULL_FLUSH);
	size_t seg_n = seg_cap - s.avail_out;
	deflateEnd(&s);
	for (long i = 0; i < extra_mib; i++)
		put(z, seg, seg_n);
	static const uint8_t last_block[5] = {0x01, 0x00, 0x00, 0xff, 0xff};
	put(z, last_block, 5);
	uLong ad = adler32(adler32(0, NULL, 0), raw, (uInt)raw_n);
	uint64_t lo = ad & 0xffff, hi = ad >> 16;
	hi = (hi + (uint64_t)extra_mib % 65521 * ((1u << 20) % 65521) % 65521 * lo) % 65521;
	put_u32(z, (uint32_t)(hi << 16 | lo));
	free(raw);
	free(zeros);
	free(seg);
}

/* A w×h gray PNG whose IDAT data (split into chunks of idat_size bytes,
 * 0: one chunk) inflates to extra_mib MiB past its rows. */
static struct bytes bomb_png(int w, int h, long extra_mib, size_t idat_size)
{
	struct bytes b = {0}, z = {0};
	png_head(&b, w, h);
	bomb_zlib(&z, w, h, extra_mib);
	size_t step = idat_size ? idat_size : z.n;
	for (size_t i = 0; i < z.n; i += step)
		png_chunk(&b, "IDAT", z.p + i, z.n - i < step ? z.n - i : step);
	png_chunk(&b, "IEND", NULL, 0);
	free(z.p);
	return b;
}

/* Decodes with the default limits; the rc, the seconds taken in *dt. */
static int decode_timed(const struct bytes *b, double *dt, struct isif_error *err)
{
	uint8_t *px = NULL;
	int c, h, w;
	double t0 = isif_now_s();
	int rc = isif_image_decode(b->p, b->n, NULL, &px, &c, &h, &w, err);
	*dt = isif_now_s() - t0;
	free(px);
	return rc;
}

/* The file of the report: 9.7 MB declaring 16×16, 9.3 GiB of deflate
 * output. It took 20 s of CPU; now the chunk walk refuses it unread. */
TEST(dataset_png_idat_bomb_refused)
{
	const size_t splits[2] = {0, 64 << 10};
	for (int k = 0; k < 2; k++) {
		struct bytes b = bomb_png(16, 16, 9523, splits[k]);
		struct isif_error err = {0};
		double dt;
		CHECK_MSG(b.n > 9000000 && b.n < 11000000, "%zu bytes", b.n);
		CHECK_EQ(decode_timed(&b, &dt, &err), ISIF_EFORMAT);
		CHECK_MSG(strstr(err.msg, "PNG refused") != NULL, "%s", err.msg);
		CHECK_MSG(dt < refusal_limit_s(), "%s IDAT: %.2f s", k ? "split" : "one", dt);
		free(b.p);
	}
}

/* A 1024×1024 image (1 MiB of rows, so 2 MiB of IDAT is allowed) followed
 * by 1.5 GiB of deflate output: refused after the rows, before libpng's
 * png_read_end would inflate the rest. */
TEST(dataset_png_tail_bomb_refused)
{
	struct bytes b = bomb_png(1024, 1024, 1536, 8192);
	struct isif_error err = {0};
	double dt;
	CHECK_EQ(decode_timed(&b, &dt, &err), ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "left for the last row") != NULL, "%s", err.msg);
	CHECK_MSG(dt < refusal_limit_s(), "%.2f s", dt);
	free(b.p);
	/* the same image without the tail decodes */
	b = bomb_png(1024, 1024, 0, 8192);
	CHECK_EQ(decode_timed(&b, &dt, &err), ISIF_OK);
	free(b.p);
}

/* 400 zTXt chunks of 8 KiB that each inflate to 8 MB (libpng's limit for
 * one chunk): ancillary chunks are skipped, the 16×16 image decodes. */
TEST(dataset_png_ztxt_bomb_skipped)
{
	struct bytes b = {0}, z = {0};
	png_head(&b, 16, 16);
	uLongf cap = compressBound(8000000);
	uint8_t *zeros = calloc(8000000, 1), *comp = malloc(cap + 8);
	memcpy(comp, "Comment\0\0", 9);      /* keyword, NUL, compression method 0 */
	uLongf n = cap;
	compress2(comp + 9, &n, zeros, 8000000, 9);
	for (int i = 0; i < 400; i++)
		png_chunk(&b, "zTXt", comp, n + 9);
	bomb_zlib(&z, 16, 16, 0);
	png_chunk(&b, "IDAT", z.p, z.n);
	png_chunk(&b, "IEND", NULL, 0);
	struct isif_error err = {0};
	double dt;
	CHECK_EQ(decode_timed(&b, &dt, &err), ISIF_OK);
	CHECK_MSG(dt < refusal_limit_s(), "%.2f s", dt);
	free(zeros);
	free(comp);
	free(z.p);
	free(b.p);
}

/* libpng's own writer, with stored (uncompressed) blocks and text chunks:
 * IDAT near the raw size passes the bound, the pixels are the ones written. */
TEST(dataset_png_ordinary_files_still_decode)
{
	int w = 300, h = 200;
	uint8_t *rows = malloc((size_t)w * h * 3);
	for (int i = 0; i < w * h * 3; i++)
		rows[i] = (uint8_t)(i * 2654435761u >> 24);   /* incompressible */
	size_t len;
	void *png = tu_png(rows, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0,
			   &len);
	uint8_t *px = NULL;
	int c, ph, pw;
	struct isif_error err = {0};
	CHECK_EQ(isif_image_decode(png, len, NULL, &px, &c, &ph, &pw, &err), ISIF_OK);
	for (int i = 0; px && i < w * h; i++)
		for (int ch = 0; ch < 3; ch++)
			if (px[(size_t)ch * w * h + i] != rows[i * 3 + ch]) {
				CHECK_MSG(0, "pixel %d channel %d", i, ch);
				i = w * h;
				break;
			}
	free(px);
	free(png);
	/* stored deflate blocks: IDAT a little over the raw rows */
	struct bytes b = {0};
	size_t raw_n = (size_t)h * (w + 1);
	uint8_t *raw = calloc(raw_n, 1);
	uLongf n = compressBound(raw_n);
	uint8_t *z = malloc(n);
	compress2(z, &n, raw, raw_n, 0);
	png_head(&b, w, h);
	png_chunk(&b, "tEXt", (const uint8_t *)"Title\0x", 7);
	png_chunk(&b, "IDAT", z, n);
	png_chunk(&b, "IEND", NULL, 0);
	CHECK_MSG(isif_image_decode(b.p, b.n, NULL, &px, &c, &ph, &pw, &err) == ISIF_OK, "%s",
		  err.msg);
	CHECK(c == 1 && ph == h && pw == w);
	free(px);
	free(b.p);
	free(raw);
	free(z);
	free(rows);
}

/* ---- JPEG ----------------------------------------------------------------------- */

static void jpeg_segment(struct bytes *b, uint8_t marker, const uint8_t *data, size_t n)
{
	uint8_t head[4] = {0xff, marker, (uint8_t)((n + 2) >> 8), (uint8_t)(n + 2)};
	put(b, head, 4);
	put(b, data, n);
}

/*
 * A flat side×side gray progressive JPEG of `scans` identical AC scans
 * (coefficients 1..63, successive approximation Ah/Al as given) and no DC
 * scan (libjpeg only warns): each scan is one end-of-band run over every
 * block, a dozen bytes whatever the image's size.
 */
static struct bytes scan_flood_jpeg(int side, int scans, uint8_t ahal)
{
	struct bytes b = {0};
	static const uint8_t soi[2] = {0xff, 0xd8}, eoi[2] = {0xff, 0xd9};
	put(&b, soi, 2);
	uint8_t dqt[65] = {0};
	memset(dqt + 1, 1, 64);
	jpeg_segment(&b, 0xdb, dqt, sizeof dqt);
	uint8_t sof[9] = {8, (uint8_t)(side >> 8), (uint8_t)side, (uint8_t)(side >> 8), (uint8_t)side,
			  1, 1, 0x11, 0};
	jpeg_segment(&b, 0xc2, sof, sizeof sof);
	/* the scan's bits: EOB14 + 14 ones (32767 blocks) while they fit,
	 * then EOB_r for the rest (2^r blocks + r bits) */
	char bits[4096] = "";
	long left = (long)(side / 8) * (side / 8);
	for (; left >= 32767; left -= 32767)
		strcat(bits, "011111111111111");
	int r = 0;
	while ((2L << r) <= left)
		r++;
	if (left) {
		strcat(bits, "10");
		for (int i = r - 1; i >= 0; i--)
			strcat(bits, (left - (1L << r)) >> i & 1 ? "1" : "0");
	}
	/* AC table 0: '0' is EOB14, '10' is EOB_r */
	uint8_t dht[19] = {0x10, 1, 1};
	dht[17] = 0xe0;
	dht[18] = (uint8_t)(r << 4);
	jpeg_segment(&b, 0xc4, dht, sizeof dht);
	while (strlen(bits) % 8)
		strcat(bits, "1");
	struct bytes data = {0};
	for (size_t i = 0; i < strlen(bits); i += 8) {
		uint8_t v = 0;
		for (int j = 0; j < 8; j++)
			v = (uint8_t)(v << 1 | (bits[i + j] == '1'));
		put(&data, &v, 1);
		if (v == 0xff)
			put(&data, "", 1);   /* byte stuffing */
	}
	const uint8_t sos[6] = {1, 1, 0x00, 1, 63, ahal};
	for (int s = 0; s < scans; s++) {
		jpeg_segment(&b, 0xda, sos, sizeof sos);
		put(&b, data.p, data.n);
	}
	put(&b, eoi, 2);
	free(data.p);
	return b;
}

/* The report's file: ~490 refinement scans over a flat 4096² image, 16 KB
 * here; it took 7 s. Refused after the scans of 8 passes over the image. */
TEST(dataset_jpeg_scan_flood_refused)
{
	const uint8_t ahal[2] = {0x10, 0x00};   /* refinement scans, first scans */
	for (int k = 0; k < 2; k++) {
		struct bytes b = scan_flood_jpeg(4096, 490, ahal[k]);
		struct isif_error err = {0};
		double dt;
		CHECK_MSG(b.n < 20000, "%zu bytes", b.n);
		CHECK_EQ(decode_timed(&b, &dt, &err), ISIF_EFORMAT);
		CHECK_MSG(strstr(err.msg, "JPEG refused") && strstr(err.msg, "passes over the image"),
			  "%s", err.msg);
		CHECK_MSG(dt < refusal_limit_s(), "Ah/Al %#x: %.2f s", ahal[k], dt);
		free(b.p);
	}
	/* the same work bound lets a handful of such scans through */
	struct bytes b = scan_flood_jpeg(256, 5, 0x10);
	struct isif_error err = {0};
	double dt;
	CHECK_MSG(decode_timed(&b, &dt, &err) == ISIF_OK, "%s", err.msg);
	free(b.p);
}

/* Many cheap scans (one coefficient each) on a small image: the fixed
 * cost per block and scan bounds them too. */
TEST(dataset_jpeg_many_narrow_scans_refused)
{
	struct bytes b = scan_flood_jpeg(64, 60, 0x10);
	for (size_t i = 0; i + 7 < b.n; i++)   /* every SOS: coefficients 1..1 */
		if (b.p[i] == 0xff && b.p[i + 1] == 0xda)
			b.p[i + 8] = 1;
	struct isif_error err = {0};
	double dt;
	CHECK_EQ(decode_timed(&b, &dt, &err), ISIF_EFORMAT);
	CHECK_MSG(strstr(err.msg, "its 38 scans would do more than 8 passes") != NULL, "%s", err.msg);
	free(b.p);
}

/* An encoder's progressive files, libjpeg's simple progression (10 scans
 * in colour, 6 in gray), decode to the reference decoder's pixels. */
TEST(dataset_jpeg_progressive_files_still_decode)
{
	int w = 640, h = 480;
	uint8_t *img = malloc((size_t)3 * w * h);
	for (int i = 0; i < 3 * w * h; i++)
		img[i] = (uint8_t)((i % w) * 3 + (i / w) % 97 + (i * 2654435761u >> 28));
	for (int c = 1; c <= 3; c += 2) {
		size_t len;
		void *jpg = tu_jpeg_progressive(img, c, h, w, 90, &len);
		int rn, rh, rw;
		uint8_t *ref = tu_unjpeg(jpg, len, &rn, &rh, &rw);
		uint8_t *px = NULL;
		int dc, dh, dw;
		struct isif_error err = {0};
		CHECK_MSG(isif_image_decode(jpg, len, NULL, &px, &dc, &dh, &dw, &err) == ISIF_OK,
			  "%d channels: %s", c, err.msg);
		CHECK(px && ref && dc == c && dh == h && dw == w &&
		      memcmp(px, ref, (size_t)c * w * h) == 0);
		free(px);
		free(ref);
		free(jpg);
	}
	free(img);
}
