/*
 * tests/unit/test_augment.c — the augmentation pipeline (core/data/augment.c,
 * core/data/color_jitter.c): determinism, value ranges, crop geometry and its
 * fallback, bilinear resize and every colour op against values worked out
 * by hand (the derivations are in the comments), the HSV round trip, and
 * the 1-channel no-ops. bench/augment_crosscheck.py compares the same ops
 * with torchvision; it is not part of `make test`.
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "isif/data/augment.h"
#include "isif/base/rng.h"
#include "data/augment_impl.h"

static const float zero3[3] = { 0, 0, 0 };
static const float one3[3] = { 1, 1, 1 };

static void fill_random_u8(uint8_t *p, size_t n, uint64_t seed, int lo, int hi)
{
	struct isif_rng r;
	isif_rng_seed(&r, seed, 99);
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(lo + (int)isif_rng_below(&r, (uint32_t)(hi - lo + 1)));
}

/* Everything off, output size = source size, no normalisation. */
static void aug_off(struct isif_augment *a, int h, int w)
{
	isif_augment_none(a, h, w, zero3, one3);
}

TEST(augment_defaults_are_the_papers)
{
	struct isif_augment a;
	const float m[3] = { 0.5f, 0.4f, 0.3f }, s[3] = { 0.2f, 0.25f, 0.3f };
	isif_augment_default(&a, 32, 24, m, s);
	CHECK(a.crop);
	CHECK_NEAR(a.crop_scale[0], 0.2, 1e-7);
	CHECK_NEAR(a.crop_scale[1], 1.0, 0);
	CHECK_NEAR(a.crop_ratio[0], 0.75, 1e-7);
	CHECK_NEAR(a.crop_ratio[1], 4.0 / 3.0, 1e-7);
	CHECK_NEAR(a.hflip, 0.5, 0);
	CHECK_NEAR(a.grayscale, 0.2, 1e-7);
	CHECK_NEAR(a.brightness, 0.4, 1e-7);
	CHECK_NEAR(a.contrast, 0.4, 1e-7);
	CHECK_NEAR(a.saturation, 0.4, 1e-7);
	CHECK_NEAR(a.hue, 0.4, 1e-7);
	CHECK_NEAR(a.jitter_p, 1.0, 0);
	CHECK_EQ(a.out_h, 32);
	CHECK_EQ(a.out_w, 24);
	CHECK_NEAR(a.mean[2], 0.3, 1e-7);
	CHECK_NEAR(a.std[1], 0.25, 1e-7);

	isif_augment_none(&a, 8, 8, m, s);
	CHECK(!a.crop);
	CHECK(a.hflip == 0 && a.grayscale == 0 && a.brightness == 0 && a.contrast == 0 &&
	      a.saturation == 0 && a.hue == 0);
	CHECK_NEAR(a.mean[0], 0.5, 0);
	CHECK_NEAR(a.std[2], 0.3, 1e-7);
}

TEST(augment_determinism)
{
	enum { C = 3, H = 20, W = 24, OH = 16, OW = 16, N = C * OH * OW };
	uint8_t src[C * H * W];
	float o1[N], o2[N], o3[N];
	struct isif_augment a;
	struct isif_rng r1, r2, r3;
	fill_random_u8(src, sizeof src, 1, 0, 255);
	isif_augment_default(&a, OH, OW, zero3, one3);
	CHECK_EQ(isif_augment_workspace(&a, C, H, W), 0); /* ws may be NULL */
	isif_rng_seed(&r1, 42, 0);
	isif_rng_seed(&r2, 42, 0);
	isif_rng_seed(&r3, 43, 0);
	int differ = 0;
	for (int v = 0; v < 8; v++) {
		isif_augment_apply(o1, src, C, H, W, &a, &r1, NULL);
		isif_augment_apply(o2, src, C, H, W, &a, &r2, NULL);
		isif_augment_apply(o3, src, C, H, W, &a, &r3, NULL);
		CHECK_MSG(memcmp(o1, o2, sizeof o1) == 0, "view %d differs for equal seeds", v);
		differ += memcmp(o1, o3, sizeof o1) != 0;
	}
	CHECK_EQ(differ, 8);
}

