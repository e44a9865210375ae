/*
 * core/data/augment.c — one augmented view of a uint8 CHW image, the paper's
 * pipeline with torchvision's semantics on the 0..1 float scale:
 *
 *   RandomResizedCrop → ColorJitter → RandomGrayscale → RandomHorizontalFlip → Normalize
 *
 * Randomness comes only from the caller's isif_rng, in torchvision's order:
 *   crop:      up to 10 × (U(scale), U(log ratio)), then randint(top), randint(left)
 *              on success (nothing when crop is off); with fit = random crop
 *              (the paper's second setting: a stored 256×256 image, 227×227
 *              views) randint(top), randint(left) instead, and a centre crop
 *              draws nothing;
 *   jitter:    one uniform only when 0 < jitter_p < 1 (torchvision's RandomApply;
 *              p ≥ 1 is a plain ColorJitter and draws nothing for it), then a
 *              uniform permutation of the four ops, then the factors of the ops
 *              whose strength is > 0, in the order brightness, contrast,
 *              saturation, hue (ColorJitter.get_params); the factors are drawn on
 *              1-channel images too, so a seed gives the same stream for any c;
 *   grayscale: one uniform when grayscale > 0, also on 1-channel images (where
 *              torchvision's RandomGrayscale draws and then copies the image);
 *   hflip:     one uniform when hflip > 0.
 * An op whose probability or strength is 0 is absent and draws nothing.
 * The colour arithmetic lives in color_jitter.c.
 *
 * Preconditions, validated by the job spec and not here (the API is void):
 * c is 1 or 3, every size > 0, scale and ratio bounds > 0. Measured: about
 * 50 µs per 3×32×32 view with the paper's settings (-O2, one core).
 */
#include "isif/data/augment.h"

#include <math.h>
#include <string.h>

#include "data/augment_impl.h"

static void augment_common(struct isif_augment *a, int out_h, int out_w,
			   const float mean[3], const float std[3])
{
	memset(a, 0, sizeof *a);
	a->crop_scale[0] = 0.2f;
	a->crop_scale[1] = 1.0f;
	a->crop_ratio[0] = 3.0f / 4.0f;
	a->crop_ratio[1] = 4.0f / 3.0f;
	a->out_h = out_h;
	a->out_w = out_w;
	for (int k = 0; k < 3; k++) {
		a->mean[k] = mean ? mean[k] : 0.0f;
		a->std[k] = std ? std[k] : 1.0f;
	}
}

void isif_augment_default(struct isif_augment *a, int out_h, int out_w,
			  const float mean[3], const float std[3])
{
	augment_common(a, out_h, out_w, mean, std);
	a->crop = true;
	a->hflip = 0.5f;
	a->grayscale = 0.2f;
	a->brightness = a->contrast = a->saturation = a->hue = 0.4f;
	a->jitter_p = 1.0f;
}

void isif_augment_none(struct isif_augment *a, int out_h, int out_w,
		       const float mean[3], const float std[3])
{
	augment_common(a, out_h, out_w, mean, std);
}

void isif_augment_center(struct isif_augment *a, int out_h, int out_w,
			 const float mean[3], const float std[3])
{
	augment_common(a, out_h, out_w, mean, std);
	a->fit = ISIF_FIT_CENTER_CROP;
}

/* Every op works in place on `out` and the resize reads the uint8 source
 * directly, so no scratch is needed; ws may be NULL. The entry point stays
 * so a faster resize can claim scratch without changing callers. */
size_t isif_augment_workspace(const struct isif_augment *a, int c, int h, int w)
{
	(void)a;
	(void)c;
	(void)h;
	(void)w;
	return 0;
}

