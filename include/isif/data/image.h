/*
 * isif/data/image.h — single images in memory (core/data/image_codec.c):
 * JPEG and PNG decoding within explicit limits, PNG encoding, bilinear
 * resizing and channel conversion of 8-bit CHW images. What the folder
 * reader and the daemon's /neighbors upload use. Not a general image
 * library (8-bit gray or RGB out, alpha dropped), and it knows nothing of
 * datasets. Every function is thread-safe.
 */
#ifndef ISIF_IMAGE_H
#define ISIF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "isif/base/common.h"

/* What a decoder accepts; anything over a limit is refused before the
 * pixels are allocated. */
struct isif_image_limits {
	int64_t max_bytes;  /* encoded size (default 32 MiB) */
	int64_t max_pixels; /* width × height (default 40 Mpixel) */
	int max_side;       /* width and height each (default 16384) */
};

/* The defaults above, as an initialiser:
 * struct isif_image_limits lim = ISIF_IMAGE_LIMITS_DEFAULT; */
#define ISIF_IMAGE_LIMITS_DEFAULT \
	{ .max_bytes = 32LL << 20, .max_pixels = 40LL * 1000 * 1000, .max_side = 16384 }

/*
 * Decodes a JPEG or PNG image from memory (format sniffed from its magic)
 * to 8-bit CHW with its own channel count (1 or 3; alpha dropped, palette
 * expanded). limits may be NULL (the defaults). *pixels is malloc'd.
 * Truncated/corrupt data → ISIF_EFORMAT, over a limit → ISIF_ERANGE. The
 * work is bounded by the declared size, not the byte count: a PNG with
 * more compressed data than twice its raw rows, or data past its last
 * row, and a progressive JPEG whose scans would pass over its
 * coefficients more than 8 times are ISIF_EFORMAT ("... refused: ..."),
 * before that work is done; ancillary PNG chunks are skipped unread.
 */
enum isif_rc isif_image_decode(const void *buf, size_t len,
		      const struct isif_image_limits *limits, uint8_t **pixels,
		      int *c, int *h, int *w, struct isif_error *err);

/* Bilinear resize of one uint8 CHW image (half-pixel centres, no antialias,
 * as torchvision's tensor resize with antialias=False) to oh×ow. */
void isif_image_resize_u8(uint8_t *dst, int oh, int ow, const uint8_t *src,
			  int c, int h, int w);

/* Converts channels: 1→3 replicates, 3→1 uses ITU-R 601 luma (0.299, 0.587, 0.114). */
void isif_image_convert_u8(uint8_t *dst, int dc, const uint8_t *src, int sc,
			   int h, int w);

/* Encodes uint8 CHW (c = 1 or 3) as PNG into a malloc'd buffer. */
enum isif_rc isif_image_encode_png(const uint8_t *pixels, int c, int h, int w,
			  void **png, size_t *len, struct isif_error *err);

#endif