TEST(augment_values_in_unit_range)
{
	enum { H = 12, W = 10, OH = 9, OW = 11 };
	uint8_t src[3 * H * W];
	float out[3 * OH * OW];
	struct isif_augment a;
	struct isif_rng r;
	fill_random_u8(src, sizeof src, 2, 0, 255);
	isif_augment_default(&a, OH, OW, zero3, one3);
	isif_rng_seed(&r, 7, 1);
	int bad = 0;
	float lo = 1, hi = 0;
	for (int v = 0; v < 60; v++) {
		int c = v % 2 ? 3 : 1;
		isif_augment_apply(out, src, c, H, W, &a, &r, NULL);
		for (int k = 0; k < c * OH * OW; k++) {
			bad += !(out[k] >= 0.0f && out[k] <= 1.0f);
			lo = out[k] < lo ? out[k] : lo;
			hi = out[k] > hi ? out[k] : hi;
		}
	}
	CHECK_EQ(bad, 0);
	/* Brightness/contrast push values to the clamps: both ends are reached. */
	CHECK(lo == 0.0f && hi == 1.0f);
}

TEST(augment_identity_when_all_off)
{
	enum { C = 3, H = 5, W = 7 };
	uint8_t src[C * H * W];
	float out[C * H * W];
	const float m[3] = { 0.4914f, 0.4822f, 0.4465f }, s[3] = { 0.247f, 0.243f, 0.261f };
	struct isif_augment a;
	struct isif_rng r, before;
	fill_random_u8(src, sizeof src, 3, 0, 255);
	isif_augment_none(&a, H, W, m, s);
	isif_rng_seed(&r, 5, 5);
	before = r;
	isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
	int bad = 0;
	for (int k = 0; k < C; k++)
		for (int p = 0; p < H * W; p++) {
			float want = ((float)src[k * H * W + p] / 255.0f - m[k]) / s[k];
			bad += out[k * H * W + p] != want;
		}
	CHECK_EQ(bad, 0);
	CHECK(r.state == before.state); /* nothing drawn */
}

TEST(augment_hflip_exact)
{
	enum { C = 3, H = 5, W = 7 };
	uint8_t src[C * H * W];
	float plain[C * H * W], flip[C * H * W];
	struct isif_augment a;
	struct isif_rng r;
	fill_random_u8(src, sizeof src, 4, 0, 255);
	aug_off(&a, H, W);
	isif_rng_seed(&r, 1, 1);
	isif_augment_apply(plain, src, C, H, W, &a, &r, NULL);
	a.hflip = 1.0f;
	isif_augment_apply(flip, src, C, H, W, &a, &r, NULL);
	int bad = 0;
	for (int k = 0; k < C; k++)
		for (int y = 0; y < H; y++)
			for (int x = 0; x < W; x++)
				bad += flip[(k * H + y) * W + x] != plain[(k * H + y) * W + (W - 1 - x)];
	CHECK_EQ(bad, 0);
	/* And it is not the identity (the source is not symmetric). */
	CHECK(memcmp(plain, flip, sizeof plain) != 0);
}

TEST(augment_hflip_probability)
{
	enum { H = 1, W = 2 };
	const uint8_t src[2] = { 0, 255 };
	float out[2];
	struct isif_augment a;
	struct isif_rng r;
	aug_off(&a, H, W);
	a.hflip = 0.5f;
	isif_rng_seed(&r, 11, 0);
	int flipped = 0;
	for (int v = 0; v < 400; v++) {
		isif_augment_apply(out, src, 1, H, W, &a, &r, NULL);
		flipped += out[0] == 1.0f;
	}
	/* Binomial(400, ½): mean 200, sd 10; ±60 is 6 sd. */
	CHECK(flipped > 140 && flipped < 260);
}

/* The crop's bounds, and the scale/ratio it came from allowing for the
 * rounding of cw = round(√(T·a)), ch = round(√(T/a)): √(T·a) ∈ [cw−½, cw+½]. */
static int crop_ok(int h, int w, const float sc[2], const float ra[2],
		   int i, int j, int ch, int cw)
{
	double area = (double)h * w, e = 1e-9;
	if (i < 0 || j < 0 || ch < 1 || cw < 1 || i + ch > h || j + cw > w)
		return 0;
	if ((cw + 0.5) * (ch + 0.5) < sc[0] * area - e || (cw - 0.5) * (ch - 0.5) > sc[1] * area + e)
		return 0;
	if ((cw + 0.5) / (ch - 0.5) < ra[0] - e || (cw - 0.5) / (ch + 0.5) > ra[1] + e)
		return 0;
	return 1;
}

