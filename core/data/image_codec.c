/*
 * core/data/image_codec.c — single images in memory: JPEG decoding with
 * libjpeg-turbo, PNG decoding and encoding with libpng, bilinear resizing
 * and channel conversion of uint8 CHW images. What the folder reader and
 * the daemon's /neighbors upload use. Not a general image library: 8-bit
 * gray or RGB out, alpha dropped, nothing else.
 *
 * Both decoders report errors by longjmp from their error callbacks back to
 * a setjmp in this file (libjpeg's default handler would call exit(), and
 * both would print). All state touched after setjmp lives in a context
 * struct reached through an unmodified pointer, so it is valid after the jump.
 *
 * The work a file can make the decoders do is bounded by its declared size,
 * not only its byte count: a progressive JPEG may repeat a scan over the
 * whole image hundreds of times at a few bytes each, and a PNG may carry
 * gigabytes of deflate output past its last row (or inside ancillary
 * chunks). Both are refused before that work is done (jpeg_on_progress,
 * png_check_chunks).
 */
#include "isif/data/image.h"

#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* A progressive JPEG's scans each cost work over every block they cover,
 * whatever their size in bytes. Real encoders write about 10 scans that
 * visit each coefficient 2 to 4 times; more work than JPEG_MAX_PASSES
 * whole passes over every coefficient of the image is refused (see
 * jpeg_scan_cost). With the cost per block and scan, that is also at most
 * 37 scans of any kind. */
#define JPEG_MAX_PASSES 8
#define JPEG_BLOCK_OVERHEAD 16 /* per block and scan, in coefficient units */

/* PNG: the compressed image data may be at most twice the raw rows plus
 * PNG_IDAT_SLACK (real encoders stay near or below the raw size, stored
 * blocks add 5 bytes in 64 KiB); once the rows are decoded, at most
 * PNG_TAIL_SLACK bytes of it may be left unread (the end of the deflate
 * stream and its checksum, a few bytes). */
#define PNG_IDAT_SLACK (64 << 10)
#define PNG_TAIL_SLACK 4096

static enum isif_rc check_limits(int64_t w, int64_t h, const struct isif_image_limits *lim,
			const char *what, struct isif_error *err)
{
	if (w < 1 || h < 1)
		return isif_fail(err, ISIF_EFORMAT, "%s: empty image %lldx%lld", what,
				 (long long)w, (long long)h);
	if (w > lim->max_side || h > lim->max_side)
		return isif_fail(err, ISIF_ERANGE, "%s: %lldx%lld image over the side limit %d",
				 what, (long long)w, (long long)h, lim->max_side);
	if (w * h > lim->max_pixels)
		return isif_fail(err, ISIF_ERANGE, "%s: %lldx%lld image over the limit of %lld pixels",
				 what, (long long)w, (long long)h, (long long)lim->max_pixels);
	return ISIF_OK;
}

/* ---- JPEG ------------------------------------------------------------ */

struct jpeg_ctx {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr jerr;
	struct jpeg_progress_mgr progress;
	jmp_buf jump;
	char msg[JMSG_LENGTH_MAX];
	uint8_t *out, *row;
	int scans_seen;          /* the last scan charged to the budget */
	bool refused;            /* jumped for the work bound, not a library error */
	int64_t work, budget;    /* coefficient visits: charged, allowed */
};

static void jpeg_on_error(j_common_ptr cinfo)
{
	struct jpeg_ctx *x = (struct jpeg_ctx *)cinfo->client_data;
	cinfo->err->format_message(cinfo, x->msg);
	longjmp(x->jump, 1);
}

