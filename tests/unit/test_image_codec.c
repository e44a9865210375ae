/*
 * tests/unit/test_image_codec.c — JPEG/PNG decoding, PNG encoding, bilinear
 * resize and channel conversion (core/data/image_codec.c). Inputs are written
 * with libpng/libjpeg directly (dataset_testutil.c); expected pixels are
 * the values written, hand-computed, or from torchvision where stated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "check.h"
#include "dataset_testutil.h"
#include "isif/base/common.h"
#include "isif/data/dataset.h"
#include "isif/data/image.h"
#include "isif/base/rng.h"

/* Decodes buf with default limits and checks the shape. */
static uint8_t *decode_ok(const void *buf, size_t len, int c, int h, int w)
{
	uint8_t *pix = NULL;
	int dc, dh, dw;
	struct isif_error err = {0};
	int rc = isif_image_decode(buf, len, NULL, &pix, &dc, &dh, &dw, &err);
	CHECK_MSG(rc == ISIF_OK, "decode: rc %d: %s", rc, err.msg);
	CHECK_EQ(dc, c);
	CHECK_EQ(dh, h);
	CHECK_EQ(dw, w);
	return rc == ISIF_OK ? pix : NULL;
}

TEST(dataset_png_decode_gray8_rgb8)
{
	/* 3 wide, 2 high; gray samples as written */
	const uint8_t g[6] = { 0, 1, 2, 253, 254, 255 };
	size_t len;
	void *png = tu_png(g, 3, 2, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, &len);
	uint8_t *p = decode_ok(png, len, 1, 2, 3);
	for (int i = 0; p && i < 6; i++)
		CHECK_EQ(p[i], g[i]);
	free(p);
	free(png);

	/* RGB 2x2, interleaved on disk; CHW planes expected */
	const uint8_t rgb[12] = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120 };
	png = tu_png(rgb, 2, 2, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, &len);
	p = decode_ok(png, len, 3, 2, 2);
	for (int i = 0; p && i < 4; i++)
		for (int ch = 0; ch < 3; ch++)
			CHECK_EQ(p[ch * 4 + i], rgb[i * 3 + ch]);
	free(p);
	free(png);
}

TEST(dataset_png_decode_alpha_dropped)
{
	/* gray+alpha: 2x1 (gray, alpha) pairs; alpha must not blend */
	const uint8_t ga[4] = { 200, 0, 50, 128 };
	size_t len;
	void *png = tu_png(ga, 2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, NULL, 0, NULL, 0, &len);
	uint8_t *p = decode_ok(png, len, 1, 1, 2);
	if (p) {
		CHECK_EQ(p[0], 200);
		CHECK_EQ(p[1], 50);
	}
	free(p);
	free(png);

	const uint8_t rgba[8] = { 1, 2, 3, 0, 250, 251, 252, 7 };
	png = tu_png(rgba, 2, 1, 8, PNG_COLOR_TYPE_RGBA, 0, NULL, 0, NULL, 0, &len);
	p = decode_ok(png, len, 3, 1, 2);
	if (p) {
		const uint8_t want[6] = { 1, 250, 2, 251, 3, 252 };
		for (int i = 0; i < 6; i++)
			CHECK_EQ(p[i], want[i]);
	}
	free(p);
	free(png);
}