TEST(augment_crop_params_in_bounds)
{
	const float sc[2] = { 0.2f, 1.0f }, ra[2] = { 3.0f / 4.0f, 4.0f / 3.0f };
	struct isif_rng r;
	isif_rng_seed(&r, 2019, 3);
	int bad = 0, small = 0, moved = 0, full = 0;
	/* Square and near-square images: 10 failed tries has probability < 1e-6. */
	const int sizes[][2] = { { 32, 32 }, { 28, 28 }, { 96, 96 }, { 30, 34 }, { 7, 7 } };
	for (int s = 0; s < 5; s++) {
		int h = sizes[s][0], w = sizes[s][1];
		for (int t = 0; t < 400; t++) {
			int i, j, ch, cw;
			isif_augment_crop_params(h, w, sc, ra, &r, &i, &j, &ch, &cw);
			bad += !crop_ok(h, w, sc, ra, i, j, ch, cw);
			small += cw * ch < 0.5 * h * w;
			moved += i > 0 && j > 0;
			full += ch == h && cw == w;
		}
	}
	CHECK_EQ(bad, 0);
	/* The crops are spread over the allowed range, not stuck. */
	CHECK(small > 400 && moved > 1000 && full < 200);
}

TEST(augment_crop_fallback_centre)
{
	/* scale 2..3 asks for more than the whole image: every try fails.
	 * 10×40 (ratio 4 > 4/3): ch = 10, cw = round(10·4/3) = round(13.33) = 13,
	 * top = 0, left = (40−13)/2 = 13. 40×10 (ratio ¼ < ¾): cw = 10,
	 * ch = round(10/0.75) = 13, top = 13, left = 0. 20×20: the whole image. */
	const float sc[2] = { 2.0f, 3.0f }, ra[2] = { 3.0f / 4.0f, 4.0f / 3.0f };
	struct isif_rng r, ref;
	int i, j, ch, cw;
	isif_rng_seed(&r, 1, 2);
	ref = r;
	isif_augment_crop_params(10, 40, sc, ra, &r, &i, &j, &ch, &cw);
	CHECK(i == 0 && j == 13 && ch == 10 && cw == 13);
	/* Exactly 10 tries of two draws each were consumed. */
	for (int k = 0; k < 20; k++)
		isif_rng_range(&ref, 0, 1);
	CHECK(r.state == ref.state);
	isif_augment_crop_params(40, 10, sc, ra, &r, &i, &j, &ch, &cw);
	CHECK(i == 13 && j == 0 && ch == 13 && cw == 10);
	isif_augment_crop_params(20, 20, sc, ra, &r, &i, &j, &ch, &cw);
	CHECK(i == 0 && j == 0 && ch == 20 && cw == 20);
	/* 11×40 with ratio ½..1 (in_ratio 3.6 > 1): ch = 11, cw = 11, left = 14. */
	const float ra2[2] = { 0.5f, 1.0f };
	isif_augment_crop_params(11, 40, sc, ra2, &r, &i, &j, &ch, &cw);
	CHECK(i == 0 && j == 14 && ch == 11 && cw == 11);
}

TEST(augment_round_half_even)
{
	/* Python: round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(-0.5) = 0, round(-1.5) = -2. */
	CHECK_NEAR(isif_round_half_even(0.5), 0, 0);
	CHECK_NEAR(isif_round_half_even(1.5), 2, 0);
	CHECK_NEAR(isif_round_half_even(2.5), 2, 0);
	CHECK_NEAR(isif_round_half_even(2.5000001), 3, 0);
	CHECK_NEAR(isif_round_half_even(-0.5), 0, 0);
	CHECK_NEAR(isif_round_half_even(-1.5), -2, 0);
	CHECK_NEAR(isif_round_half_even(3.49), 3, 0);
}