/* Warnings (level −1) that mean the data is damaged are errors here: the
 * library would otherwise pad a truncated image with gray and go on. Other
 * warnings (odd markers, unknown JFIF revisions) and trace messages are
 * ignored silently. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
	if (level >= 0)
		return;
	switch (cinfo->err->msg_code) {
	case JWRN_JPEG_EOF:
	case JWRN_HIT_MARKER:
	case JWRN_HUFF_BAD_CODE:
	case JWRN_ARITH_BAD_CODE:
	case JWRN_MUST_RESYNC:
		jpeg_on_error(cinfo);
		break;
	default:
		break;
	}
}

static void jpeg_on_output(j_common_ptr cinfo)
{
	(void)cinfo; /* never print */
}

/* The work of the scan whose header was just read, in coefficient visits:
 * every block of each component in the scan, times the coefficients of its
 * spectral band (a refinement scan looks at each of them even in an
 * end-of-band run) plus a fixed cost per block. */
static int64_t jpeg_scan_cost(j_decompress_ptr d)
{
	int64_t blocks = 0;
	for (int i = 0; i < d->comps_in_scan; i++)
		blocks += (int64_t)d->cur_comp_info[i]->width_in_blocks *
			  d->cur_comp_info[i]->height_in_blocks;
	return blocks * (d->Se - d->Ss + 1 + JPEG_BLOCK_OVERHEAD);
}

/* JPEG_MAX_PASSES passes over every coefficient of every component. */
static int64_t jpeg_work_budget(j_decompress_ptr d)
{
	int64_t blocks = 0;
	for (int i = 0; i < d->num_components; i++)
		blocks += (int64_t)d->comp_info[i].width_in_blocks * d->comp_info[i].height_in_blocks;
	return blocks * (DCTSIZE2 + JPEG_BLOCK_OVERHEAD) * JPEG_MAX_PASSES;
}

/* libjpeg calls this before consuming each piece of input; a new scan
 * number means a new scan header has just been read: charge its work
 * before any of it is done. */
static void jpeg_on_progress(j_common_ptr cinfo)
{
	j_decompress_ptr d = (j_decompress_ptr)cinfo;
	struct jpeg_ctx *x = (struct jpeg_ctx *)cinfo->client_data;
	if (d->input_scan_number < 1 || d->input_scan_number == x->scans_seen)
		return;
	x->scans_seen = d->input_scan_number;
	if (!x->budget)
		x->budget = jpeg_work_budget(d);
	x->work += jpeg_scan_cost(d);
	if (x->work > x->budget) {
		snprintf(x->msg, sizeof x->msg, "its %d scans would do more than %d passes over "
			 "the image", d->input_scan_number, JPEG_MAX_PASSES);
		x->refused = true;
		longjmp(x->jump, 1);
	}
}

/* Scatters one decoded scanline (interleaved) into the CHW planes of out.
 * CMYK from Adobe files is stored inverted, so R = C·K/255 there and
 * (255−C)(255−K)/255 otherwise (the usual naive CMYK→RGB). */
static void jpeg_put_row(uint8_t *out, const uint8_t *row, size_t plane, int y,
			 int c, int w, int comps, bool adobe)
{
	uint8_t *dst = out + (size_t)y * (size_t)w;
	for (int x = 0; x < w; x++) {
		const uint8_t *p = row + (size_t)x * (size_t)comps;
		for (int ch = 0; ch < c; ch++) {
			unsigned v = p[ch];
			if (comps == 4) {
				unsigned cc = adobe ? p[ch] : 255u - p[ch];
				unsigned k = adobe ? p[3] : 255u - p[3];
				v = (cc * k + 127) / 255;
			}
			dst[(size_t)ch * plane + (size_t)x] = (uint8_t)v;
		}
	}
}

/* Picks the output colour space: gray stays gray, CMYK/YCCK come out as
 * CMYK (converted by jpeg_put_row), everything else as RGB. */
static int jpeg_setup_color(j_decompress_ptr d)
{
	switch (d->jpeg_color_space) {
	case JCS_GRAYSCALE:
		d->out_color_space = JCS_GRAYSCALE;
		return 1;
	case JCS_CMYK:
	case JCS_YCCK:
		d->out_color_space = JCS_CMYK;
		return 3;
	default:
		d->out_color_space = JCS_RGB;
		return 3;
	}
}

