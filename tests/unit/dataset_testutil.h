/*
 * tests/unit/dataset_testutil.h — writers the dataset tests use to build
 * their input files in test_tmpdir(): raw and gzip files, directories,
 * and JPEG / PNG images written with libjpeg and libpng directly (not with
 * the code under test), so decoding is checked against an independent encoder.
 */
#ifndef ISIF_TEST_DATASET_TESTUTIL_H
#define ISIF_TEST_DATASET_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* out = test_tmpdir()/rel (out holds 4096 bytes); also creates the parent
 * directories of that path. Returns out. */
char *tu_path(char *out, const char *rel);

/* mkdir -p; 0 on success. */
int tu_mkdirs(const char *path);

/* Writes len bytes to path (plain or gzip); 0 on success. */
int tu_write(const char *path, const void *data, size_t len);
int tu_write_gz(const char *path, const void *data, size_t len);

/* Reads a whole file into a malloc'd buffer; NULL on failure. */
void *tu_read(const char *path, size_t *len);

/* Encodes CHW uint8 (c = 1 or 3) as a baseline JPEG of the given quality
 * into a malloc'd buffer; NULL on failure. */
void *tu_jpeg(const uint8_t *chw, int c, int h, int w, int quality, size_t *len);
/* The same as a progressive JPEG (several scans). */
void *tu_jpeg_progressive(const uint8_t *chw, int c, int h, int w, int quality, size_t *len);

/* Decodes a JPEG with plain libjpeg (RGB or gray out, as the file says)
 * into a malloc'd CHW buffer: the independent reference for our decoder. */
uint8_t *tu_unjpeg(const void *buf, size_t len, int *c, int *h, int *w);

/*
 * Encodes a PNG with libpng's classic writer: rows holds h rows of packed
 * samples exactly as the PNG stores them (bit_depth 1..16, big-endian for
 * 16). color_type is a PNG_COLOR_TYPE_*; palette/npal for palette images
 * (3 bytes per entry); trns/ntrns an optional tRNS chunk. NULL on failure.
 */
void *tu_png(const uint8_t *rows, int w, int h, int bit_depth, int color_type,
	     int interlace, const uint8_t *palette, int npal, const uint8_t *trns,
	     int ntrns, size_t *len);

#endif