TEST(augment_resize_bilinear_hand)
{
	/* 2×2 → 4×4, align_corners=False: s(d) = ½(d + ½) − ½ = 0.5d − 0.25, so
	 * d = 0..3 → s = 0 (clamped), 0.25, 0.75, 1.25 (last tap: both taps = 1).
	 * Source /255: [[0, 1], [0.2, 0.4]]. Rows interpolated along x:
	 * row 0 → 0, .25, .75, 1;  row 1 → .2, .25, .35, .4; then along y with
	 * λ = 0, .25, .75, 1(last): y1 = .75·row0 + .25·row1, y2 = .25·row0 + .75·row1. */
	const uint8_t src[4] = { 0, 255, 51, 102 };
	const float want[16] = {
		0.00f, 0.25f, 0.75f, 1.00f,
		0.05f, 0.25f, 0.65f, 0.85f,
		0.15f, 0.25f, 0.45f, 0.55f,
		0.20f, 0.25f, 0.35f, 0.40f,
	};
	float out[16];
	isif_resize_bilinear_u8(out, 4, 4, src, 1, 2, 2, 0, 0, 2, 2);
	for (int k = 0; k < 16; k++)
		CHECK_NEAR(out[k], want[k], 1e-6);

	/* The same 2×2 as the window (top 1, left 1) of a 3×3 image. */
	const uint8_t big[9] = { 9, 9, 9, 9, 0, 255, 9, 51, 102 };
	isif_resize_bilinear_u8(out, 4, 4, big, 1, 3, 3, 1, 1, 2, 2);
	for (int k = 0; k < 16; k++)
		CHECK_NEAR(out[k], want[k], 1e-6);

	/* 1×4 → 1×2 (no antialias): s(d) = 2(d + ½) − ½ = 0.5, 2.5, the means of
	 * neighbours: (0 + 0.2)/2 = 0.1, (0.4 + 1)/2 = 0.7. */
	const uint8_t row[4] = { 0, 51, 102, 255 };
	isif_resize_bilinear_u8(out, 1, 2, row, 1, 1, 4, 0, 0, 1, 4);
	CHECK_NEAR(out[0], 0.1, 1e-6);
	CHECK_NEAR(out[1], 0.7, 1e-6);
}

TEST(augment_plain_resize_when_crop_off)
{
	/* isif_augment_none with a different output size resizes the whole image:
	 * the 2×2 source of the hand-computed case above, normalised with mean ½, std ½. */
	const uint8_t src[4] = { 0, 255, 51, 102 };
	const float m[3] = { 0.5f, 0.5f, 0.5f }, s[3] = { 0.5f, 0.5f, 0.5f };
	float out[16];
	struct isif_augment a;
	struct isif_rng r;
	isif_augment_none(&a, 4, 4, m, s);
	isif_rng_seed(&r, 1, 1);
	isif_augment_apply(out, src, 1, 2, 2, &a, &r, NULL);
	CHECK_NEAR(out[0], (0.0 - 0.5) / 0.5, 1e-6);
	CHECK_NEAR(out[5], (0.25 - 0.5) / 0.5, 1e-6);
	CHECK_NEAR(out[6], (0.65 - 0.5) / 0.5, 1e-6);
	CHECK_NEAR(out[15], (0.40 - 0.5) / 0.5, 1e-6);
}

TEST(augment_brightness_factor_range)
{
	enum { C = 3, H = 6, W = 6, N = C * H * W };
	uint8_t src[N];
	float out[N];
	struct isif_augment a;
	struct isif_rng r;
	/* Values ≤ 100/255 so that ×1.4 never reaches the clamp at 1. */
	fill_random_u8(src, sizeof src, 5, 10, 100);
	aug_off(&a, H, W);
	a.brightness = 0.4f;
	a.jitter_p = 1.0f;
	isif_rng_seed(&r, 8, 8);
	double fmin_ = 9, fmax_ = 0;
	int bad = 0;
	for (int v = 0; v < 100; v++) {
		isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
		double f0 = out[0] / (src[0] / 255.0);
		for (int k = 0; k < N; k++) {
			double f = out[k] / (src[k] / 255.0);
			bad += fabs(f - f0) > 1e-5 || f < 0.6 - 1e-6 || f > 1.4 + 1e-6;
		}
		fmin_ = f0 < fmin_ ? f0 : fmin_;
		fmax_ = f0 > fmax_ ? f0 : fmax_;
	}
	CHECK_EQ(bad, 0);
	/* 100 uniform draws on [0.6, 1.4] cover most of it. */
	CHECK(fmin_ < 0.7 && fmax_ > 1.3);
}

/* Two pixels p1 = (0.8, 0.4, 0.2), p2 = (0.2, 0.6, 0.4) as a 3×1×2 image. */
static void two_pixels(float x[6])
{
	const float v[6] = { 0.8f, 0.2f, 0.4f, 0.6f, 0.2f, 0.4f };
	memcpy(x, v, sizeof v);
}

static void check_pixels(const float x[6], const float p1[3], const float p2[3], double tol)
{
	for (int k = 0; k < 3; k++) {
		CHECK_NEAR(x[2 * k], p1[k], tol);
		CHECK_NEAR(x[2 * k + 1], p2[k], tol);
	}
}