/* Runs the decode; every library call may longjmp back to decode_jpeg. */
static enum isif_rc jpeg_run(struct jpeg_ctx *x, const uint8_t *buf, size_t len,
		    const struct isif_image_limits *lim, int *c, int *h, int *w,
		    struct isif_error *err)
{
	j_decompress_ptr d = &x->cinfo;
	jpeg_mem_src(d, buf, (unsigned long)len);
	jpeg_read_header(d, TRUE);
	int rc = check_limits(d->image_width, d->image_height, lim, "JPEG", err);
	if (rc)
		return rc;
	int nc = jpeg_setup_color(d);
	jpeg_start_decompress(d);
	int comps = d->output_components, ow = (int)d->output_width, oh = (int)d->output_height;
	if (comps != (nc == 1 ? 1 : d->out_color_space == JCS_CMYK ? 4 : 3))
		return isif_fail(err, ISIF_EFORMAT, "JPEG: unexpected %d components", comps);
	size_t plane = (size_t)ow * (size_t)oh;
	x->out = malloc(plane * (size_t)nc);
	x->row = malloc((size_t)ow * (size_t)comps);
	if (!x->out || !x->row)
		return isif_fail(err, ISIF_ENOMEM, "JPEG: cannot allocate %dx%d image", ow, oh);
	while (d->output_scanline < d->output_height) {
		int y = (int)d->output_scanline;
		JSAMPROW rows[1] = { x->row };
		if (jpeg_read_scanlines(d, rows, 1) != 1)
			return isif_fail(err, ISIF_EFORMAT, "JPEG: no data at row %d", y);
		jpeg_put_row(x->out, x->row, plane, y, nc, ow, comps, d->saw_Adobe_marker);
	}
	jpeg_finish_decompress(d);
	*c = nc;
	*h = oh;
	*w = ow;
	return ISIF_OK;
}

static enum isif_rc decode_jpeg(const uint8_t *buf, size_t len,
		       const struct isif_image_limits *lim, uint8_t **pixels,
		       int *c, int *h, int *w, struct isif_error *err)
{
	struct jpeg_ctx *x = calloc(1, sizeof *x);
	if (!x)
		return isif_fail(err, ISIF_ENOMEM, "JPEG: out of memory");
	x->cinfo.err = jpeg_std_error(&x->jerr);
	x->jerr.error_exit = jpeg_on_error;
	x->jerr.emit_message = jpeg_on_message;
	x->jerr.output_message = jpeg_on_output;
	x->cinfo.client_data = x;
	int rc;
	if (setjmp(x->jump)) {
		rc = isif_fail(err, ISIF_EFORMAT, "%s: %s", x->refused ? "JPEG refused" : "corrupt JPEG",
			       x->msg);
	} else {
		jpeg_create_decompress(&x->cinfo);
		x->cinfo.client_data = x; /* create zeroes the struct */
		x->progress.progress_monitor = jpeg_on_progress;
		x->cinfo.progress = &x->progress;
		rc = jpeg_run(x, buf, len, lim, c, h, w, err);
	}
	jpeg_destroy_decompress(&x->cinfo);
	if (rc == ISIF_OK) {
		*pixels = x->out;
		x->out = NULL;
	}
	free(x->out);
	free(x->row);
	free(x);
	return rc;
}

/* ---- PNG ------------------------------------------------------------- */

struct png_ctx {
	png_structp png;
	png_infop info;
	jmp_buf jump;
	char msg[160];
	const uint8_t *buf;
	size_t len, pos;
	size_t idat_end;   /* just past the last IDAT payload (png_check_chunks) */
	uint8_t *out, *rows;
	png_bytep *rowp;
};