TEST(dataset_png_decode_palette_16bit_1bit)
{
	/* palette with tRNS: indices 2,0,1 → palette colours, transparency ignored */
	const uint8_t pal[9] = { 255, 0, 0, 0, 255, 0, 9, 8, 7 };
	const uint8_t trns[3] = { 0, 128, 255 };
	const uint8_t idx[3] = { 2, 0, 1 };
	size_t len;
	void *png = tu_png(idx, 3, 1, 8, PNG_COLOR_TYPE_PALETTE, 0, pal, 3, trns, 3, &len);
	uint8_t *p = decode_ok(png, len, 3, 1, 3);
	if (p) {
		const uint8_t want[9] = { 9, 255, 0, /* R */ 8, 0, 255, /* G */ 7, 0, 0 /* B */ };
		for (int i = 0; i < 9; i++)
			CHECK_EQ(p[i], want[i]);
	}
	free(p);
	free(png);

	/* 16-bit gray, big-endian samples 0x1234, 0xFF01 → high bytes 0x12, 0xFF */
	const uint8_t g16[4] = { 0x12, 0x34, 0xFF, 0x01 };
	png = tu_png(g16, 2, 1, 16, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &len);
	p = decode_ok(png, len, 1, 1, 2);
	if (p) {
		CHECK_EQ(p[0], 0x12);
		CHECK_EQ(p[1], 0xFF);
	}
	free(p);
	free(png);

	/* 16-bit RGB, one pixel (0xAB00, 0x0100, 0x7FFF) → (0xAB, 0x01, 0x7F) */
	const uint8_t rgb16[6] = { 0xAB, 0x00, 0x01, 0x00, 0x7F, 0xFF };
	png = tu_png(rgb16, 1, 1, 16, PNG_COLOR_TYPE_RGB, 0, NULL, 0, NULL, 0, &len);
	p = decode_ok(png, len, 3, 1, 1);
	if (p) {
		CHECK_EQ(p[0], 0xAB);
		CHECK_EQ(p[1], 0x01);
		CHECK_EQ(p[2], 0x7F);
	}
	free(p);
	free(png);

	/* 1-bit gray, 8 pixels packed in one byte 0b10110000 → 255,0,255,255,0,0,0,0 */
	const uint8_t bits[1] = { 0xB0 };
	png = tu_png(bits, 8, 1, 1, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &len);
	p = decode_ok(png, len, 1, 1, 8);
	if (p) {
		const uint8_t want[8] = { 255, 0, 255, 255, 0, 0, 0, 0 };
		for (int i = 0; i < 8; i++)
			CHECK_EQ(p[i], want[i]);
	}
	free(p);
	free(png);
}

TEST(dataset_png_decode_interlaced)
{
	/* Adam7 interlacing must come out in plain row order */
	enum { W = 9, H = 7 };
	uint8_t rgb[W * H * 3];
	for (int i = 0; i < W * H * 3; i++)
		rgb[i] = (uint8_t)(i * 7 + 3);
	size_t len;
	void *png = tu_png(rgb, W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0, &len);
	uint8_t *p = decode_ok(png, len, 3, H, W);
	for (int i = 0; p && i < W * H; i++)
		for (int ch = 0; ch < 3; ch++)
			CHECK_EQ(p[ch * W * H + i], rgb[i * 3 + ch]);
	free(p);
	free(png);
}

TEST(dataset_png_encode_roundtrip)
{
	/* Our encoder, read back by libpng's own simplified reader. */
	enum { W = 5, H = 3 };
	uint8_t chw[3 * W * H];
	for (int i = 0; i < 3 * W * H; i++)
		chw[i] = (uint8_t)(i * 13 + 1);
	void *png;
	size_t len;
	struct isif_error err = {0};
	CHECK_EQ(isif_image_encode_png(chw, 3, H, W, &png, &len, &err), ISIF_OK);
	png_image img;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	CHECK(png_image_begin_read_from_memory(&img, png, len));
	img.format = PNG_FORMAT_RGB;
	uint8_t hwc[3 * W * H];
	CHECK(png_image_finish_read(&img, NULL, hwc, 0, NULL));
	CHECK_EQ(img.width, W);
	CHECK_EQ(img.height, H);
	for (int i = 0; i < W * H; i++)
		for (int ch = 0; ch < 3; ch++)
			CHECK_EQ(hwc[i * 3 + ch], chw[ch * W * H + i]);
	free(png);

	/* gray through our own decoder */
	CHECK_EQ(isif_image_encode_png(chw, 1, H, W, &png, &len, &err), ISIF_OK);
	uint8_t *p = decode_ok(png, len, 1, H, W);
	for (int i = 0; p && i < W * H; i++)
		CHECK_EQ(p[i], chw[i]);
	free(p);
	free(png);

	CHECK_EQ(isif_image_encode_png(chw, 2, H, W, &png, &len, &err), ISIF_EINVAL);
	CHECK(png == NULL);
}

