/*
 * tests/browser/groups.mjs — the dashboard's Groups view in a real browser
 * (Debian's chromium, playwright-core) against the open isifd that
 * tests/integration/dashboard.sh started, run after dashboard.mjs. Prints
 * one "PASS name" / "FAIL name (why)" line per case; exits 1 when any failed.
 *
 * A group of 4 tiny jobs (2 seeds × 2 schedules) is drawn as one line per
 * grid point with a band: the plot's data-points attribute lists
 * "point:epochs drawn", data-bands "point:min..max" at the last epoch,
 * which must be the server summary's min and max over the seeds; the table
 * of what differs names the schedule per point; cancel and delete through
 * the buttons end and remove a second group.
 */
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const BASE = process.env.BASE;
const OUT = process.env.OUT || 'build/test-output/dashboard';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SLOW = Number(process.env.SLOW || 1);
const seconds = (s) => s * 1000 * SLOW;
let failures = 0;

function report(name, ok, why) {
	if (!ok)
		failures++;
	console.log(ok ? `PASS ${name}` : `FAIL ${name}${why ? ` (${String(why).split('\n')[0].slice(0, 300)})` : ''}`);
}

async function step(name, fn) {
	try {
		const r = await fn();
		report(name, r !== false, r === false ? 'check false' : '');
	} catch (e) {
		report(name, false, e.message);
	}
}

async function api(method, path, body) {
	const res = await fetch(BASE + path, {
		method, headers: body ? { 'Content-Type': 'application/json' } : {},
		body: body ? JSON.stringify(body) : undefined,
	});
	return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

async function waitGroup(id, pred, timeoutS) {
	const end = Date.now() + seconds(timeoutS);
	let g = null;
	while (Date.now() < end) {
		g = (await api('GET', `/groups/${id}`)).body;
		if (pred(g))
			return g;
		await new Promise((r) => setTimeout(r, 300));
	}
	throw new Error(`group ${id}: condition not met in ${timeoutS} s: ${JSON.stringify(g && g.status)}`);
}

const base = { dataset: 'fashion-mnist', model: 'convnet', epochs: 2, batch_size: 32, train_subset: 256,
	eval: { knn_k: 20 } };
const browser = await chromium.launch({
	executablePath: CHROMIUM, headless: true,
	args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
}).catch((e) => {
	report('groups_browser_launch', false, e.message);
	process.exit(1);
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
const page = await ctx.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.setDefaultTimeout(seconds(20));

let group = null;
await step('groups_view_empty', async () => {
	await page.goto(BASE + '/#groups');
	await page.waitForSelector('#groups-empty:not([hidden])');
});

await step('groups_drawn_with_bands', async () => {
	const r = await api('POST', '/groups', { base, grid: { seed: [1, 2], 'lr_schedule.type': ['constant', 'cosine'] } });
	if (r.status !== 201)
		throw new Error(`POST /groups: ${r.status} ${JSON.stringify(r.body)}`);
	group = await waitGroup(r.body.id, (g) => g.status.succeeded === 4, 240);
	const want = group.points.map((p) => {
		const k = p.summary[p.summary.length - 1].knn_top1;
		return `${p.point}:${k.min}..${k.max}`;
	}).join(',');
	/* the view polls: within a few polls it shows the final summary */
	await page.waitForFunction((w) => document.querySelector('#g-chart-top1 .plot').dataset.bands === w,
		want, { timeout: seconds(30) }).catch(async () => {
		const bands = await page.getAttribute('#g-chart-top1 .plot', 'data-bands');
		throw new Error(`bands ${bands}, summary says ${want}`);
	});
	const drawn = await page.getAttribute('#g-chart-top1 .plot', 'data-points');
	if (drawn !== '0:2,1:2')
		throw new Error('points drawn: ' + drawn);
	const legend = await page.textContent('#g-chart-top1');
	if (!legend.includes('lr_schedule.type=constant') || !legend.includes('lr_schedule.type=cosine'))
		throw new Error('legend lacks the points: ' + legend.slice(0, 200));
	/* a band is drawn: the seeds differ, so min < max somewhere */
	if (!group.points.some((p) => p.summary.some((s) => s.loss.min < s.loss.max)))
		throw new Error('seeds gave identical losses');
	await page.screenshot({ path: join(OUT, 'groups-1280.png'), fullPage: true });
});

await step('groups_table_of_differences', async () => {
	const rows = await page.$$eval('#g-diff tbody tr', (trs) => trs.map((tr) =>
		[...tr.children].map((c) => c.textContent.trim())));
	const sched = rows.find((r) => r[0] === 'lr_schedule.type');
	const jobs = rows.find((r) => r[0] === 'jobs (seeds)');
	const top1 = rows.find((r) => r[0].startsWith('kNN top-1'));
	if (!sched || sched[1] !== 'constant' || sched[2] !== 'cosine')
		throw new Error('schedule row: ' + JSON.stringify(rows));
	if (!jobs || jobs[1] !== '2' || jobs[2] !== '2')
		throw new Error('jobs row: ' + JSON.stringify(rows));
	const k = group.points[0].summary[1].knn_top1;
	if (!top1 || !top1[1].startsWith(`${(100 * k.mean).toFixed(1)}% ± ${(100 * k.std).toFixed(1)}`))
		throw new Error(`top-1 row ${JSON.stringify(top1)}, summary mean ${k.mean} std ${k.std}`);
	const colours = await page.$$eval('#g-diff thead .swatch', (s) => s.map((x) => x.style.background));
	if (colours.length !== 2 || colours[0] === colours[1])
		throw new Error('one colour per point: ' + colours);
});

await step('groups_cancel_and_delete_buttons', async () => {
	const r = await api('POST', '/groups', { base: { ...base, epochs: 500, eval: { every: 0 } }, grid: { seed: [7, 8] } });
	if (r.status !== 201)
		throw new Error(`POST /groups: ${r.status}`);
	const id = r.body.id;
	await page.waitForSelector(`#g-pick option[value="${id}"]`, { state: 'attached', timeout: seconds(15) });
	await page.selectOption('#g-pick', String(id));
	await page.waitForFunction(() => !document.getElementById('g-cancel').disabled);
	await page.click('#g-cancel');
	await page.click('#confirm-yes');
	await waitGroup(id, (g) => g.status.cancelled === 2, 60);
	await page.waitForFunction(() => !document.getElementById('g-delete').disabled, null, { timeout: seconds(15) });
	await page.click('#g-delete');
	await page.click('#confirm-yes');
	await page.waitForFunction((gid) => !document.querySelector(`#g-pick option[value="${gid}"]`), id,
		{ timeout: seconds(15) });
	const after = await api('GET', `/groups/${id}`);
	if (after.status !== 404)
		throw new Error(`group still there: ${after.status}`);
	if ((await api('GET', `/groups/${group.id}`)).status !== 200)
		throw new Error('the other group went too');
});

await step('groups_no_page_errors', async () => {
	if (pageErrors.length)
		throw new Error(pageErrors.slice(0, 3).join(' | '));
});

await browser.close();
process.exit(failures ? 1 : 0);
