/*
 * tests/browser/dashboard.mjs — the dashboard end to end in a real browser:
 * Debian's chromium (headless) driven by playwright-core against a real
 * isifd that tests/integration/dashboard.sh started. Prints one
 * "PASS name" / "FAIL name (why)" line per case and saves screenshots in
 * $OUT; exits 1 when any case failed.
 *
 * Environment: BASE (isifd without a token, one worker), TOKEN_BASE and
 * TOKEN (a second isifd started with --token-file), OUT (screenshot folder),
 * CHROMIUM (default /usr/bin/chromium).
 *
 * What the cases check is what a person would see: the form's error text
 * next to the field, rows appearing and changing state, the chart's points
 * (the plot's data-points attribute lists "job:points" for each plotted job
 * and the legend shows the series), the neighbour images actually decoded
 * (naturalWidth > 0).
 */
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.BASE;
const TOKEN_BASE = process.env.TOKEN_BASE;
const TOKEN = process.env.TOKEN;
const OUT = process.env.OUT || 'build/test-output/dashboard';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SLOW = Number(process.env.SLOW || 1);
const K = 10;

mkdirSync(OUT, { recursive: true });
let failures = 0;
const results = new Map();

function report(name, ok, why) {
	results.set(name, ok);
	if (ok) {
		console.log(`PASS ${name}`);
	} else {
		failures++;
		console.log(`FAIL ${name}${why ? ` (${String(why).split('\n')[0].slice(0, 300)})` : ''}`);
	}
	return ok;
}

/* Runs one case; a thrown error or a false return is a failure. */
async function step(name, fn) {
	try {
		const r = await fn();
		return report(name, r !== false, r === false ? 'check false' : '');
	} catch (e) {
		return report(name, false, e.message);
	}
}

const seconds = (s) => s * 1000 * SLOW;
const shot = (page, file) => page.screenshot({ path: join(OUT, file), fullPage: true });

/* {job: points} from a plot's data-points attribute ("1:3,2:1"). */
async function points(page, chart) {
	const s = await page.getAttribute(`#${chart} .plot`, 'data-points');
	return Object.fromEntries((s || '').split(',').filter(Boolean).map((p) => p.split(':').map(Number)));
}

async function waitPoints(page, chart, job, n, timeoutS) {
	await page.waitForFunction(([c, j, want]) => {
		const s = document.querySelector(`#${c} .plot`).dataset.points || '';
		const m = s.split(',').map((p) => p.split(':').map(Number)).find(([id]) => id === j);
		return m && m[1] >= want;
	}, [chart, job, n], { timeout: seconds(timeoutS) });
}

async function fillForm(page, f) {
	await page.selectOption('#f-dataset', 'fashion-mnist');
	await page.selectOption('#f-model', f.model);
	for (const [sel, v] of [['#f-epochs', f.epochs], ['#f-batch', f.batch], ['#f-lr', f.lr],
		['#f-seed', f.seed], ['#f-subset', f.subset], ['#f-knn', f.knn]])
		await page.fill(sel, String(v));
}

async function rowState(page, id) {
	return page.getAttribute(`#jobs-table tr[data-job="${id}"]`, 'data-status');
}

async function waitState(page, id, states, timeoutS) {
	await page.waitForFunction(([i, want]) => {
		const tr = document.querySelector(`#jobs-table tr[data-job="${i}"]`);
		return tr && want.includes(tr.dataset.status);
	}, [id, states], { timeout: seconds(timeoutS) });
}

/* ---- the pure helpers, in node (web/js/util.js and chart.js's align) --------- */
await step('dashboard_smoothing_math', async () => {
	const { smooth } = await import('../../web/js/util.js');
	/* By hand, w = 0.5: m1 = 0.5·1 = 0.5, debiased 0.5 / (1 − 0.5) = 1;
	 * the null stays null and does not count; m2 = 0.5·0.5 + 0.5·3 = 1.75,
	 * debiased 1.75 / (1 − 0.25) = 2.3333. */
	const got = smooth([1, null, 3], 0.5);
	if (got[0] !== 1 || got[1] !== null || Math.abs(got[2] - 7 / 3) > 1e-12)
		throw new Error(JSON.stringify(got));
	if (JSON.stringify(smooth([2, 5, null], 0)) !== '[2,5,null]')
		throw new Error('w = 0 changed the values');
});

await step('dashboard_align_and_csv', async () => {
	const { metricsCsv } = await import('../../web/js/util.js');
	globalThis.ResizeObserver ??= class {};
	const { align } = await import('../../web/js/chart.js');
	const series = [{ job: 1, rows: [{ epoch: 1, loss: 5 }, { epoch: 3, loss: 4, knn_top1: null }] },
		{ job: 2, rows: [{ epoch: 2, loss: 6, knn_top1: 0.5, probe_top1: 0.75 }] }];
	const a = align(series, 'loss');
	if (JSON.stringify(a) !== '{"xs":[1,2,3],"raw":[[5,null,4],[null,6,null]]}')
		throw new Error(JSON.stringify(a));
	const csv = metricsCsv(series);
	const want = 'job,epoch,loss,knn_top1,knn_top5,lr,seconds,images_per_sec,probe_top1,probe_backbone_top1\r\n' +
		'1,1,5,,,,,,,\r\n1,3,4,,,,,,,\r\n2,2,6,0.5,,,,,0.75,\r\n';
	if (csv !== want)
		throw new Error(JSON.stringify(csv));
});