TEST(augment_contrast_hand)
{
	/* gray(p1) = .2989·.8 + .587·.4 + .114·.2 = .23912 + .2348 + .0228 = .49672,
	 * gray(p2) = .05978 + .3522 + .0456 = .45758, mean m = .47715.
	 * f = 0.5: .5x + .5m = .5x + .238575.  f = 1.5: 1.5x − .238575.
	 * f = 3: 3x − .9543, clamped: p1 → (1, .2457, 0), p2 → (0, .8457, .2457). */
	float x[6];
	two_pixels(x);
	isif_adjust_contrast(x, 3, 2, 0.5f);
	check_pixels(x, (const float[3]){ .638575f, .438575f, .338575f },
		     (const float[3]){ .338575f, .538575f, .438575f }, 1e-6);
	two_pixels(x);
	isif_adjust_contrast(x, 3, 2, 1.5f);
	check_pixels(x, (const float[3]){ .961425f, .361425f, .061425f },
		     (const float[3]){ .061425f, .661425f, .361425f }, 1e-6);
	two_pixels(x);
	isif_adjust_contrast(x, 3, 2, 3.0f);
	check_pixels(x, (const float[3]){ 1.0f, .2457f, 0.0f },
		     (const float[3]){ 0.0f, .8457f, .2457f }, 1e-6);

	/* One channel: the mean of the image itself, (0.2 + 0.6)/2 = 0.4;
	 * f = 0.5 → 0.5x + 0.2 = (0.3, 0.5). */
	float g[2] = { 0.2f, 0.6f };
	isif_adjust_contrast(g, 1, 2, 0.5f);
	CHECK_NEAR(g[0], 0.3, 1e-6);
	CHECK_NEAR(g[1], 0.5, 1e-6);
}

TEST(augment_saturation_hand)
{
	/* f = 0.5: .5x + .5·gray: p1 → .5x + .24836, p2 → .5x + .22879.
	 * f = 2: 2x − gray, clamped: p1 → (1, .30328, 0), p2 → (0, .74242, .34242). */
	float x[6];
	two_pixels(x);
	isif_adjust_saturation(x, 3, 2, 0.5f);
	check_pixels(x, (const float[3]){ .64836f, .44836f, .34836f },
		     (const float[3]){ .32879f, .52879f, .42879f }, 1e-6);
	two_pixels(x);
	isif_adjust_saturation(x, 3, 2, 2.0f);
	check_pixels(x, (const float[3]){ 1.0f, .30328f, 0.0f },
		     (const float[3]){ 0.0f, .74242f, .34242f }, 1e-6);
}

TEST(augment_brightness_hand)
{
	/* f = 1.5: p1 → (1.2 → 1, .6, .3), p2 → (.3, .9, .6). */
	float x[6];
	two_pixels(x);
	isif_adjust_brightness(x, 3, 2, 1.5f);
	check_pixels(x, (const float[3]){ 1.0f, .6f, .3f }, (const float[3]){ .3f, .9f, .6f }, 1e-6);
}

TEST(augment_hue_hand)
{
	/* p1 (.8,.4,.2): v = .8, s = .6/.8 = .75, hue 60°·(g−b)/(max−min) = 20°.
	 * +90° → 110°: sector 1, f = 6·110/360 − 1 = .8333, p = v(1−s) = .2,
	 * q = v(1 − s·f) = .8·(1 − .625) = .3 → (q, v, p) = (.3, .8, .2).
	 * p2 (.2,.6,.4): v = .6, s = .4/.6, hue 60°·(2 + (b−r)/(max−min)) = 150°.
	 * +90° → 240°: sector 4, f = 0: (t, p, v) with t = p = v(1−s) = .2 → (.2, .2, .6).
	 * −90°: p1 → −70° ≡ 290°: sector 4, f = .8333, t = .8(1 − .75·.1667) = .7
	 * → (t, p, v) = (.7, .2, .8); p2 → 60°: sector 1, f = 0, q = v = .6,
	 * p = .2 → (q, v, p) = (.6, .6, .2). */
	float x[6];
	two_pixels(x);
	isif_adjust_hue(x, 3, 2, 0.25f);
	check_pixels(x, (const float[3]){ .3f, .8f, .2f }, (const float[3]){ .2f, .2f, .6f }, 2e-6);
	two_pixels(x);
	isif_adjust_hue(x, 3, 2, -0.25f);
	check_pixels(x, (const float[3]){ .7f, .2f, .8f }, (const float[3]){ .6f, .6f, .2f }, 2e-6);
}