TEST(dataset_jpeg_decode_gray_rgb)
{
	/* flat images at quality 100 survive JPEG exactly (gray) or within
	 * YCbCr rounding (colour, ±2) */
	enum { W = 16, H = 8 };
	uint8_t g[W * H], rgb[3 * W * H];
	memset(g, 77, sizeof g);
	for (int i = 0; i < W * H; i++) {
		rgb[i] = 200;
		rgb[W * H + i] = 30;
		rgb[2 * W * H + i] = 90;
	}
	size_t len;
	void *jpg = tu_jpeg(g, 1, H, W, 100, &len);
	uint8_t *p = decode_ok(jpg, len, 1, H, W);
	for (int i = 0; p && i < W * H; i++)
		CHECK_EQ(p[i], 77);
	free(p);
	free(jpg);

	jpg = tu_jpeg(rgb, 3, H, W, 100, &len);
	p = decode_ok(jpg, len, 3, H, W);
	for (int i = 0; p && i < 3 * W * H; i++)
		CHECK_MSG(abs(p[i] - rgb[i]) <= 2, "pixel %d: %d vs %d", i, p[i], rgb[i]);
	free(p);
	free(jpg);

	/* a gradient at quality 75 (lossy, chroma subsampled): bit-exact
	 * against plain libjpeg driven by the test's own code */
	for (int i = 0; i < 3 * W * H; i++)
		rgb[i] = (uint8_t)((i % W) * 12 + (i / (W * H)) * 40 + (i / W % H) * 3);
	jpg = tu_jpeg(rgb, 3, H, W, 75, &len);
	p = decode_ok(jpg, len, 3, H, W);
	int rc_, rh, rw;
	uint8_t *ref = tu_unjpeg(jpg, len, &rc_, &rh, &rw);
	CHECK(rc_ == 3 && rh == H && rw == W);
	for (int i = 0; p && i < 3 * W * H; i++)
		CHECK_MSG(p[i] == ref[i], "pixel %d: %d vs %d", i, p[i], ref[i]);
	free(ref);
	free(p);
	free(jpg);

	/* the same image as a progressive JPEG */
	jpg = tu_jpeg_progressive(rgb, 3, H, W, 75, &len);
	p = decode_ok(jpg, len, 3, H, W);
	ref = tu_unjpeg(jpg, len, &rc_, &rh, &rw);
	for (int i = 0; p && i < 3 * W * H; i++)
		CHECK_MSG(p[i] == ref[i], "progressive pixel %d: %d vs %d", i, p[i], ref[i]);
	free(ref);
	free(p);
	free(jpg);
}

/* Every strict prefix of a valid image is corrupt, never a crash or success. */
static void check_prefixes(const uint8_t *buf, size_t len, const char *what)
{
	for (size_t k = 0; k < len; k++) {
		uint8_t *pix = (uint8_t *)1;
		int c, h, w;
		struct isif_error err = {0};
		uint8_t *copy = malloc(k + 1); /* exact size so ASan sees overreads */
		memcpy(copy, buf, k);
		int rc = isif_image_decode(copy, k, NULL, &pix, &c, &h, &w, &err);
		CHECK_MSG(rc == ISIF_EFORMAT, "%s prefix %zu of %zu: rc %d (%s)", what, k, len, rc, err.msg);
		CHECK(pix == NULL);
		CHECK(err.msg[0] != '\0');
		free(copy);
	}
}

TEST(dataset_image_decode_truncated)
{
	uint8_t g[64];
	for (int i = 0; i < 64; i++)
		g[i] = (uint8_t)(i * 4);
	size_t len;
	void *jpg = tu_jpeg(g, 1, 8, 8, 90, &len);
	check_prefixes(jpg, len, "JPEG");
	free(jpg);
	void *png = tu_png(g, 8, 8, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &len);
	check_prefixes(png, len, "PNG");
	free(png);

	struct isif_error err = {0};
	uint8_t *pix;
	int c, h, w;
	const char text[] = "this is not an image at all";
	CHECK_EQ(isif_image_decode(text, sizeof text, NULL, &pix, &c, &h, &w, &err), ISIF_EFORMAT);
	CHECK(strstr(err.msg, "not a JPEG or PNG") != NULL);
}