await step('dashboard_log_ticks_math', async () => {
	const { logTicks } = await import('../../web/js/chart.js');
	/* A loss from 6.2 to 4.9 with the plot's 4% margin: less than a decade,
	 * so evenly spaced steps (uPlot's own log ticks gave 5 and 6 only). */
	const lo = 4.9 / 1.04, hi = 6.2 * 1.04;
	const t = logTicks(lo, hi);
	if (t.length < 4 || t.length > 10 || t.some((v) => v < lo || v > hi))
		throw new Error('sub-decade ticks ' + JSON.stringify(t));
	/* Several decades: 1-2-5 steps, the decades among them. */
	const w = logTicks(0.05, 80);
	if (w.length < 4 || w.length > 12 || !w.includes(1) || !w.includes(10) || w.some((v) => v < 0.05 || v > 80))
		throw new Error('multi-decade ticks ' + JSON.stringify(w));
});

await step('dashboard_spec_diff_math', async () => {
	const { specDiff } = await import('../../web/js/util.js');
	const a = { dataset: 'f', model: 'convnet', epochs: 3, lr: 0.03, classes: null,
		augment: { crop: true, hflip: 0.5 }, lr_schedule: { type: 'step', milestones: [2] } };
	const b = { ...a, epochs: 2, augment: { crop: true, hflip: 0 }, lr_schedule: { type: 'step', milestones: [3] } };
	const got = JSON.stringify(specDiff([a, b]));
	const want = JSON.stringify([{ field: 'epochs', values: ['3', '2'] }, { field: 'augment.hflip', values: ['0.5', '0'] },
		{ field: 'lr_schedule.milestones', values: ['[2]', '[3]'] }]);
	if (got !== want)
		throw new Error(got);
	if (specDiff([a, { ...a }]).length !== 0)
		throw new Error('equal specs differ');
});

await step('dashboard_estimate_math', async () => {
	const { estimateRunSeconds, EMBED_SPEEDUP } = await import('../../web/js/util.js');
	/* 10 000 images × 5 epochs at 2 500 images/s: 20 s of training; each
	 * epoch's evaluation embeds 10 000 train + 10 000 test images at
	 * EMBED_SPEEDUP × 2 500 images/s. */
	const s = estimateRunSeconds({ trainImages: 10000, testImages: 10000, epochs: 5, imagesPerSec: 2500 });
	const want = 20 + 5 * 20000 / (EMBED_SPEEDUP * 2500);
	if (Math.abs(s - want) > 1e-9)
		throw new Error(`${s} != ${want}`);
	if (estimateRunSeconds({ trainImages: 10000, testImages: 10000, epochs: 5, imagesPerSec: 0 }) !== null)
		throw new Error('no speed must give no estimate');
});

const browser = await chromium.launch({
	executablePath: CHROMIUM,
	headless: true,
	args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
}).catch((e) => {
	report('dashboard_browser_launch', false, e.message);
	process.exit(1);
});
report('dashboard_browser_launch', true);

const requests = [];      /* every URL any page asked for */
const pageErrors = [];    /* uncaught exceptions in the page */
async function newPage(opts = {}) {
	const ctx = await browser.newContext({ acceptDownloads: true, ...opts });
	const page = await ctx.newPage();
	page.on('request', (r) => requests.push(r.url()));
	page.on('pageerror', (e) => pageErrors.push(e.message));
	page.setDefaultTimeout(seconds(15));
	return page;
}

const page = await newPage({ viewport: { width: 1280, height: 900 } });

/* ---- the page loads, every control is labelled, keyboard works ------------- */
await step('dashboard_loads', async () => {
	await page.goto(BASE + '/');
	await page.waitForSelector('#f-dataset option[value="fashion-mnist"]', { state: 'attached' });
	await page.waitForFunction(() => document.getElementById('live').textContent.includes('live'));
	await page.waitForSelector('#jobs-empty:not([hidden])');
	await shot(page, '01-jobs-empty-1280.png');
});

await step('dashboard_controls_labelled', async () => {
	const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button, textarea')]
		.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
			!e.getAttribute('aria-labelledby') && !e.textContent.trim())
		.map((e) => e.outerHTML.slice(0, 80)));
	if (unlabelled.length)
		throw new Error('unlabelled: ' + unlabelled.join(' | '));
});

await step('dashboard_keyboard', async () => {
	/* Focus order: skip link, then the four views, then the token button. */
	await page.evaluate(() => document.activeElement && document.activeElement.blur());
	const order = [];
	for (let i = 0; i < 6; i++) {
		await page.keyboard.press('Tab');
		order.push(await page.evaluate(() => document.activeElement.textContent.trim()));
	}
	const want = ['Skip to content', 'Jobs', 'Learning curves', 'Groups', 'Neighbours', 'Token…'];
	if (JSON.stringify(order) !== JSON.stringify(want))
		throw new Error('tab order ' + JSON.stringify(order));
	/* Enter on a view link switches the view and lands on its heading. */
	await page.focus('nav a[data-view="curves"]');
	await page.keyboard.press('Enter');
	await page.waitForFunction(() => !document.getElementById('view-curves').hidden &&
		document.activeElement.id === 'curves-h');
	await page.focus('nav a[data-view="jobs"]');
	await page.keyboard.press('Enter');
	await page.waitForFunction(() => document.activeElement.id === 'jobs-h');
});

/* ---- the form's defaults are a quick run, with an estimate ----------------- */
/* The estimate's seconds, from the element's data-seconds. */
const estimate = async (p) => Number(await p.getAttribute('#form-estimate', 'data-seconds'));

