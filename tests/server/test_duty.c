/*
 * tests/server/test_duty.c — the arithmetic of the search threads' CPU
 * policy (server/duty.c): the rest before the next pass for given passes
 * and share, its fixed point under a steady flood, the window's horizon
 * and ring, and the cases that never rest (no cap, a share the passes
 * stay under, an empty window).
 */
#include "../unit/check.h"

#include "duty.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

TEST(srv_duty_rest_keeps_the_share)
{
	struct duty_window w;
	duty_init(&w, 1.0);
	CHECK(NEAR(duty_sleep_s(&w, 10.0, 0.35), 0));   /* empty: no rest */
	CHECK(NEAR(duty_share(&w, 10.0), 0));
	/* one pass from 10.0 to 10.01 costing 10 ms of CPU: at share 0.25 the
	 * next may start at 10.04 (10 ms busy out of 40 ms) */
	duty_add(&w, 10.0, 0.010);
	CHECK(NEAR(duty_sleep_s(&w, 10.01, 0.25), 0.03));
	CHECK(NEAR(duty_share(&w, 10.01), 1.0));
	/* idle that came by itself counts: at 10.03 only 10 ms more */
	CHECK(NEAR(duty_sleep_s(&w, 10.03, 0.25), 0.01));
	CHECK(NEAR(duty_sleep_s(&w, 10.05, 0.25), 0));
	/* a second pass: 20 ms busy since 10.0, at share 0.5 → until 10.04 */
	duty_add(&w, 10.02, 0.010);
	CHECK(NEAR(duty_sleep_s(&w, 10.03, 0.5), 0.01));
	CHECK(NEAR(duty_share(&w, 10.04), 0.5));
}

TEST(srv_duty_no_cap_never_rests)
{
	struct duty_window w;
	duty_init(&w, 1.0);
	for (int i = 0; i < 10; i++)
		duty_add(&w, 1.0 + 0.01 * i, 0.01);   /* flat out: 100 ms busy in 100 ms */
	CHECK(NEAR(duty_sleep_s(&w, 1.1, 0), 0));    /* 0: disabled */
	CHECK(NEAR(duty_sleep_s(&w, 1.1, -1), 0));
	CHECK(NEAR(duty_sleep_s(&w, 1.1, 1.0), 0));  /* one core: never above it */
	CHECK(NEAR(duty_sleep_s(&w, 1.1, 4.0), 0));
	CHECK(duty_sleep_s(&w, 1.1, 0.5) > 0.09);
}

TEST(srv_duty_steady_flood_converges_to_the_share)
{
	/* the dispatcher's loop: rest as told, then a pass of 2 ms CPU (wall
	 * as long); the rest settles at c / share − c and the share used over
	 * the window at the share */
	for (int share_pct = 10; share_pct <= 90; share_pct += 40) {
		double share = share_pct / 100.0, now = 0, c = 0.002, last = 0;
		struct duty_window w;
		duty_init(&w, 1.0);
		for (int i = 0; i < 500; i++) {
			last = duty_sleep_s(&w, now, share);
			now += last;
			duty_add(&w, now, c);
			now += c;
		}
		CHECK_MSG(fabs(last - (c / share - c)) < 1e-9, "share %.2f: rest %.6f", share, last);
		CHECK_MSG(fabs(duty_share(&w, now + last) - share) < 1e-6, "share %.2f: used %.6f",
			  share, duty_share(&w, now + last));
	}
}

TEST(srv_duty_window_edges)
{
	struct duty_window w;
	duty_init(&w, 0.5);
	duty_add(&w, 0.0, 0.2);
	CHECK(NEAR(duty_sleep_s(&w, 0.2, 0.25), 0.6));
	/* past the horizon the pass is forgotten: no rest, however large */
	CHECK(NEAR(duty_sleep_s(&w, 0.51, 0.25), 0));
	CHECK(NEAR(duty_share(&w, 0.51), 0));
	/* a full ring drops its oldest pass: 40 passes of 1 ms, 1 ms apart;
	 * the window holds the last DUTY_PASSES of them */
	duty_init(&w, 1.0);
	for (int i = 0; i < 40; i++)
		duty_add(&w, 0.001 * i, 0.001);
	double oldest = 0.001 * (40 - DUTY_PASSES), now = 0.040;
	CHECK(NEAR(duty_share(&w, now), DUTY_PASSES * 0.001 / (now - oldest)));
	CHECK(NEAR(duty_sleep_s(&w, now, 0.5), DUTY_PASSES * 0.001 / 0.5 - (now - oldest)));
	/* a negative cost (a clock glitch) counts as none */
	duty_init(&w, 1.0);
	duty_add(&w, 0.0, -1.0);
	CHECK(NEAR(duty_sleep_s(&w, 0.001, 0.1), 0));
	/* a zero horizon takes the default of one second */
	duty_init(&w, 0);
	CHECK(NEAR(w.horizon_s, 1.0));
}