TEST(dataset_image_decode_limits)
{
	uint8_t g[40 * 30];
	memset(g, 9, sizeof g);
	size_t jlen, plen;
	void *jpg = tu_jpeg(g, 1, 30, 40, 90, &jlen);
	void *png = tu_png(g, 40, 30, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &plen);
	struct isif_image_limits o;
	struct isif_error err = {0};
	uint8_t *pix;
	int c, h, w;
	const void *bufs[2] = { jpg, png };
	size_t lens[2] = { jlen, plen };
	for (int k = 0; k < 2; k++) {
		o = (struct isif_image_limits)ISIF_IMAGE_LIMITS_DEFAULT;
		o.max_side = 39; /* width 40 */
		CHECK_EQ(isif_image_decode(bufs[k], lens[k], &o, &pix, &c, &h, &w, &err), ISIF_ERANGE);
		o.max_side = 40;
		o.max_pixels = 40 * 30 - 1;
		CHECK_EQ(isif_image_decode(bufs[k], lens[k], &o, &pix, &c, &h, &w, &err), ISIF_ERANGE);
		o.max_pixels = 40 * 30;
		o.max_bytes = (int64_t)lens[k] - 1;
		CHECK_EQ(isif_image_decode(bufs[k], lens[k], &o, &pix, &c, &h, &w, &err), ISIF_ERANGE);
		o.max_bytes = (int64_t)lens[k];
		CHECK_EQ(isif_image_decode(bufs[k], lens[k], &o, &pix, &c, &h, &w, &err), ISIF_OK);
		free(pix);
	}
	free(jpg);
	free(png);
}

/* NULL limits are ISIF_IMAGE_LIMITS_DEFAULT, which are the dataset
 * options' defaults: a 16384-pixel-wide row decodes, 16385 does not. */
TEST(dataset_image_decode_default_limits)
{
	static uint8_t row[16385];
	const struct isif_image_limits def = ISIF_IMAGE_LIMITS_DEFAULT;
	struct isif_dataset_options o;
	isif_dataset_options_default(&o);
	CHECK(memcmp(&o.limits, &def, sizeof def) == 0);
	struct isif_error err = {0};
	uint8_t *pix;
	int c, h, w;
	for (int side = 16384; side <= 16385; side++) {
		size_t len;
		void *png = tu_png(row, side, 1, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &len);
		int want = side <= def.max_side ? ISIF_OK : ISIF_ERANGE;
		CHECK_EQ(isif_image_decode(png, len, NULL, &pix, &c, &h, &w, &err), want);
		free(pix);
		CHECK_EQ(isif_image_decode(png, len, &def, &pix, &c, &h, &w, &err), want);
		free(pix);
		free(png);
	}
	/* Bytes: the size check comes before the format is sniffed. */
	size_t big = (size_t)def.max_bytes + 1;
	uint8_t *junk = calloc(big, 1);
	CHECK(junk != NULL);
	if (junk) {
		CHECK_EQ(isif_image_decode(junk, big, NULL, &pix, &c, &h, &w, &err), ISIF_ERANGE);
		CHECK_EQ(isif_image_decode(junk, big - 1, NULL, &pix, &c, &h, &w, &err), ISIF_EFORMAT);
	}
	free(junk);
}

TEST(dataset_image_decode_fuzz)
{
	/* random byte damage: any outcome but a crash, a leak or a bogus rc */
	uint8_t g[3 * 16 * 16];
	for (int i = 0; i < (int)sizeof g; i++)
		g[i] = (uint8_t)(i * 31);
	size_t lens[2];
	void *bufs[2] = { tu_jpeg(g, 3, 16, 16, 80, &lens[0]),
			  tu_png(g, 48, 16, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &lens[1]) };
	struct isif_rng rng;
	isif_rng_seed(&rng, 42, 7);
	for (int k = 0; k < 2; k++) {
		uint8_t *copy = malloc(lens[k]);
		for (int it = 0; it < 300; it++) {
			memcpy(copy, bufs[k], lens[k]);
			int flips = 1 + (int)isif_rng_below(&rng, 4);
			for (int f = 0; f < flips; f++)
				copy[isif_rng_below(&rng, (uint32_t)lens[k])] = (uint8_t)isif_rng_u32(&rng);
			uint8_t *pix = NULL;
			int c, h, w;
			struct isif_error err = {0};
			int rc = isif_image_decode(copy, lens[k], NULL, &pix, &c, &h, &w, &err);
			CHECK_MSG(rc == ISIF_OK || rc == ISIF_EFORMAT || rc == ISIF_ERANGE,
				  "iteration %d: rc %d", it, rc);
			free(pix);
		}
		free(copy);
		free(bufs[k]);
	}
}