await step('dashboard_form_defaults_quick_run', async () => {
	const v = await page.evaluate(() => ['f-model', 'f-epochs', 'f-subset'].map((id) => document.getElementById(id).value));
	if (JSON.stringify(v) !== '["convnet","5","10000"]')
		throw new Error('defaults model, epochs, subset = ' + JSON.stringify(v));
	await page.waitForFunction(() => Number(document.getElementById('form-estimate').dataset.seconds) > 0);
	const text = await page.textContent('#form-estimate');
	/* No job has run on this daemon yet: the reference figure, said so. */
	if (!/≈\s*\d+\s*(s|min)\b/.test(text) || !/reference/.test(text))
		throw new Error('estimate: ' + text);
	const base = await estimate(page);
	if (!(base < 300))
		throw new Error(`the default run is not quick: ${base} s`);
	await page.fill('#f-epochs', '50');
	const ten = await estimate(page);
	await page.selectOption('#f-model', 'resnet18');
	const big = await estimate(page);
	const bigText = await page.textContent('#form-estimate');
	await shot(page, '01a-form-estimate-resnet18.png');
	await page.selectOption('#f-model', 'convnet');
	await page.fill('#f-epochs', '5');
	if (Math.abs(ten / base - 10) > 1e-6)
		throw new Error(`10× the epochs gave ${ten} s against ${base} s`);
	if (!(big > 10 * ten) || !/h\b/.test(bigText))
		throw new Error(`resnet18, 50 epochs: ${big} s, "${bigText}"`);
});

/* ---- the "unreachable" banner lasts as long as the outage -------------------- */
await step('dashboard_banner_clears_after_outage', async () => {
	const isList = (u) => u.pathname === '/jobs';
	let down = 'http503';
	const handler = (r) => (down === 'http503'
		? r.fulfill({ status: 503, contentType: 'application/json',
			body: '{"error": {"code": "unavailable", "message": "database unreachable"}}' })
		: r.abort('connectionrefused'));
	await page.route(isList, handler);
	await page.waitForSelector('#banner:not([hidden])', { timeout: seconds(10) });
	const first = await page.textContent('#banner');
	const live = await page.textContent('#live');
	await shot(page, '01b-banner-outage.png');
	/* The daemon gone altogether: the banner says so. */
	down = 'abort';
	await page.waitForFunction(() => /unreachable: /.test(document.getElementById('banner').textContent),
		null, { timeout: seconds(10) });
	const back = page.waitForResponse((r) => new URL(r.url()).pathname === '/jobs' && r.status() === 200,
		{ timeout: seconds(15) });
	await page.unroute(isList, handler);
	await back;
	/* The daemon answered: the banner goes now (it used to stay 15 s). */
	const gone = await page.waitForSelector('#banner', { state: 'hidden', timeout: seconds(2) })
		.then(() => true, () => false);
	const after = await page.textContent('#banner');
	if (!first.includes('database unreachable') || live !== 'daemon unreachable')
		throw new Error(`during the outage: banner "${first}", indicator "${live}"`);
	if (!gone)
		throw new Error(`banner still shown after the daemon answered: "${after}"`);
	await page.waitForFunction(() => document.getElementById('live').textContent.includes('live'));
});

/* ---- an error next to a field moves nothing else ----------------------------- */
/* Where every label, input, select, legend and button of the form is,
 * relative to the form (a click or a focus may scroll the page; that moves
 * nothing inside the form). */
async function formBoxes(p) {
	return p.$$eval('#submit-form :is(label, input, select, legend, button, fieldset)', (ns) => ns.map((n) => {
		const b = n.getBoundingClientRect();
		const f = document.getElementById('submit-form').getBoundingClientRect();
		return `${n.id || n.tagName + ':' + n.textContent.trim().slice(0, 14)} ` +
			`${(b.x - f.x).toFixed(1)},${(b.y - f.y).toFixed(1)} ${b.width.toFixed(1)}×${b.height.toFixed(1)}`;
	}));
}

/* Submits the form with one field bad and checks its message: present,
 * inside the form, over no control, and every control where it was. */
async function errorKeepsLayout(p, sel, bad, errId, file) {
	const good = await p.inputValue(sel);
	const before = await formBoxes(p);
	if (bad.option)
		await p.$eval(sel, (s, v) => { s.append(new Option(v, v)); s.value = v; }, bad.option);
	else
		await p.fill(sel, bad.value);
	await p.click('#submit-form button[type=submit]');
	await p.waitForSelector(errId);
	const after = await formBoxes(p);
	const moved = before.filter((b, i) => b !== after[i]);
	const geo = await p.$eval(errId, (e) => {
		const r = e.getBoundingClientRect(), f = document.getElementById('submit-form').getBoundingClientRect();
		const over = [...document.querySelectorAll('#submit-form :is(input, select, button)')].filter((c) => {
			const b = c.getBoundingClientRect();
			return b.width > 0 && r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom;
		}).map((c) => c.id || c.textContent.trim());
		return { inside: r.left >= f.left && r.right <= f.right && r.top >= f.top && r.bottom <= f.bottom,
			visible: r.width > 0 && r.height > 0, over, text: e.textContent,
			pageWide: document.documentElement.scrollWidth > window.innerWidth };
	});
	if (file)
		await shot(p, file);
	if (bad.option)
		await p.$eval(sel, (s, v) => { s.querySelector(`option[value="${v}"]`).remove(); }, bad.option);
	await p.fill(sel, good).catch(() => p.selectOption(sel, good));
	if (moved.length)
		throw new Error(`${errId} moved ${moved.length} controls: ${moved[0]} → ${after[before.indexOf(moved[0])]}`);
	if (!geo.visible || !geo.inside || geo.over.length || geo.pageWide)
		throw new Error(`${errId} "${geo.text}": inside the form ${geo.inside}, over ${geo.over.join(' ')}, page wider ${geo.pageWide}`);
}

