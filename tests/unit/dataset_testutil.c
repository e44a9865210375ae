/*
 * tests/unit/dataset_testutil.c — see dataset_testutil.h. Test code: it may
 * use libjpeg's default error handler (a failure here ends the test run).
 */
#include "dataset_testutil.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "check.h"

int tu_mkdirs(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

char *tu_path(char *out, const char *rel)
{
	snprintf(out, 4096, "%s/%s", test_tmpdir(), rel);
	char *slash = strrchr(out, '/');
	*slash = '\0';
	tu_mkdirs(out);
	*slash = '/';
	return out;
}

int tu_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t k = len ? fwrite(data, 1, len, f) : 0;
	return (fclose(f) == 0 && k == len) ? 0 : -1;
}

int tu_write_gz(const char *path, const void *data, size_t len)
{
	gzFile f = gzopen(path, "wb");
	if (!f)
		return -1;
	int k = len ? gzwrite(f, data, (unsigned)len) : 0;
	return (gzclose(f) == Z_OK && (size_t)k == len) ? 0 : -1;
}

void *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void *jpeg_encode(const uint8_t *chw, int c, int h, int w, int quality,
			 int progressive, size_t *len)
{
	struct jpeg_compress_struct cinfo;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL;
	unsigned long size = 0;
	uint8_t *row = malloc((size_t)w * (size_t)c);
	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&cinfo);
	jpeg_mem_dest(&cinfo, &out, &size);
	cinfo.image_width = (JDIMENSION)w;
	cinfo.image_height = (JDIMENSION)h;
	cinfo.input_components = c;
	cinfo.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, quality, TRUE);
	if (progressive)
		jpeg_simple_progression(&cinfo);
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < cinfo.image_height) {
		int y = (int)cinfo.next_scanline;
		for (int x = 0; x < w; x++)
			for (int ch = 0; ch < c; ch++)
				row[x * c + ch] = chw[((size_t)ch * h + y) * w + x];
		JSAMPROW r[1] = { row };
		jpeg_write_scanlines(&cinfo, r, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	free(row);
	*len = size;
	return out;
}

uint8_t *tu_unjpeg(const void *buf, size_t len, int *c, int *h, int *w)
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr jerr;
	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, buf, (unsigned long)len);
	jpeg_read_header(&cinfo, TRUE);
	cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_start_decompress(&cinfo);
	*c = cinfo.output_components;
	*h = (int)cinfo.output_height;
	*w = (int)cinfo.output_width;
	uint8_t *out = malloc((size_t)*c * *h * *w), *row = malloc((size_t)*c * *w);
	while (cinfo.output_scanline < cinfo.output_height) {
		int y = (int)cinfo.output_scanline;
		JSAMPROW r[1] = { row };
		jpeg_read_scanlines(&cinfo, r, 1);
		for (int x = 0; x < *w; x++)
			for (int ch = 0; ch < *c; ch++)
				out[((size_t)ch * *h + y) * *w + x] = row[x * *c + ch];
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	free(row);
	return out;
}

void *tu_jpeg(const uint8_t *chw, int c, int h, int w, int quality, size_t *len)
{
	return jpeg_encode(chw, c, h, w, quality, 0, len);
}

void *tu_jpeg_progressive(const uint8_t *chw, int c, int h, int w, int quality, size_t *len)
{
	return jpeg_encode(chw, c, h, w, quality, 1, len);
}

struct membuf {
	uint8_t *data;
	size_t len, cap;
};

static void mem_write(png_structp png, png_bytep data, size_t n)
{
	struct membuf *m = png_get_io_ptr(png);
	if (m->len + n > m->cap) {
		size_t cap = (m->len + n) * 2;
		uint8_t *d = realloc(m->data, cap);
		if (!d)
			png_error(png, "out of memory");
		m->data = d;
		m->cap = cap;
	}
	memcpy(m->data + m->len, data, n);
	m->len += n;
}

static void mem_flush(png_structp png)
{
	(void)png;
}

void *tu_png(const uint8_t *rows, int w, int h, int bit_depth, int color_type,
	     int interlace, const uint8_t *palette, int npal, const uint8_t *trns,
	     int ntrns, size_t *len)
{
	struct membuf m = {0};
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	png_bytep *rp = malloc((size_t)h * sizeof *rp);
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(rp);
		free(m.data);
		return NULL;
	}
	png_set_write_fn(png, &m, mem_write, mem_flush);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
		     interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (palette) {
		png_color pal[256];
		for (int i = 0; i < npal; i++) {
			pal[i].red = palette[3 * i];
			pal[i].green = palette[3 * i + 1];
			pal[i].blue = palette[3 * i + 2];
		}
		png_set_PLTE(png, info, pal, npal);
	}
	if (trns)
		png_set_tRNS(png, info, trns, ntrns, NULL);
	png_write_info(png, info);
	size_t rowbytes = png_get_rowbytes(png, info);
	for (int y = 0; y < h; y++)
		rp[y] = (png_bytep)rows + (size_t)y * rowbytes;
	png_write_image(png, rp);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(rp);
	*len = m.len;
	return m.data;
}