TEST(augment_hsv_known_and_round_trip)
{
	float h, s, v, r, g, b;
	/* Primaries: red h 0, green ⅓, blue ⅔; grey: h 0, s 0. */
	isif_rgb_to_hsv(1, 0, 0, &h, &s, &v);
	CHECK(h == 0.0f && s == 1.0f && v == 1.0f);
	isif_rgb_to_hsv(0, 1, 0, &h, &s, &v);
	CHECK_NEAR(h, 1.0 / 3.0, 1e-7);
	isif_rgb_to_hsv(0, 0, 1, &h, &s, &v);
	CHECK_NEAR(h, 2.0 / 3.0, 1e-7);
	isif_rgb_to_hsv(0.5f, 0.5f, 0.5f, &h, &s, &v);
	CHECK(h == 0.0f && s == 0.0f && v == 0.5f);
	/* Magenta (1, 0, 1): hue 300° = 5/6. */
	isif_rgb_to_hsv(1, 0, 1, &h, &s, &v);
	CHECK_NEAR(h, 5.0 / 6.0, 1e-7);

	/* RGB → HSV → RGB over an 18³ grid, and adjust_hue(0) on the same. */
	enum { G = 18, HW = G * G * G };
	static float img[3 * HW];
	double worst = 0;
	for (int k = 0; k < HW; k++) {
		float c3[3] = { (k % G) / (float)(G - 1), (k / G % G) / (float)(G - 1),
				(k / (G * G)) / (float)(G - 1) };
		isif_rgb_to_hsv(c3[0], c3[1], c3[2], &h, &s, &v);
		isif_hsv_to_rgb(h, s, v, &r, &g, &b);
		worst = fmax(worst, fmax(fabs(r - c3[0]), fmax(fabs(g - c3[1]), fabs(b - c3[2]))));
		for (int c = 0; c < 3; c++)
			img[c * HW + k] = c3[c];
	}
	CHECK_NEAR(worst, 0, 1e-6);
	isif_adjust_hue(img, 3, HW, 0.0f);
	worst = 0;
	for (int k = 0; k < HW; k++)
		for (int c = 0; c < 3; c++) {
			float want = ((c == 0 ? k % G : c == 1 ? k / G % G : k / (G * G))) / (float)(G - 1);
			worst = fmax(worst, fabs(img[c * HW + k] - want));
		}
	CHECK_NEAR(worst, 0, 1e-6);
}

TEST(augment_grayscale_p1)
{
	enum { C = 3, H = 4, W = 5, HW = H * W };
	uint8_t src[C * HW];
	float out[C * HW];
	struct isif_augment a;
	struct isif_rng r;
	fill_random_u8(src, sizeof src, 6, 0, 255);
	aug_off(&a, H, W);
	a.grayscale = 1.0f;
	isif_rng_seed(&r, 3, 3);
	isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
	for (int p = 0; p < HW; p++) {
		double want = (0.2989 * src[p] + 0.587 * src[HW + p] + 0.114 * src[2 * HW + p]) / 255.0;
		CHECK_NEAR(out[p], want, 1e-6);
		CHECK(out[HW + p] == out[p] && out[2 * HW + p] == out[p]);
	}
}

TEST(augment_one_channel_noops)
{
	enum { H = 4, W = 6, HW = H * W };
	uint8_t src[HW];
	float out[HW], x[HW], y[HW];
	struct isif_augment a;
	struct isif_rng r1, r3;
	fill_random_u8(src, sizeof src, 7, 0, 255);
	for (int k = 0; k < HW; k++)
		x[k] = y[k] = src[k] / 255.0f;
	isif_adjust_saturation(x, 1, HW, 1.7f);
	isif_adjust_hue(x, 1, HW, 0.3f);
	isif_to_grayscale(x, 1, HW);
	CHECK(memcmp(x, y, sizeof x) == 0);

	/* Through the pipeline: only saturation, hue and grayscale (p 1) on. */
	aug_off(&a, H, W);
	a.saturation = 0.4f;
	a.hue = 0.4f;
	a.grayscale = 1.0f;
	a.jitter_p = 1.0f;
	isif_rng_seed(&r1, 9, 9);
	isif_augment_apply(out, src, 1, H, W, &a, &r1, NULL);
	CHECK(memcmp(out, y, sizeof out) == 0);
	/* The draws are the same as for 3 channels, so the stream does not depend on c. */
	uint8_t src3[3 * HW];
	float out3[3 * HW];
	fill_random_u8(src3, sizeof src3, 7, 0, 255);
	isif_rng_seed(&r3, 9, 9);
	isif_augment_apply(out3, src3, 3, H, W, &a, &r3, NULL);
	CHECK(r1.state == r3.state);
}