await step('dashboard_form_error_keeps_layout', async () => {
	await fillForm(page, { model: 'convnet', epochs: 2, batch: 64, lr: 0.03, seed: 1, subset: 512, knn: 20 });
	/* The first row's middle, its right end (τ), the second row, and a
	 * dataset the daemon does not know (an option the page did not offer). */
	await errorKeepsLayout(page, '#f-epochs', { value: '0' }, '#f-epochs-err', '02a-form-error-layout.png');
	await errorKeepsLayout(page, '#f-tau', { value: '0' }, '#f-tau-err', '02b-form-error-right-edge.png');
	await errorKeepsLayout(page, '#f-knn', { value: '0' }, '#f-knn-err');
	await errorKeepsLayout(page, '#f-dataset', { option: 'no-such-dataset' }, '#f-dataset-err', '02c-form-error-dataset.png');
	/* And on a phone. */
	const ph = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
	await ph.goto(BASE + '/');
	await ph.waitForSelector('#f-dataset option[value="fashion-mnist"]', { state: 'attached' });
	await errorKeepsLayout(ph, '#f-epochs', { value: '0' }, '#f-epochs-err', '02d-form-error-phone.png');
	await errorKeepsLayout(ph, '#f-batch', { value: '1' }, '#f-batch-err');
	await ph.context().close();
	if (await page.$('#jobs-table tr[data-job]'))
		throw new Error('a job was created');
});

/* ---- the form: the API's validation error next to the field ------------------ */
await step('dashboard_form_validation_error', async () => {
	await fillForm(page, { model: 'convnet', epochs: 0, batch: 64, lr: 0.03, seed: 1, subset: 512, knn: 20 });
	await page.click('#submit-form button[type=submit]');
	await page.waitForSelector('#f-epochs-err');
	const text = await page.textContent('#f-epochs-err');
	const invalid = await page.getAttribute('#f-epochs', 'aria-invalid');
	const described = await page.getAttribute('#f-epochs', 'aria-describedby');
	const focused = await page.evaluate(() => document.activeElement.id);
	await shot(page, '02-form-validation-error.png');
	if (!/^epochs: must be/.test(text) || invalid !== 'true' || described !== 'f-epochs-err' || focused !== 'f-epochs')
		throw new Error(`error "${text}", aria-invalid ${invalid}, describedby ${described}, focus ${focused}`);
	if (await page.$('#jobs-table tr[data-job]'))
		throw new Error('a job was created');
});

await step('dashboard_form_nested_field_error', async () => {
	/* A nested path (eval.knn_k) lands next to its own input. */
	await fillForm(page, { model: 'convnet', epochs: 2, batch: 64, lr: 0.03, seed: 1, subset: 512, knn: 0 });
	await page.click('#submit-form button[type=submit]');
	await page.waitForSelector('#f-knn-err');
	const text = await page.textContent('#f-knn-err');
	if (!text.startsWith('eval.knn_k:') || await page.$('#f-epochs-err'))
		throw new Error(`knn error "${text}"`);
});

/* ---- submit two jobs; the first one's curve grows live ----------------------- */
const submitted = await step('dashboard_submit_job', async () => {
	await fillForm(page, { model: 'convnet', epochs: 3, batch: 64, lr: 0.03, seed: 1, subset: 512, knn: 20 });
	await page.click('#submit-form button[type=submit]');
	await page.waitForSelector('#jobs-table tr[data-job="1"]');
	await page.waitForFunction(() => /Job 1 submitted/.test(document.getElementById('form-status').textContent));
	if (await page.$('.field-err'))
		throw new Error('error shown after a valid submit');
	const cells = await page.$$eval('#jobs-table tr[data-job="1"] > *', (cs) => cs.map((c) => c.textContent.trim()));
	if (cells[3] !== 'fashion-mnist' || cells[4] !== 'convnet' || !cells[5].endsWith('/ 3'))
		throw new Error('row ' + JSON.stringify(cells));
	/* The second job waits in the queue behind the first (one worker). */
	await fillForm(page, { model: 'convnet', epochs: 2, batch: 64, lr: 0.06, seed: 2, subset: 512, knn: 20 });
	await page.click('#submit-form button[type=submit]');
	await page.waitForSelector('#jobs-table tr[data-job="2"]');
});

await step('dashboard_live_progress_sse', async () => {
	if (!submitted)
		throw new Error('no job submitted');
	await waitState(page, 1, ['running'], 30);
	/* Progress events draw the epoch bar and fill images/s and ETA. */
	await page.waitForSelector('#jobs-table tr[data-job="1"] progress', { timeout: seconds(30) });
	/* ...with the phase the job is in beside the bar. */
	const phase = (await page.textContent('#jobs-table tr[data-job="1"] .phase') || '').trim();
	if (phase !== 'training' && phase !== 'evaluating')
		throw new Error(`phase beside the epoch bar: "${phase}"`);
	/* The stream may still be connecting when the first row is drawn (from
	 * the job list): the indicator must turn live within a few seconds. */
	await page.waitForFunction(() => document.getElementById('live').textContent === 'live (SSE)',
		null, { timeout: seconds(10) }).catch(async () => {
		throw new Error('indicator: ' + await page.textContent('#live'));
	});
	if (!requests.some((u) => u.includes('/jobs/1/events')))
		throw new Error('no EventSource on /jobs/1/events');
	await shot(page, '03-jobs-running.png');
});

const grew = await step('dashboard_curve_grows', async () => {
	await page.check('#jobs-table tr[data-job="1"] input[type=checkbox]');
	await page.click('nav a[data-view="curves"]');
	await waitPoints(page, 'chart-loss', 1, 1, 45);
	const first = (await points(page, 'chart-loss'))[1];
	await shot(page, '04-curve-first-epoch.png');
	await waitPoints(page, 'chart-loss', 1, 2, 45);
	await waitPoints(page, 'chart-top1', 1, 2, 30);
	await shot(page, '05-curve-two-epochs.png');
	if (first !== 1)
		throw new Error(`first seen with ${first} points, so it did not grow live`);
	/* Same page, no reload: the rows came from the event stream or polling. */
});

