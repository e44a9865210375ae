/*
 * core/data/color_jitter.c — the colour operations of ColorJitter and
 * RandomGrayscale on float CHW images in [0, 1], with the semantics of
 * torchvision's tensor functions (functional_tensor.py, 0.14):
 *
 *   gray(x)      = 0.2989·R + 0.587·G + 0.114·B
 *   blend(a,b,f) = clamp(f·a + (1−f)·b, 0, 1)
 *   brightness   = blend(x, 0, f)
 *   contrast     = blend(x, mean(gray(x)), f)     (1 channel: mean(x))
 *   saturation   = blend(x, gray(x), f)           (1 channel: no-op)
 *   hue          = HSV round trip with h ← (h + f) mod 1 (1 channel: no-op)
 *
 * Products and sums are written in the order torch evaluates them, in
 * float, so results agree with torchvision to a few ulps. Drawing the
 * factors is augment.c's business; this file is deterministic.
 */
#include "data/augment_impl.h"

#include <math.h>

static float clamp01(float v)
{
	return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

static float gray_of(float r, float g, float b)
{
	return ISIF_GRAY_R * r + ISIF_GRAY_G * g + ISIF_GRAY_B * b;
}

/* blend(a, b, f) with torch's (1.0 − ratio) taken in double, then float. */
static float blend(float a, float b, float f, float one_minus_f)
{
	return clamp01(f * a + one_minus_f * b);
}

void isif_adjust_brightness(float *x, int c, int hw, float f)
{
	long n = (long)c * hw;
	for (long k = 0; k < n; k++)
		x[k] = clamp01(f * x[k]);
}

void isif_adjust_contrast(float *x, int c, int hw, float f)
{
	long n = (long)c * hw;
	double sum = 0.0;
	long count = n;
	if (c == 3) {
		count = hw;
		for (int k = 0; k < hw; k++)
			sum += gray_of(x[k], x[hw + k], x[2 * hw + k]);
	} else {
		for (long k = 0; k < n; k++)
			sum += x[k];
	}
	float mean = (float)(sum / (double)count);
	float omf = (float)(1.0 - (double)f);
	for (long k = 0; k < n; k++)
		x[k] = blend(x[k], mean, f, omf);
}

void isif_adjust_saturation(float *x, int c, int hw, float f)
{
	if (c != 3)
		return;
	float omf = (float)(1.0 - (double)f);
	for (int k = 0; k < hw; k++) {
		float g = gray_of(x[k], x[hw + k], x[2 * hw + k]);
		for (int ch = 0; ch < 3; ch++)
			x[ch * hw + k] = blend(x[ch * hw + k], g, f, omf);
	}
}

void isif_to_grayscale(float *x, int c, int hw)
{
	if (c != 3)
		return;
	for (int k = 0; k < hw; k++) {
		float g = gray_of(x[k], x[hw + k], x[2 * hw + k]);
		x[k] = x[hw + k] = x[2 * hw + k] = g;
	}
}

/*
 * _rgb2hsv: v = max, s = (max−min)/max, and the hue sector from whichever
 * channel holds the max (ties resolved R, then G, then B):
 *   R: (bc − gc),  G: 2 + rc − bc,  B: 4 + gc − rc,  with xc = (max − x)/(max − min),
 *   h = fmod(h/6 + 1, 1). Grey pixels (max = min) get h = 0, s = 0.
 */
void isif_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
	float maxc = fmaxf(r, fmaxf(g, b));
	float minc = fminf(r, fminf(g, b));
	int eqc = maxc == minc;
	float cr = maxc - minc;
	float sat = cr / (eqc ? 1.0f : maxc);
	float crd = eqc ? 1.0f : cr;
	float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
	float hue;
	if (maxc == r)
		hue = bc - gc;
	else if (maxc == g)
		hue = 2.0f + rc - bc;
	else
		hue = 4.0f + gc - rc;
	*h = fmodf(hue / 6.0f + 1.0f, 1.0f);
	*s = sat;
	*v = maxc;
}

/*
 * _hsv2rgb: sector i = floor(6h) mod 6, f = 6h − floor(6h),
 *   p = v(1−s), q = v(1−sf), t = v(1−s(1−f)) (each clamped to [0, 1]),
 *   (r,g,b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q) for i = 0..5.
 */
void isif_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
	float fi = floorf(h * 6.0f);
	float f = h * 6.0f - fi;
	int i = ((int)fi % 6 + 6) % 6;
	float p = clamp01(v * (1.0f - s));
	float q = clamp01(v * (1.0f - s * f));
	float t = clamp01(v * (1.0f - s * (1.0f - f)));
	const float rgb[6][3] = {
		{ v, t, p }, { q, v, p }, { p, v, t },
		{ p, q, v }, { t, p, v }, { v, p, q },
	};
	*r = rgb[i][0];
	*g = rgb[i][1];
	*b = rgb[i][2];
}

/* torch's `%` on floats: the remainder takes the divisor's sign. */
static float mod1(float x)
{
	float m = fmodf(x, 1.0f);
	if (m != 0.0f && m < 0.0f)
		m += 1.0f;
	return m;
}

void isif_adjust_hue(float *x, int c, int hw, float f)
{
	if (c != 3)
		return;
	for (int k = 0; k < hw; k++) {
		float h, s, v, r, g, b;
		isif_rgb_to_hsv(x[k], x[hw + k], x[2 * hw + k], &h, &s, &v);
		h = mod1(h + f);
		isif_hsv_to_rgb(h, s, v, &r, &g, &b);
		x[k] = clamp01(r);
		x[hw + k] = clamp01(g);
		x[2 * hw + k] = clamp01(b);
	}
}