TEST(augment_jitter_off_draws_nothing)
{
	enum { C = 3, H = 3, W = 3 };
	uint8_t src[C * H * W];
	float out[C * H * W];
	struct isif_augment a;
	struct isif_rng r, before;
	fill_random_u8(src, sizeof src, 8, 0, 255);
	aug_off(&a, H, W);
	a.brightness = 0.4f;
	a.jitter_p = 0.0f; /* strengths on but probability 0 */
	isif_rng_seed(&r, 4, 4);
	before = r;
	isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
	CHECK(r.state == before.state);
	for (int k = 0; k < C * H * W; k++)
		CHECK(out[k] == src[k] / 255.0f);
}

/*
 * The composition: replay the documented draw order with the public rng
 * (permutation by Fisher–Yates, then factors b, c, s, h) and the individual
 * ops (each checked by hand above), and compare with the pipeline.
 */
TEST(augment_jitter_composition)
{
	enum { C = 3, H = 4, W = 4, HW = H * W };
	uint8_t src[C * HW];
	float out[C * HW], ref[C * HW];
	struct isif_augment a;
	fill_random_u8(src, sizeof src, 9, 0, 255);
	aug_off(&a, H, W);
	a.brightness = 0.4f;
	a.contrast = 0.3f;
	a.saturation = 0.0f; /* off: not drawn */
	a.hue = 0.2f;
	a.jitter_p = 1.0f;
	int orders_seen = 0;
	for (uint64_t seed = 1; seed <= 12; seed++) {
		struct isif_rng r, q;
		isif_rng_seed(&r, seed, 0);
		q = r;
		isif_augment_apply(out, src, C, H, W, &a, &r, NULL);

		int32_t order[4] = { 0, 1, 2, 3 };
		isif_rng_shuffle(&q, order, 4);
		/* Bounds 1 ∓ strength of the float strengths, as the pipeline sees them. */
		float fb = (float)isif_rng_range(&q, 1.0 - a.brightness, 1.0 + a.brightness);
		float fc = (float)isif_rng_range(&q, 1.0 - a.contrast, 1.0 + a.contrast);
		float fh = (float)isif_rng_range(&q, -a.hue, a.hue);
		for (int k = 0; k < C * HW; k++)
			ref[k] = src[k] / 255.0f;
		for (int k = 0; k < 4; k++) {
			if (order[k] == 0)
				isif_adjust_brightness(ref, C, HW, fb);
			else if (order[k] == 1)
				isif_adjust_contrast(ref, C, HW, fc);
			else if (order[k] == 3)
				isif_adjust_hue(ref, C, HW, fh);
		}
		CHECK_MSG(memcmp(out, ref, sizeof out) == 0, "seed %d", (int)seed);
		CHECK(r.state == q.state);
		orders_seen |= 1 << (order[0] * 4 + order[1]);
	}
	/* Different seeds give different orders. */
	CHECK(__builtin_popcount((unsigned)orders_seen) >= 3);
}

TEST(augment_normalize)
{
	/* (x − mean)/std per channel: pixel values 0, 255, 51 → 0, 1, 0.2;
	 * mean (.5, .25, .2), std (.5, .25, .1) → −1, 3, 0. */
	const uint8_t src[3] = { 0, 255, 51 };
	const float m[3] = { 0.5f, 0.25f, 0.2f }, s[3] = { 0.5f, 0.25f, 0.1f };
	float out[3];
	struct isif_augment a;
	struct isif_rng r;
	isif_augment_none(&a, 1, 1, m, s);
	isif_rng_seed(&r, 1, 1);
	isif_augment_apply(out, src, 3, 1, 1, &a, &r, NULL);
	CHECK_NEAR(out[0], -1.0, 1e-6);
	CHECK_NEAR(out[1], 3.0, 1e-6);
	CHECK_NEAR(out[2], 0.0, 1e-6);
}