/* The similarity figure follows the newest evaluated epoch; its slider picks
 * an earlier one. 10000 test images: 200000 sampled pairs of each kind. */
await step('dashboard_similarity_slider', async () => {
	if (!grew)
		throw new Error('no curve');
	await page.waitForFunction(() => Number(document.querySelector('#chart-sim .plot').dataset.epoch) >= 2,
		null, { timeout: seconds(30) });
	const pairs = await page.getAttribute('#chart-sim .plot', 'data-pairs');
	if (pairs !== '200000,200000')
		throw new Error(`pairs ${pairs}`);
	await page.$eval('#sim-epoch', (s) => {
		s.value = '0';
		s.dispatchEvent(new Event('input'));
	});
	await page.waitForFunction(() => document.querySelector('#chart-sim .plot').dataset.epoch === '1',
		null, { timeout: seconds(10) });
	const text = await page.textContent('#chart-sim .sim-summary');
	await shot(page, '05b-similarity-epoch-1.png');
	if (!/epoch 1: same class mean -?[0-9.]+ \(200000 pairs\)/.test(text) || (await page.textContent('#sim-epoch-out')) !== 'epoch 1')
		throw new Error(`summary "${text}"`);
});

/* ---- polling fallback: a second tab whose event streams are refused ---------- */
await step('dashboard_polling_fallback', async () => {
	const p2 = await newPage({ viewport: { width: 1280, height: 900 } });
	await p2.route('**/events*', (r) => r.abort());
	await p2.addInitScript(() => sessionStorage.setItem('isifd.compare', '[1,2]'));
	await p2.goto(BASE + '/#curves');
	await waitState(p2, 2, ['running'], 60);
	await p2.waitForFunction(() => document.getElementById('live').textContent === 'polling',
		null, { timeout: seconds(10) });
	const before = (await points(p2, 'chart-loss'))[2] || 0;
	await waitPoints(p2, 'chart-loss', 2, before + 1, 45);
	await p2.context().close();
});

const overlaid = await step('dashboard_overlay_two_jobs', async () => {
	if (!grew)
		throw new Error('first curve missing');
	await page.click('nav a[data-view="jobs"]');
	await page.check('#jobs-table tr[data-job="2"] input[type=checkbox]');
	await page.click('nav a[data-view="curves"]');
	await waitState(page, 2, ['succeeded'], 60);
	await waitPoints(page, 'chart-loss', 2, 2, 10);
	const pts = await points(page, 'chart-loss');
	const legend = await page.textContent('#chart-loss .u-legend');
	await page.check('#c-raw');
	await shot(page, '06-overlay-two-jobs.png');
	if (pts[1] !== 3 || pts[2] !== 2 || !legend.includes('job 1') || !legend.includes('job 2'))
		throw new Error(`points ${JSON.stringify(pts)}, legend "${legend}"`);
});