static void png_on_error(png_structp png, png_const_charp msg)
{
	struct png_ctx *x = png_get_error_ptr(png);
	snprintf(x->msg, sizeof x->msg, "%s", msg);
	longjmp(x->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png; /* never print */
	(void)msg;
}

static void png_read_mem(png_structp png, png_bytep data, size_t n)
{
	struct png_ctx *x = png_get_io_ptr(png);
	if (n > x->len - x->pos)
		png_error(png, "truncated data");
	memcpy(data, x->buf + x->pos, n);
	x->pos += n;
}

/* Asks libpng for 8-bit gray or RGB: palette expanded (tRNS ignored, as
 * PIL's convert("RGB") does), low bit depths widened, 16-bit cut to its
 * high byte, alpha stripped. Returns the channel count; *passes: 7 for an
 * interlaced file, else 1. */
static int png_setup(png_structp png, png_infop info, int *passes)
{
	int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
	if (type == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (depth == 16)
		png_set_strip_16(png);
	if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
		png_set_strip_alpha(png); /* palette expansion turns tRNS into alpha */
	*passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	return png_get_channels(png, info);
}

/* The big-endian 32-bit value at p. */
static uint32_t png_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Walks the chunk framing of the whole file before libpng inflates
 * anything: every chunk inside the buffer, ending with IEND. Sums the
 * IDAT payload, which must be at most twice the raw rows plus
 * PNG_IDAT_SLACK: deflate output is then bounded by the image's size
 * (inflating a byte costs about as much as producing one, and a few
 * bytes can expand to a kilobyte), whatever the file's byte count.
 * Records where the IDAT payloads lie, for png_check_tail.
 */
static enum isif_rc png_check_chunks(struct png_ctx *x, int64_t raw_bytes, struct isif_error *err)
{
	size_t pos = 8, idat = 0;
	while (pos + 12 <= x->len) {
		size_t n = png_u32(x->buf + pos);
		const uint8_t *type = x->buf + pos + 4;
		if (n > x->len - pos - 12)
			break;
		if (memcmp(type, "IDAT", 4) == 0) {
			idat += n;
			x->idat_end = pos + 8 + n;
		}
		if (memcmp(type, "IEND", 4) == 0)
			return ISIF_OK;
		if ((int64_t)idat > 2 * raw_bytes + PNG_IDAT_SLACK)
			return isif_fail(err, ISIF_EFORMAT, "PNG refused: more than %lld bytes of "
					 "compressed data for %lld bytes of image",
					 (long long)(2 * raw_bytes + PNG_IDAT_SLACK), (long long)raw_bytes);
		pos += 12 + n;
	}
	return isif_fail(err, ISIF_EFORMAT, "corrupt PNG: truncated before IEND");
}

/*
 * Before the last row: the compressed data libpng has not read yet (it
 * reads the file forward, at most 8 KiB ahead of the inflater; counted to
 * the end of the last IDAT, the headers of IDATs in between included). It
 * holds the last row, at most row_bytes and a block header, and the end of
 * the stream; more means data past the image, which libpng would inflate
 * to its end when the last row completes: refused instead.
 */
static enum isif_rc png_check_tail(const struct png_ctx *x, int64_t row_bytes,
				   struct isif_error *err)
{
	int64_t unread = x->idat_end > x->pos ? (int64_t)(x->idat_end - x->pos) : 0;
	int64_t allowed = row_bytes + row_bytes / 4096 + PNG_TAIL_SLACK;
	if (unread > allowed)
		return isif_fail(err, ISIF_EFORMAT, "PNG refused: %lld bytes of compressed data "
				 "left for the last row (at most %lld)", (long long)unread,
				 (long long)allowed);
	return ISIF_OK;
}

/* png_read_image, but for the check of what is left before the last row
 * (every pass reads every row; rows not in a pass only advance it). */
static enum isif_rc png_rows_checked(struct png_ctx *x, int64_t h, int passes, int64_t row_bytes,
				  struct isif_error *err)
{
	for (int p = 0; p < passes; p++)
		for (int64_t y = 0; y < h; y++) {
			if (p == passes - 1 && y == h - 1) {
				enum isif_rc rc = png_check_tail(x, row_bytes, err);
				if (rc)
					return rc;
			}
			png_read_row(x->png, x->rowp[y], NULL);
		}
	return ISIF_OK;
}

/* One row of the file as IHDR declares it: a filter byte and the packed
 * samples. Interlacing adds at most 7 filter bytes per row, within
 * png_check_chunks's slack. */
static int64_t png_file_row_bytes(png_structp png, png_infop info)
{
	int64_t bits = (int64_t)png_get_image_width(png, info) * png_get_channels(png, info) *
		       png_get_bit_depth(png, info);
	return 1 + (bits + 7) / 8;
}

/* Runs the decode; every library call may longjmp back to decode_png. */
static enum isif_rc png_run(struct png_ctx *x, const struct isif_image_limits *lim,
		   int *c, int *h, int *w, struct isif_error *err)
{
	png_set_read_fn(x->png, x, png_read_mem);
	png_set_user_limits(x->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX); /* ours apply */
	/* Ancillary chunks (text, ICC profiles, ...: some of them compressed,
	 * and inflated by libpng if kept) are skipped unread but for their
	 * CRC; only tRNS matters to the pixels we return. */
	png_set_keep_unknown_chunks(x->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
	png_read_info(x->png, x->info);
	int64_t pw = png_get_image_width(x->png, x->info);
	int64_t ph = png_get_image_height(x->png, x->info);
	int64_t file_row = png_file_row_bytes(x->png, x->info);
	int rc = check_limits(pw, ph, lim, "PNG", err);
	if (!rc)
		rc = png_check_chunks(x, file_row * ph, err);
	if (rc)
		return rc;
	int passes;
	int nc = png_setup(x->png, x->info, &passes);
	size_t rowbytes = png_get_rowbytes(x->png, x->info);
	if ((nc != 1 && nc != 3) || rowbytes != (size_t)pw * (size_t)nc)
		return isif_fail(err, ISIF_EFORMAT, "PNG: unsupported layout (%d channels)", nc);
	size_t plane = (size_t)pw * (size_t)ph;
	x->rows = malloc(plane * (size_t)nc);
	x->rowp = malloc((size_t)ph * sizeof *x->rowp);
	x->out = malloc(plane * (size_t)nc);
	if (!x->rows || !x->rowp || !x->out)
		return isif_fail(err, ISIF_ENOMEM, "PNG: cannot allocate %lldx%lld image",
				 (long long)pw, (long long)ph);
	for (int64_t y = 0; y < ph; y++)
		x->rowp[y] = x->rows + (size_t)y * rowbytes;
	rc = png_rows_checked(x, ph, passes, file_row, err);
	if (rc)
		return rc;
	png_read_end(x->png, NULL); /* checks the rest up to IEND: no silent truncation */
	for (size_t i = 0; i < plane; i++)   /* HWC → CHW */
		for (int ch = 0; ch < nc; ch++)
			x->out[(size_t)ch * plane + i] = x->rows[i * (size_t)nc + (size_t)ch];
	*c = nc;
	*h = (int)ph;
	*w = (int)pw;
	return ISIF_OK;
}

static enum isif_rc decode_png(const uint8_t *buf, size_t len,
		      const struct isif_image_limits *lim, uint8_t **pixels,
		      int *c, int *h, int *w, struct isif_error *err)
{
	struct png_ctx *x = calloc(1, sizeof *x);
	if (!x)
		return isif_fail(err, ISIF_ENOMEM, "PNG: out of memory");
	x->buf = buf;
	x->len = len;
	x->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, x, png_on_error, png_on_warning);
	if (x->png)
		x->info = png_create_info_struct(x->png);
	int rc;
	if (!x->png || !x->info) {
		rc = isif_fail(err, ISIF_ENOMEM, "PNG: out of memory");
	} else if (setjmp(x->jump)) {
		rc = isif_fail(err, ISIF_EFORMAT, "corrupt PNG: %s", x->msg);
	} else {
		rc = png_run(x, lim, c, h, w, err);
	}
	png_destroy_read_struct(&x->png, &x->info, NULL);
	if (rc == ISIF_OK) {
		*pixels = x->out;
		x->out = NULL;
	}
	free(x->out);
	free(x->rows);
	free(x->rowp);
	free(x);
	return rc;
}

/* ---- public entry points --------------------------------------------- */

enum isif_rc isif_image_decode(const void *buf, size_t len,
		      const struct isif_image_limits *limits, uint8_t **pixels,
		      int *c, int *h, int *w, struct isif_error *err)
{
	static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	static const struct isif_image_limits defaults = ISIF_IMAGE_LIMITS_DEFAULT;
	const struct isif_image_limits *lim = limits ? limits : &defaults;
	const uint8_t *p = buf;
	*pixels = NULL;
	*c = *h = *w = 0;
	if (!buf)
		return isif_fail(err, ISIF_EINVAL, "image: NULL buffer");
	if ((uint64_t)len > (uint64_t)lim->max_bytes)
		return isif_fail(err, ISIF_ERANGE, "image of %zu bytes over the limit of %lld",
				 len, (long long)lim->max_bytes);
	if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
		return decode_jpeg(p, len, lim, pixels, c, h, w, err);
	if (len >= 8 && memcmp(p, png_sig, 8) == 0)
		return decode_png(p, len, lim, pixels, c, h, w, err);
	return isif_fail(err, ISIF_EFORMAT, "not a JPEG or PNG image");
}

/*
 * Bilinear weights along one axis, as PyTorch's upsample_bilinear2d with
 * align_corners=False and no scale factor (what torchvision's resize calls):
 *   scale = in/out,  s = max(scale·(d + ½) − ½, 0),  i0 = ⌊s⌋,
 *   i1 = i0 + 1 (or i0 at the last pixel),  λ = s − i0,
 * all in float32, like PyTorch's CPU kernel for float input.
 */
static void axis_weights(int in, int out, int *i0, int *i1, float *lam)
{
	float scale = (float)in / (float)out;
	for (int d = 0; d < out; d++) {
		float s = scale * ((float)d + 0.5f) - 0.5f;
		if (s < 0.0f)
			s = 0.0f;
		int i = (int)s;
		if (i > in - 1)
			i = in - 1;
		float l = s - (float)i;
		i0[d] = i;
		i1[d] = i < in - 1 ? i + 1 : i;
		lam[d] = l < 0.0f ? 0.0f : l > 1.0f ? 1.0f : l;
	}
}

/* One resized plane: out = (a·(1−λx) + b·λx)(1−λy) + (c·(1−λx) + d·λx)·λy
 * (PyTorch's order of operations), then round half to even like
 * torch.round and clamp to 0..255 like the cast back to uint8. */
static void resize_plane(uint8_t *dst, int oh, int ow, const uint8_t *src, int w,
			 const int *y0, const int *y1, const float *ly,
			 const int *x0, const int *x1, const float *lx)
{
	for (int oy = 0; oy < oh; oy++) {
		const uint8_t *r0 = src + (size_t)y0[oy] * (size_t)w;
		const uint8_t *r1 = src + (size_t)y1[oy] * (size_t)w;
		float wy1 = ly[oy], wy0 = 1.0f - wy1;
		for (int ox = 0; ox < ow; ox++) {
			float wx1 = lx[ox], wx0 = 1.0f - wx1;
			float top = (float)r0[x0[ox]] * wx0 + (float)r0[x1[ox]] * wx1;
			float bot = (float)r1[x0[ox]] * wx0 + (float)r1[x1[ox]] * wx1;
			float v = nearbyintf(top * wy0 + bot * wy1);
			dst[(size_t)oy * (size_t)ow + (size_t)ox] =
				(uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
		}
	}
}

void isif_image_resize_u8(uint8_t *dst, int oh, int ow, const uint8_t *src,
			  int c, int h, int w)
{
	if (!dst || !src || c < 1 || h < 1 || w < 1 || oh < 1 || ow < 1)
		return;
	if (oh == h && ow == w) { /* scale 1, λ = 0: the identity */
		memcpy(dst, src, (size_t)c * (size_t)h * (size_t)w);
		return;
	}
	int *y0 = malloc(sizeof(int) * (size_t)oh * 2), *x0 = malloc(sizeof(int) * (size_t)ow * 2);
	float *ly = malloc(sizeof(float) * (size_t)oh), *lx = malloc(sizeof(float) * (size_t)ow);
	if (y0 && x0 && ly && lx) {
		axis_weights(h, oh, y0, y0 + oh, ly);
		axis_weights(w, ow, x0, x0 + ow, lx);
		for (int ch = 0; ch < c; ch++)
			resize_plane(dst + (size_t)ch * oh * ow, oh, ow,
				     src + (size_t)ch * h * w, w, y0, y0 + oh, ly, x0, x0 + ow, lx);
	}
	free(y0);
	free(x0);
	free(ly);
	free(lx);
}

/*
 * 3→1 is ITU-R 601 luma in PIL's fixed point (what torchvision's
 * Grayscale on a PIL image computes): L = (19595 R + 38470 G + 7471 B
 * + 2^15) >> 16, the weights 0.299, 0.587, 0.114 scaled by 2^16.
 * 1→3 replicates; equal counts copy.
 */
void isif_image_convert_u8(uint8_t *dst, int dc, const uint8_t *src, int sc,
			   int h, int w)
{
	size_t plane = (size_t)(h > 0 ? h : 0) * (size_t)(w > 0 ? w : 0);
	if (dc == sc) {
		memmove(dst, src, plane * (size_t)(dc > 0 ? dc : 0));
	} else if (sc == 1 && dc == 3) {
		for (int ch = 0; ch < 3; ch++)
			memcpy(dst + (size_t)ch * plane, src, plane);
	} else if (sc == 3 && dc == 1) {
		const uint8_t *r = src, *g = src + plane, *b = src + 2 * plane;
		for (size_t i = 0; i < plane; i++)
			dst[i] = (uint8_t)((19595u * r[i] + 38470u * g[i] + 7471u * b[i] + 32768u) >> 16);
	}
}

enum isif_rc isif_image_encode_png(const uint8_t *pixels, int c, int h, int w,
			  void **png, size_t *len, struct isif_error *err)
{
	*png = NULL;
	*len = 0;
	if (!pixels || (c != 1 && c != 3) || h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20) ||
	    (int64_t)h * w > (int64_t)1 << 30)
		return isif_fail(err, ISIF_EINVAL, "encode PNG: bad image %dx%dx%d", c, h, w);
	size_t plane = (size_t)h * (size_t)w;
	uint8_t *hwc = malloc(plane * (size_t)c);
	if (!hwc)
		return isif_fail(err, ISIF_ENOMEM, "encode PNG: out of memory");
	for (size_t i = 0; i < plane; i++)
		for (int ch = 0; ch < c; ch++)
			hwc[i * (size_t)c + (size_t)ch] = pixels[(size_t)ch * plane + i];
	png_image img;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	img.width = (png_uint_32)w;
	img.height = (png_uint_32)h;
	img.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	png_alloc_size_t size = 0;
	void *out = NULL;
	int rc = ISIF_OK;
	if (!png_image_write_to_memory(&img, NULL, &size, 0, hwc, 0, NULL) ||
	    !(out = malloc(size)) ||
	    !png_image_write_to_memory(&img, out, &size, 0, hwc, 0, NULL)) {
		rc = isif_fail(err, out || img.message[0] ? ISIF_EINVAL : ISIF_ENOMEM,
			       "encode PNG: %s", img.message[0] ? img.message : "out of memory");
		free(out);
		out = NULL;
	}
	png_image_free(&img);
	free(hwc);
	*png = out;
	*len = rc ? 0 : (size_t)size;
	return rc;
}
