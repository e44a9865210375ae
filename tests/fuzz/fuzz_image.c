/*
 * tests/fuzz/fuzz_image.c — JPEG and PNG decoding from memory
 * (isif_image_decode, the folder reader's and the /neighbors upload's
 * decoder) with the default limits, then what the folder reader does with
 * a decoded image: resize to 32×32 and convert to the other channel count.
 * Invariants: no crash; a decoded image is 1 or 3 channels within the
 * limits; a small one survives a PNG round trip (isif_image_encode_png,
 * then decode) bit for bit.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "isif/data/image.h"

static void round_trip(const uint8_t *px, int c, int h, int w)
{
	void *png = NULL;
	size_t len = 0;
	uint8_t *back = NULL;
	int c2, h2, w2;
	struct isif_error err = {0};
	if (isif_image_encode_png(px, c, h, w, &png, &len, &err) != ISIF_OK)
		abort();
	if (isif_image_decode(png, len, NULL, &back, &c2, &h2, &w2, &err) != ISIF_OK ||
	    c2 != c || h2 != h || w2 != w || memcmp(back, px, (size_t)c * h * w) != 0)
		abort();
	free(back);
	free(png);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *px = NULL;
	int c = 0, h = 0, w = 0;
	struct isif_error err = {0};
	const struct isif_image_limits lim = ISIF_IMAGE_LIMITS_DEFAULT;
	if (fuzz_note("decode", isif_image_decode(data, size, &lim, &px, &c, &h, &w, &err), &err)) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if ((c != 1 && c != 3) || h < 1 || w < 1 || h > lim.max_side || w > lim.max_side ||
	    (int64_t)h * w > lim.max_pixels)
		abort();
	uint8_t small[3 * 32 * 32], other[3 * 32 * 32];
	isif_image_resize_u8(small, 32, 32, px, c, h, w);
	isif_image_convert_u8(other, c == 1 ? 3 : 1, small, c, 32, 32);
	if ((int64_t)h * w <= 4096)
		round_trip(px, c, h, w);
	free(px);
	return 0;
}