await step('dashboard_compare_shows_differences', async () => {
	if (!overlaid)
		throw new Error('no overlay');
	await page.waitForSelector('#compare-diff:not([hidden])');
	const head = await page.$$eval('#compare-diff thead th', (t) => t.map((c) => c.textContent.trim()));
	const rows = await page.$$eval('#compare-diff tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent.trim())));
	const by = Object.fromEntries(rows.map((r) => [r[0], r.slice(1).join(' | ')]));
	await shot(page, '06b-compare-differences.png');
	/* Job 1: 3 epochs, lr 0.03, seed 1; job 2: 2 epochs, lr 0.06, seed 2. */
	if (JSON.stringify(head.slice(1)) !== '["job 1","job 2"]' || by.epochs !== '3 | 2' || by.lr !== '0.03 | 0.06' ||
	    by.seed !== '1 | 2' || 'batch_size' in by || 'model' in by || 'dataset' in by)
		throw new Error(`head ${JSON.stringify(head)}, rows ${JSON.stringify(rows)}`);
});

await step('dashboard_hover_readout', async () => {
	const over = await page.$('#chart-top1 .u-over');
	const box = await over.boundingBox();
	await page.mouse.move(box.x + box.width - 3, box.y + box.height / 2);
	await page.waitForFunction(() => [...document.querySelectorAll('#chart-top1 .u-legend .u-series')]
		.some((s) => s.textContent.includes('job 1') && /\d+\.\d%/.test(s.textContent)));
	const legend = await page.textContent('#chart-top1 .u-legend');
	await shot(page, '07-hover-readout.png');
	if (!/epoch\s*3/.test(legend))
		throw new Error('legend at the right edge: ' + legend);
});

await step('dashboard_log_axis_and_smoothing', async () => {
	if (await page.getAttribute('#chart-loss .plot', 'data-log') !== 'true')
		throw new Error('loss axis not logarithmic by default');
	await page.uncheck('#c-log');
	if (await page.getAttribute('#chart-loss .plot', 'data-log') !== 'false')
		throw new Error('log toggle ignored');
	await page.check('#c-log');
	const slide = (v) => page.$eval('#c-smooth', (e, x) => {
		e.value = x;
		e.dispatchEvent(new Event('input', { bubbles: true }));
	}, v);
	/* Three epochs are a short run: no smoothing by default (auto). */
	if (!(await page.isChecked('#c-smooth-auto')) || await page.textContent('#c-smooth-out') !== '0.00')
		throw new Error('short runs: smoothing ' + await page.textContent('#c-smooth-out'));
	/* Raw on + smoothing > 0: a faint raw series beside each smoothed one. */
	await slide('0.6');
	if (await page.isChecked('#c-smooth-auto'))
		throw new Error('moving the slider left auto on');
	if (!(await page.textContent('#chart-loss .u-legend')).includes('job 1 raw'))
		throw new Error('no raw series');
	await page.uncheck('#c-raw');
	if ((await page.textContent('#chart-loss .u-legend')).includes('raw'))
		throw new Error('raw series still shown');
	await slide('0');
	if (await page.textContent('#c-smooth-out') !== '0.00')
		throw new Error('smoothing read-out');
	await slide('0.6');
	await page.check('#c-raw');
	await page.check('#c-smooth-auto');
	if (await page.textContent('#c-smooth-out') !== '0.00')
		throw new Error('auto again: ' + await page.textContent('#c-smooth-out'));
});

await step('dashboard_csv_download', async () => {
	const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#c-csv')]);
	const path = join(OUT, 'curves.csv');
	await dl.saveAs(path);
	const lines = readFileSync(path, 'utf8').trim().split(/\r?\n/);
	const jobsCol = lines.slice(1).map((l) => l.split(',')[0]).join(' ');
	if (lines[0] !== 'job,epoch,loss,knn_top1,knn_top5,lr,seconds,images_per_sec,probe_top1,probe_backbone_top1' ||
	    jobsCol !== '1 1 1 2 2')
		throw new Error(lines.join(' | '));
	const row = lines[1].split(',');
	if (!(Number(row[2]) > 0 && Number(row[3]) > 0 && Number(row[3]) <= 1))
		throw new Error('values ' + lines[1]);
});

await step('dashboard_estimate_measured', async () => {
	/* Jobs 1 and 2 (convnet on fashion-mnist) ran here: their speed is used. */
	await page.click('nav a[data-view="jobs"]');
	await page.selectOption('#f-model', 'convnet');
	await page.selectOption('#f-dataset', 'fashion-mnist');
	const text = await page.textContent('#form-estimate');
	if (!/measured/.test(text) || !/job [12]\b/.test(text) || !(await estimate(page) > 0))
		throw new Error('estimate: ' + text);
	/* No resnet18 job ran: back to the reference figure. */
	await page.selectOption('#f-model', 'resnet18');
	const other = await page.textContent('#form-estimate');
	await page.selectOption('#f-model', 'convnet');
	if (!/reference/.test(other))
		throw new Error('resnet18 estimate: ' + other);
});

/* ---- cancel and delete, each behind a confirmation --------------------------- */
await step('dashboard_cancel_delete', async () => {
	await page.click('nav a[data-view="jobs"]');
	await fillForm(page, { model: 'convnet', epochs: 40, batch: 64, lr: 0.03, seed: 3, subset: 512, knn: 20 });
	await page.click('#submit-form button[type=submit]');
	await page.waitForSelector('#jobs-table tr[data-job="3"]');
	await page.click('#jobs-table tr[data-job="3"] button:has-text("Cancel")');
	await page.waitForSelector('#confirm-dialog[open]');
	await shot(page, '08-confirm-cancel.png');
	await page.click('#confirm-yes');
	await waitState(page, 3, ['cancelled'], 30);
	/* "Keep it" keeps it. */
	await page.click('#jobs-table tr[data-job="3"] button:has-text("Delete")');
	await page.click('#confirm-dialog button[value="no"]');
	await page.waitForTimeout(500);
	if (!(await page.$('#jobs-table tr[data-job="3"]')))
		throw new Error('deleted without confirmation');
	await page.click('#jobs-table tr[data-job="3"] button:has-text("Delete")');
	await page.click('#confirm-yes');
	await page.waitForSelector('#jobs-table tr[data-job="3"]', { state: 'detached' });
	const r = await page.request.get(BASE + '/jobs/3');
	if (r.status() !== 404)
		throw new Error('GET /jobs/3 after delete: ' + r.status());
});

/* ---- neighbours ------------------------------------------------------------------ */
async function waitResults(p) {
	await p.waitForFunction((k) => {
		const imgs = [...document.querySelectorAll('#nb-result .nb-items li img')];
		return imgs.length === k && imgs.every((i) => i.complete && i.naturalWidth > 0);
	}, K, { timeout: seconds(40) }).catch(async (e) => {
		throw new Error((await p.textContent('#nb-status')) || e.message);
	});
}

/* Says plainly when the daemon lacks the retrieval endpoints (issue 5). */
async function requireRetrieval() {
	for (const path of ['/datasets/fashion-mnist/images/test/0', `/neighbors?image=test:0&k=1&job=1`]) {
		const r = await page.request.get(BASE + path);
		if (r.status() !== 200)
			throw new Error(`GET ${path} answered ${r.status()}: ${(await r.text()).slice(0, 120)}`);
	}
}

await step('dashboard_neighbors_test_image', async () => {
	await requireRetrieval();
	await page.click('nav a[data-view="neighbors"]');
	await page.selectOption('#nb-job', '1');
	await page.fill('#nb-k', String(K));
	await page.waitForFunction(() => {
		const imgs = [...document.querySelectorAll('#nb-grid img')];
		return imgs.length >= 12 && imgs.slice(0, 12).every((i) => i.complete && i.naturalWidth > 0);
	});
	await page.click('#nb-grid button[data-index="0"]');
	await waitResults(page);
	const same = await page.$$eval('#nb-result .nb.same', (n) => n.length);
	const sims = await page.$$eval('#nb-result .nb .sim', (n) => n.map((x) => Number(x.textContent.replace('sim ', ''))));
	const query = await page.textContent('#nb-result .query');
	await shot(page, '09-neighbors.png');
	if (!query.includes('test #0') || !query.includes('label 9'))
		throw new Error('query card: ' + query);
	if (same < 1 || sims.some((s, i) => !(s <= 1.0001 && (i === 0 || s <= sims[i - 1] + 1e-9))))
		throw new Error(`same-label ${same}, similarities ${sims}`);
});

await step('dashboard_neighbors_upload', async () => {
	const png = await page.request.get(BASE + '/datasets/fashion-mnist/images/test/1');
	if (png.status() !== 200)
		throw new Error('thumbnail: ' + png.status());
	await page.setInputFiles('#nb-file', { name: 'query.png', mimeType: 'image/png', buffer: await png.body() });
	/* The previous answer stays up until this one arrives. */
	await page.waitForFunction(() => (document.querySelector('#nb-result .query')?.textContent || '').includes('query.png'),
		null, { timeout: seconds(40) }).catch(() => {});
	await waitResults(page);
	const query = await page.textContent('#nb-result .query');
	if (!query.includes('query.png'))
		throw new Error('query card: ' + query);
});

/* ---- phone width --------------------------------------------------------------------- */
await step('dashboard_phone_width', async () => {
	const ph = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
	await ph.addInitScript(() => sessionStorage.setItem('isifd.compare', '[1,2]'));
	const wide = [];
	for (const v of ['jobs', 'curves', 'neighbors']) {
		await ph.goto(`${BASE}/#${v}`);
		await ph.waitForSelector('#jobs-table tr[data-job="1"]', { state: 'attached' });
		if (v === 'curves')
			await waitPoints(ph, 'chart-loss', 2, 2, 10);
		if (v === 'neighbors')
			await ph.waitForSelector('#nb-job option[value="1"]', { state: 'attached' });
		await ph.waitForTimeout(300);
		const w = await ph.evaluate(() => document.documentElement.scrollWidth);
		if (w > 390)
			wide.push(`${v}: ${w}px`);
		await shot(ph, `10-phone-${v}.png`);
	}
	await ph.context().close();
	if (wide.length)
		throw new Error('page wider than the phone: ' + wide.join(', '));
});

/* ---- curves of a scripted job list (the API answered by the test) ------------ */
const AUGMENT = { crop: true, crop_scale: [0.2, 1], hflip: 0.5, grayscale: 0.2,
	color_jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4, p: 1 } };