TEST(augment_jitter_probability)
{
	/* RandomApply(ColorJitter, p = 0.3): one uniform per view, the jitter
	 * (brightness only here, a factor ≠ 1 almost surely) applies when u ≤ p. */
	enum { C = 1, H = 2, W = 2 };
	const uint8_t src[4] = { 40, 80, 120, 160 };
	float out[4];
	struct isif_augment a;
	struct isif_rng r;
	aug_off(&a, H, W);
	a.brightness = 0.4f;
	a.jitter_p = 0.3f;
	isif_rng_seed(&r, 12, 0);
	int applied = 0;
	for (int v = 0; v < 400; v++) {
		isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
		applied += out[0] != src[0] / 255.0f;
	}
	/* Binomial(400, 0.3): mean 120, sd 9.2; ±50 is > 5 sd. */
	CHECK(applied > 70 && applied < 170);
}

/* ---- the paper's second setting: random crop of a stored image, centre
 * crop at evaluation (augment.random_crop) ------------------------------- */

/* Whether out (c×oh×ow, 0..1 scale, unnormalised) is src's window at (top, left). */
static int is_window(const float *out, const uint8_t *src, int c, int h, int w, int oh, int ow,
		     int top, int left)
{
	for (int k = 0; k < c; k++)
		for (int y = 0; y < oh; y++)
			for (int x = 0; x < ow; x++)
				if (out[((size_t)k * oh + y) * ow + x] !=
				    src[((size_t)k * h + top + y) * w + left + x] / 255.0f)
					return 0;
	return 1;
}

TEST(augment_center_crop_exact)
{
	/* torchvision CenterCrop: top = round((h − oh) / 2), half to even:
	 * (25 − 20) / 2 = 2.5 → 2, (30 − 23) / 2 = 3.5 → 4, 256 → 227: 14.5 → 14 */
	enum { C = 3, H = 25, W = 30, OH = 20, OW = 23 };
	uint8_t src[C * H * W];
	float out[C * OH * OW];
	fill_random_u8(src, sizeof src, 31, 0, 255);
	struct isif_augment a;
	isif_augment_center(&a, OH, OW, zero3, one3);
	struct isif_rng r, r0;
	isif_rng_seed(&r, 1, 2);
	r0 = r;
	isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
	CHECK(is_window(out, src, C, H, W, OH, OW, 2, 4));
	CHECK(memcmp(&r, &r0, sizeof r) == 0); /* nothing random drawn */
	/* 256 → 227 on one channel: the window at (14, 14) */
	uint8_t *big = malloc(256 * 256);
	float *view = malloc(sizeof(float) * 227 * 227);
	fill_random_u8(big, 256 * 256, 32, 0, 255);
	isif_augment_center(&a, 227, 227, zero3, one3);
	isif_augment_apply(view, big, 1, 256, 256, &a, &r, NULL);
	CHECK(is_window(view, big, 1, 256, 256, 227, 227, 14, 14));
	free(big);
	free(view);
}

TEST(augment_random_crop_is_a_window_and_varies)
{
	enum { C = 3, H = 40, W = 36, O = 32 };
	uint8_t src[C * H * W];
	float out[C * O * O];
	fill_random_u8(src, sizeof src, 33, 0, 255);
	struct isif_augment a;
	isif_augment_none(&a, O, O, zero3, one3);
	a.fit = ISIF_FIT_RANDOM_CROP;
	a.crop = true; /* ignored: the random crop replaces RandomResizedCrop */
	struct isif_rng r;
	isif_rng_seed(&r, 4, 5);
	int seen[H - O + 1][W - O + 1];
	memset(seen, 0, sizeof seen);
	for (int t = 0; t < 200; t++) {
		struct isif_rng before = r;
		isif_augment_apply(out, src, C, H, W, &a, &r, NULL);
		/* the window torchvision's RandomCrop.get_params draws: randint(top), randint(left) */
		int top = (int)isif_rng_below(&before, H - O + 1);
		int left = (int)isif_rng_below(&before, W - O + 1);
		CHECK(memcmp(&before, &r, sizeof r) == 0);
		CHECK_MSG(is_window(out, src, C, H, W, O, O, top, left), "try %d", t);
		seen[top][left] = 1;
	}
	int distinct = 0;
	for (int i = 0; i <= H - O; i++)
		for (int j = 0; j <= W - O; j++)
			distinct += seen[i][j];
	CHECK_MSG(distinct > 30, "only %d of %d windows", distinct, (H - O + 1) * (W - O + 1));
}