double isif_round_half_even(double x)
{
	double f = floor(x);
	double d = x - f;
	if (d > 0.5)
		return f + 1.0;
	if (d < 0.5)
		return f;
	return fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

/*
 * RandomResizedCrop.get_params. area = h·w; a try draws
 *   target = area·U(s0, s1),  aspect = exp(U(log r0, log r1)),
 *   cw = round(√(target·aspect)),  ch = round(√(target/aspect)),
 * and succeeds when 0 < cw ≤ w and 0 < ch ≤ h, placing the window with
 * top = randint(0, h−ch+1), left = randint(0, w−cw+1). After 10 failures:
 * the centre crop of the whole image clipped to the ratio range.
 */
void isif_augment_crop_params(int h, int w, const float scale[2],
			      const float ratio[2], struct isif_rng *rng,
			      int *i, int *j, int *ch, int *cw)
{
	double area = (double)h * (double)w;
	double log_r0 = log((double)ratio[0]), log_r1 = log((double)ratio[1]);
	for (int attempt = 0; attempt < 10; attempt++) {
		double target = area * isif_rng_range(rng, scale[0], scale[1]);
		double aspect = exp(isif_rng_range(rng, log_r0, log_r1));
		double tw = isif_round_half_even(sqrt(target * aspect));
		double th = isif_round_half_even(sqrt(target / aspect));
		if (tw > 0.0 && tw <= w && th > 0.0 && th <= h) {
			*ch = (int)th;
			*cw = (int)tw;
			*i = (int)isif_rng_below(rng, (uint32_t)(h - *ch + 1));
			*j = (int)isif_rng_below(rng, (uint32_t)(w - *cw + 1));
			return;
		}
	}
	double in_ratio = (double)w / (double)h;
	double rmin = fmin(ratio[0], ratio[1]), rmax = fmax(ratio[0], ratio[1]);
	if (in_ratio < rmin) {
		*cw = w;
		*ch = (int)isif_round_half_even((double)w / rmin);
	} else if (in_ratio > rmax) {
		*ch = h;
		*cw = (int)isif_round_half_even((double)h * rmax);
	} else {
		*cw = w;
		*ch = h;
	}
	*i = (h - *ch) / 2;
	*j = (w - *cw) / 2;
}

/*
 * Source coordinate of output index d (align_corners=False):
 * s = scale·(d + ½) − ½ with scale = in/out, clamped at 0. Taps i0 = ⌊s⌋ and
 * i1 = i0 + 1 (i0 at the last index: i1 = i0), weights λ1 = s − i0 and
 * λ0 = 1 − λ1. As torch 1.13's CPU kernel does: the scale is a float, the
 * coordinate is taken in double, the weights are stored as floats
 * (bench/augment_crosscheck.py finds the weights bit-equal this way).
 */
struct lin_tap {
	int i0, i1;
	float l0, l1;
};

static struct lin_tap lin_tap_at(int d, int in, int out)
{
	struct lin_tap t;
	float scale = (float)in / (float)out;
	double s = (double)scale * ((double)d + 0.5) - 0.5;
	if (s < 0.0)
		s = 0.0;
	t.i0 = (int)s;
	if (t.i0 > in - 1)
		t.i0 = in - 1;
	t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
	double l1 = fmin(fmax(s - (double)t.i0, 0.0), 1.0);
	t.l1 = (float)l1;
	t.l0 = 1.0f - t.l1;
	return t;
}

/*
 * out = λy0·(λx0·p00 + λx1·p01) + λy1·(λx0·p10 + λx1·p11), the taps read as
 * src/255 in float (what ToTensor gives torch) and combined in torch's order.
 * Same size: the weights are exactly (1, 0), so this is the copy src/255.
 */
void isif_resize_bilinear_u8(float *out, int oh, int ow, const uint8_t *src,
			     int c, int h, int w, int top, int left, int ch, int cw)
{
	for (int y = 0; y < oh; y++) {
		struct lin_tap ty = lin_tap_at(y, ch, oh);
		for (int x = 0; x < ow; x++) {
			struct lin_tap tx = lin_tap_at(x, cw, ow);
			for (int k = 0; k < c; k++) {
				const uint8_t *r0 = src + ((size_t)k * h + top + ty.i0) * w + left;
				const uint8_t *r1 = src + ((size_t)k * h + top + ty.i1) * w + left;
				float p00 = r0[tx.i0] / 255.0f, p01 = r0[tx.i1] / 255.0f;
				float p10 = r1[tx.i0] / 255.0f, p11 = r1[tx.i1] / 255.0f;
				float v = ty.l0 * (tx.l0 * p00 + tx.l1 * p01) +
					  ty.l1 * (tx.l0 * p10 + tx.l1 * p11);
				out[((size_t)k * oh + y) * ow + x] = v;
			}
		}
	}
}

/* Step 1: RandomCrop / CenterCrop (a window copied), RandomResizedCrop, or
 * the plain resize (a copy when sizes match). */
static void crop_and_resize(float *out, const uint8_t *src, int c, int h, int w,
			    const struct isif_augment *a, struct isif_rng *rng)
{
	int top = 0, left = 0, ch = h, cw = w;
	if (a->fit == ISIF_FIT_RANDOM_CROP) {
		ch = a->out_h;
		cw = a->out_w;
		top = (int)isif_rng_below(rng, (uint32_t)(h - ch + 1));
		left = (int)isif_rng_below(rng, (uint32_t)(w - cw + 1));
	} else if (a->fit == ISIF_FIT_CENTER_CROP) {
		ch = a->out_h;
		cw = a->out_w;
		top = (int)isif_round_half_even((h - ch) / 2.0);
		left = (int)isif_round_half_even((w - cw) / 2.0);
	} else if (a->crop) {
		isif_augment_crop_params(h, w, a->crop_scale, a->crop_ratio, rng,
					 &top, &left, &ch, &cw);
	}
	if (ch == a->out_h && cw == a->out_w) {
		for (int k = 0; k < c; k++)
			for (int y = 0; y < ch; y++)
				for (int x = 0; x < cw; x++)
					out[((size_t)k * ch + y) * cw + x] =
						src[((size_t)k * h + top + y) * w + left + x] / 255.0f;
		return;
	}
	isif_resize_bilinear_u8(out, a->out_h, a->out_w, src, c, h, w, top, left, ch, cw);
}

/* Uniform factor in [lo, hi], as torch.empty(1).uniform_(lo, hi). */
static float draw_factor(struct isif_rng *rng, double lo, double hi)
{
	return (float)isif_rng_range(rng, lo, hi);
}

/* Step 2: ColorJitter (see the file comment for the order of the draws). */
static void color_jitter(float *x, int c, int hw, const struct isif_augment *a,
			 struct isif_rng *rng)
{
	const float strength[4] = { a->brightness, a->contrast, a->saturation, a->hue };
	float factor[4];
	int32_t order[4] = { 0, 1, 2, 3 };
	bool any = false;
	for (int k = 0; k < 4; k++)
		any = any || strength[k] > 0.0f;
	if (!any || !(a->jitter_p > 0.0f))
		return;
	if (a->jitter_p < 1.0f && isif_rng_uniform(rng) > a->jitter_p)
		return; /* RandomApply: `if p < torch.rand(1): return img` */
	isif_rng_shuffle(rng, order, 4);
	for (int k = 0; k < 3; k++)
		if (strength[k] > 0.0f)
			factor[k] = draw_factor(rng, fmax(0.0, 1.0 - strength[k]),
						1.0 + strength[k]);
	if (strength[3] > 0.0f)
		factor[3] = draw_factor(rng, -strength[3], strength[3]);
	for (int k = 0; k < 4; k++) {
		int op = order[k];
		if (!(strength[op] > 0.0f))
			continue;
		switch (op) {
		case 0: isif_adjust_brightness(x, c, hw, factor[0]); break;
		case 1: isif_adjust_contrast(x, c, hw, factor[1]); break;
		case 2: isif_adjust_saturation(x, c, hw, factor[2]); break;
		default: isif_adjust_hue(x, c, hw, factor[3]); break;
		}
	}
}

/* Step 4: mirror the columns of every row. */
static void hflip(float *x, int c, int oh, int ow)
{
	for (long r = 0; r < (long)c * oh; r++) {
		float *row = x + r * ow;
		for (int lo = 0, hi = ow - 1; lo < hi; lo++, hi--) {
			float t = row[lo];
			row[lo] = row[hi];
			row[hi] = t;
		}
	}
}

void isif_augment_apply(float *out, const uint8_t *src, int c, int h, int w,
			const struct isif_augment *a, struct isif_rng *rng,
			float *ws)
{
	(void)ws;
	int hw = a->out_h * a->out_w;
	crop_and_resize(out, src, c, h, w, a, rng);
	color_jitter(out, c, hw, a, rng);
	if (a->grayscale > 0.0f && isif_rng_uniform(rng) < a->grayscale)
		isif_to_grayscale(out, c, hw);
	if (a->hflip > 0.0f && isif_rng_uniform(rng) < a->hflip)
		hflip(out, c, a->out_h, a->out_w);
	/* Step 5: Normalize, (x − mean[k]) / std[k] per channel. */
	for (int k = 0; k < c; k++) {
		float m = a->mean[k], s = a->std[k];
		for (int p = 0; p < hw; p++)
			out[(size_t)k * hw + p] = (out[(size_t)k * hw + p] - m) / s;
	}
}