function fakeJob(id, rows, spec = {}) {
	return {
		id, status: 'succeeded', priority: 0, epoch: rows.length, epochs: rows.length,
		spec: { dataset: 'fashion-mnist', model: 'convnet', epochs: rows.length, batch_size: 128, lr: 0.03,
			momentum: 0.9, weight_decay: 5e-4, nesterov: false, temperature: 0.1, embedding_dim: 128, seed: 1,
			threads: 0, augment: AUGMENT, eval: { knn_k: 200, knn_temperature: 0.1, every: 1 },
			train_subset: 10000, classes: null, ...spec },
		created_at: '2026-01-01T12:00:00Z', started_at: '2026-01-01T12:00:01Z', finished_at: '2026-01-01T12:05:00Z',
		last_metrics: rows[rows.length - 1], error: null, resumed_from_epoch: null, cancel_requested: false, progress: null,
	};
}
const fakeRows = (losses) => losses.map((loss, i) => ({ epoch: i + 1, loss, knn_top1: 0.5 + i / (4 * losses.length),
	knn_top5: 0.9, lr: 0.03, seconds: 5, images_per_sec: 2500 }));

/* A page whose job list and metrics come from jobs (the page, the styles
 * and the datasets still come from the daemon). */
async function fakePage(fakeJobs, viewport = { width: 1280, height: 900 }) {
	const p = await newPage({ viewport });
	await p.route((u) => u.pathname === '/jobs', (r) => r.fulfill({ json: { jobs: [...fakeJobs].reverse() } }));
	await p.route((u) => /^\/jobs\/\d+\/metrics$/.test(u.pathname), (r) => {
		const u = new URL(r.request().url());
		const id = Number(u.pathname.split('/')[2]), since = Number(u.searchParams.get('since') || 0);
		const job = fakeJobs.find((j) => j.id === id);
		r.fulfill({ json: { job: id, metrics: job ? job.rows.filter((x) => x.epoch > since) : [] } });
	});
	await p.route((u) => u.pathname.endsWith('/events'), (r) => r.abort());
	return p;
}

/* The hover read-out of one series ("job 8", "job 7 raw") at the plot's right edge. */
async function valueAtRightEdge(p, chart, label) {
	const box = await (await p.$(`#${chart} .u-over`)).boundingBox();
	await p.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
	return p.$$eval(`#${chart} .u-legend .u-series`, (ss, l) => {
		const s = ss.find((x) => x.querySelector('.u-label')?.textContent.trim() === l);
		return s ? s.querySelector('.u-value').textContent.trim() : 'no series ' + l;
	}, label);
}

const SHORT = [6.2, 5.5, 4.9];
const LONG = Array.from({ length: 30 }, (_, i) => 6.5 - 2 * Math.log10(1 + i) + (i % 3 === 0 ? 0.15 : -0.05));
const scripted = [{ ...fakeJob(7, fakeRows(LONG), { lr: 0.06, epochs: 30 }), rows: fakeRows(LONG) },
	{ ...fakeJob(8, fakeRows(SHORT), { model: 'convnet', seed: 2 }), rows: fakeRows(SHORT) }];
const fp = await fakePage(scripted);

