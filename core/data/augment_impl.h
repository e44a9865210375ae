/*
 * core/data/augment_impl.h — internal pieces of the augmentation pipeline,
 * exposed to the unit tests and to bench/augment_crosscheck.py (which loads
 * them through ctypes) so each deterministic op can be checked on its own
 * against hand-computed values and against torchvision.
 *
 * Images are float CHW planes on the 0..1 scale; hw = height·width. The
 * colour ops work in place and follow torchvision's tensor functions
 * (torchvision/transforms/functional_tensor.py, 0.14), clamping to [0, 1].
 * Not part of the public API; the server must not include it.
 */
#ifndef ISIF_AUGMENT_IMPL_H
#define ISIF_AUGMENT_IMPL_H

#include <stdint.h>

/* Grayscale weights of torchvision's rgb_to_grayscale (ITU-R 601-2 luma). */
#define ISIF_GRAY_R 0.2989f
#define ISIF_GRAY_G 0.587f
#define ISIF_GRAY_B 0.114f

/* Python's round(): nearest integer, ties to even. */
double isif_round_half_even(double x);

/*
 * Bilinear resize of the window rows [top, top+ch) × cols [left, left+cw)
 * of the uint8 CHW image src[c, h, w] to out[c, oh, ow], as
 * torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 * antialias=False) on the float image src/255.
 */
void isif_resize_bilinear_u8(float *out, int oh, int ow, const uint8_t *src,
			     int c, int h, int w, int top, int left, int ch, int cw);

/* x ← clamp(f·x, 0, 1). */
void isif_adjust_brightness(float *x, int c, int hw, float f);
/* x ← clamp(f·x + (1−f)·mean(gray(x)), 0, 1); gray(x) = x itself when c = 1. */
void isif_adjust_contrast(float *x, int c, int hw, float f);
/* x ← clamp(f·x + (1−f)·gray(x), 0, 1); no-op when c = 1. */
void isif_adjust_saturation(float *x, int c, int hw, float f);
/* Rotates the hue by f (a fraction of the circle) in HSV space; no-op when c = 1. */
void isif_adjust_hue(float *x, int c, int hw, float f);
/* Every channel ← gray(x) (3 channels kept); no-op when c = 1. */
void isif_to_grayscale(float *x, int c, int hw);

/* torchvision's _rgb2hsv / _hsv2rgb for one pixel (h, s, v in [0, 1]). */
void isif_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v);
void isif_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b);

#endif