TEST(dataset_jpeg_decode_cmyk_adobe)
{
	/* Adobe CMYK JPEGs store inverted ink, so stored (C,M,Y,K) =
	 * (255,128,0,255) means no black and R,G,B = C·K/255 = (255,128,0). */
	enum { W = 8, H = 8 };
	struct jpeg_compress_struct cinfo;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL;
	unsigned long size = 0;
	uint8_t row[W * 4];
	for (int x = 0; x < W; x++) {
		row[4 * x] = 255;
		row[4 * x + 1] = 128;
		row[4 * x + 2] = 0;
		row[4 * x + 3] = 255;
	}
	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&cinfo);
	jpeg_mem_dest(&cinfo, &out, &size);
	cinfo.image_width = W;
	cinfo.image_height = H;
	cinfo.input_components = 4;
	cinfo.in_color_space = JCS_CMYK;
	jpeg_set_defaults(&cinfo); /* CMYK input: writes the Adobe marker */
	jpeg_set_quality(&cinfo, 100, TRUE);
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < H) {
		JSAMPROW r[1] = { row };
		jpeg_write_scanlines(&cinfo, r, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	uint8_t *p = decode_ok(out, size, 3, H, W);
	for (int i = 0; p && i < W * H; i++) {
		CHECK_MSG(abs(p[i] - 255) <= 2, "R %d", p[i]);
		CHECK_MSG(abs(p[W * H + i] - 128) <= 2, "G %d", p[W * H + i]);
		CHECK_MSG(p[2 * W * H + i] <= 2, "B %d", p[2 * W * H + i]);
	}
	free(p);
	free(out);
}

/* Expected values for the resize tests were worked out by hand (see each
 * comment) and agree with torchvision 0.14's
 * F.resize(uint8 tensor, size, BILINEAR, antialias=False). */
TEST(dataset_resize_up_2x2_to_4x4)
{
	/* scale ½: source coords max(½(d+½)−½, 0) = 0, .25, .75, 1.25(→ last)
	 * rows: (0,100) → 0 25 75 100; (200,40) → 200 160 80 40;
	 * middle rows .75/.25 blends: 50 58.75 76.25 85 and 150 126.25 78.75 55 */
	const uint8_t src[4] = { 0, 100, 200, 40 };
	const uint8_t want[16] = { 0, 25, 75, 100, 50, 59, 76, 85,
				   150, 126, 79, 55, 200, 160, 80, 40 };
	uint8_t dst[16];
	isif_image_resize_u8(dst, 4, 4, src, 1, 2, 2);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(dst[i], want[i]);
}

TEST(dataset_resize_down_4x4_to_2x2)
{
	/* scale 2: source coords .5 and 2.5 → each output is the mean of a
	 * 2x2 block: 35, 55, 115, (110+120+150+161)/4 = 135.25 → 135 */
	const uint8_t src[16] = { 10, 20, 30, 40, 50, 60, 70, 80,
				  90, 100, 110, 120, 130, 140, 150, 161 };
	const uint8_t want[4] = { 35, 55, 115, 135 };
	uint8_t dst[4];
	isif_image_resize_u8(dst, 2, 2, src, 1, 4, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(dst[i], want[i]);

	/* a tie rounds half to even like torch.round: (2+3)/2 = 2.5 → 2 */
	const uint8_t tie[2] = { 2, 3 };
	CHECK((isif_image_resize_u8(dst, 1, 1, tie, 1, 1, 2), dst[0] == 2));
}

TEST(dataset_resize_torchvision_values)
{
	/* src(y,x) = (37y + 11x + 5xy) mod 256; outputs printed by torchvision
	 * 0.14 F.resize(..., BILINEAR, antialias=False) */
	uint8_t src[35], dst[28];
	for (int y = 0; y < 5; y++)
		for (int x = 0; x < 7; x++)
			src[y * 7 + x] = (uint8_t)((y * 37 + x * 11 + y * x * 5) % 256);
	const uint8_t want1[12] = { 17, 39, 61, 84, 82, 119, 155, 192, 147, 198, 100, 77 };
	isif_image_resize_u8(dst, 3, 4, src, 1, 5, 7);
	for (int i = 0; i < 12; i++)
		CHECK_EQ(dst[i], want1[i]);

	for (int y = 0; y < 3; y++)
		for (int x = 0; x < 5; x++)
			src[y * 5 + x] = (uint8_t)((y * 37 + x * 11 + y * x * 5) % 256);
	const uint8_t want2[28] = { 1, 15, 29, 43, 7, 21, 36, 51, 23, 40, 58, 75, 39, 59,
				    79, 99, 55, 78, 100, 123, 71, 97, 122, 147, 77, 103, 129, 155 };
	isif_image_resize_u8(dst, 7, 4, src, 1, 3, 5);
	for (int i = 0; i < 28; i++)
		CHECK_EQ(dst[i], want2[i]);
}

/* Naive reference in double: the same formula written out per pixel. */
static double ref_bilinear(const uint8_t *src, int h, int w, int oh, int ow, int oy, int ox)
{
	double sy = (double)h / oh * (oy + 0.5) - 0.5, sx = (double)w / ow * (ox + 0.5) - 0.5;
	if (sy < 0)
		sy = 0;
	if (sx < 0)
		sx = 0;
	int y0 = (int)sy, x0 = (int)sx;
	int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
	double ly = sy - y0, lx = sx - x0;
	return (1 - ly) * ((1 - lx) * src[y0 * w + x0] + lx * src[y0 * w + x1]) +
	       ly * ((1 - lx) * src[y1 * w + x0] + lx * src[y1 * w + x1]);
}

TEST(dataset_resize_matches_naive_reference)
{
	struct isif_rng rng;
	isif_rng_seed(&rng, 5, 1);
	const int sizes[][4] = { { 28, 28, 32, 32 }, { 32, 32, 28, 28 }, { 17, 9, 5, 13 },
				 { 1, 1, 3, 3 }, { 96, 96, 32, 32 }, { 3, 40, 7, 7 } };
	for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
		int h = sizes[t][0], w = sizes[t][1], oh = sizes[t][2], ow = sizes[t][3];
		uint8_t *src = malloc((size_t)2 * h * w), *dst = malloc((size_t)2 * oh * ow);
		for (int i = 0; i < 2 * h * w; i++)
			src[i] = (uint8_t)isif_rng_u32(&rng);
		isif_image_resize_u8(dst, oh, ow, src, 2, h, w);
		for (int ch = 0; ch < 2; ch++)
			for (int y = 0; y < oh; y++)
				for (int x = 0; x < ow; x++) {
					double r = ref_bilinear(src + ch * h * w, h, w, oh, ow, y, x);
					/* float vs double may differ only at a .5 tie */
					CHECK_NEAR(dst[(ch * oh + y) * ow + x], r, 0.5 + 1e-3);
				}
		free(src);
		free(dst);
	}
}

TEST(dataset_convert_channels)
{
	/* PIL's L = (19595R + 38470G + 7471B + 2^15) >> 16, by hand:
	 * red 255 → 76, green 255 → 150, blue 255 → 29, white → 255,
	 * (10,20,30) → 1222248 >> 16 = 18 */
	const uint8_t rgb[15] = { 255, 0, 0, 255, 10, /* R */ 0, 255, 0, 255, 20,
				  /* G */ 0, 0, 255, 255, 30 /* B */ };
	const uint8_t want[5] = { 76, 150, 29, 255, 18 };
	uint8_t g[5], back[15];
	isif_image_convert_u8(g, 1, rgb, 3, 1, 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(g[i], want[i]);
	isif_image_convert_u8(back, 3, g, 1, 1, 5);
	for (int ch = 0; ch < 3; ch++)
		for (int i = 0; i < 5; i++)
			CHECK_EQ(back[ch * 5 + i], want[i]);
}