await step('dashboard_curves_newest_job_by_default', async () => {
	/* A fresh tab: nothing ticked. */
	await fp.goto(BASE + '/#curves');
	await waitPoints(fp, 'chart-loss', 8, 3, 10);
	const pts = await points(fp, 'chart-loss');
	const note = await fp.textContent('#curves-empty');
	await shot(fp, '12-curves-newest-by-default.png');
	if (JSON.stringify(pts) !== '{"8":3}' || !/job 8/.test(note) || !(await fp.isVisible('#curves-empty')))
		throw new Error(`points ${JSON.stringify(pts)}, note "${note}"`);
	if (await fp.isChecked('#compare-list input[type=checkbox] >> nth=0'))
		throw new Error('the default job shows as ticked');
});

await step('dashboard_short_run_ends_at_last_value', async () => {
	/* Three epochs: the line ends at the last real loss, 4.9. */
	const v = await valueAtRightEdge(fp, 'chart-loss', 'job 8');
	await shot(fp, '13-short-run-last-value.png');
	if (v !== '4.900')
		throw new Error(`job 8 at epoch 3 reads ${v}, its loss was 4.900`);
	/* The rule is in the slider's tooltip. */
	const title = await fp.getAttribute('#c-smooth', 'title');
	if (!/auto/i.test(title || '') || !/last/.test(title))
		throw new Error('tooltip: ' + title);
	/* Beside a 30-epoch run, auto smooths (0.60) and the raw values show,
	 * ending at the last real value too. */
	await fp.check('#compare-list label:has-text("job 7") input');
	await fp.check('#compare-list label:has-text("job 8") input');
	await waitPoints(fp, 'chart-loss', 7, 30, 10);
	const out = await fp.textContent('#c-smooth-out');
	const raw = await valueAtRightEdge(fp, 'chart-loss', 'job 7 raw');
	await shot(fp, '14-long-run-smoothed.png');
	if (out !== '0.60' || raw !== LONG[29].toPrecision(4))
		throw new Error(`smoothing ${out}, job 7 raw at epoch 30 ${raw}, its loss ${LONG[29].toPrecision(4)}`);
});

await step('dashboard_log_axis_ticks', async () => {
	/* Job 8 alone: a loss from 6.2 to 4.9 on the log axis. */
	await fp.uncheck('#compare-list label:has-text("job 7") input');
	await waitPoints(fp, 'chart-loss', 8, 3, 10);
	await fp.mouse.move(5, 5);
	const log = await fp.getAttribute('#chart-loss .plot', 'data-log');
	const ticks = ((await fp.getAttribute('#chart-loss .plot', 'data-yticks')) || '').split(' ').filter(Boolean);
	await shot(fp, '15-log-axis-ticks.png');
	if (log !== 'true' || ticks.length < 4 || ticks.some((t) => !(Number(t) > 4.5 && Number(t) < 6.5)))
		throw new Error(`log ${log}, labelled ticks ${JSON.stringify(ticks)}`);
	/* One job: nothing to compare. */
	if (await fp.isVisible('#compare-diff'))
		throw new Error('differences shown for one job');
});
await fp.context().close();

/* ---- a daemon with a token -------------------------------------------------------------- */
await step('dashboard_token', async () => {
	const tp = await newPage({ viewport: { width: 1280, height: 700 } });
	/* The daemon protects the page too: it loads as /?access_token=T. */
	await tp.goto(`${TOKEN_BASE}/?access_token=${TOKEN}`);
	await tp.waitForSelector('#jobs-empty:not([hidden])');
	await tp.waitForFunction(() => document.getElementById('live').textContent.includes('live'));
	/* A wrong token in session storage: the next API call meets 401 and
	 * the dashboard asks for the token. */
	await tp.evaluate(() => sessionStorage.setItem('isifd.token', 'wrong-token-wrong-token'));
	await tp.waitForSelector('#token-dialog[open]', { timeout: seconds(10) });
	await shot(tp, '11-token-dialog.png');
	await tp.fill('#token-input', TOKEN);
	await tp.click('#token-dialog button[value="ok"]');
	await tp.waitForSelector('#token-dialog[open]', { state: 'detached' });
	/* The dialog's close event (which stores the token) comes a task later. */
	await tp.waitForFunction((t) => sessionStorage.getItem('isifd.token') === t, TOKEN,
		{ timeout: seconds(5) }).catch(() => {});
	const stored = await tp.evaluate(() => sessionStorage.getItem('isifd.token'));
	/* The job submitted from the form shows up, with its event stream
	 * authenticated through ?access_token=. */
	await fillForm(tp, { model: 'convnet', epochs: 2, batch: 64, lr: 0.03, seed: 1, subset: 256, knn: 5 });
	await tp.click('#submit-form button[type=submit]');
	await waitState(tp, 1, ['running', 'succeeded'], 30);
	const stream = `${TOKEN_BASE}/jobs/1/events?access_token=${TOKEN}`;
	for (let i = 0; i < 40 && !requests.includes(stream); i++)
		await tp.waitForTimeout(250);
	await tp.context().close();
	if (stored !== TOKEN)
		throw new Error('token not kept in sessionStorage: ' + stored);
	if (!requests.includes(stream))
		throw new Error('no event stream with ?access_token=');
});

await step('dashboard_no_external_requests', async () => {
	const bad = requests.filter((u) => !/^(https?:\/\/127\.0\.0\.1:\d+\/|data:|blob:)/.test(u));
	if (bad.length)
		throw new Error(bad.slice(0, 5).join(' '));
	if (!requests.some((u) => u.includes('/vendor/uPlot.esm.js')))
		throw new Error('uPlot not loaded from isifd');
});

await step('dashboard_no_page_errors', async () => {
	if (pageErrors.length)
		throw new Error(pageErrors.slice(0, 3).join(' | '));
});

await browser.close();
process.exit(failures ? 1 : 0);
