/*
 * web/js/groups.js — the groups view: a job group (POST /groups: one job
 * per grid point and seed) drawn as one colour per grid point, the mean
 * over its seeds per epoch as a line with a band from the minimum to the
 * maximum over the seeds (the server's summary, GET /groups/{id}); a table
 * of the grid fields in which the points differ, with each point's last
 * kNN top-1 as mean ± std; cancel and delete the group. Polled every few
 * seconds while shown.
 *
 * Not here: the plain per-job curves (curves.js).
 */
import * as api from './api.js';
import { loadLibrary } from './chart.js';
import { confirmAction } from './jobs.js';
import { el, pct } from './util.js';

const POLL_MS = 4000;
/* Okabe–Ito, as chart.js: distinguishable with colour-vision deficiencies. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7F3C8D', '#555555'];
export const pointColor = (point) => PALETTE[point % PALETTE.length];

function fade(hex, alpha) {
	const n = parseInt(hex.slice(1), 16);
	return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/* A grid value as text: strings as they are, anything else as JSON. */
const valueText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

/* A point's name: its grid values, "lr_schedule.type=cosine, ...". */
export function pointLabel(p) {
	const parts = Object.entries(p.values || {}).map(([k, v]) => `${k}=${valueText(v)}`);
	return parts.length ? parts.join(', ') : `point ${p.point}`;
}

/*
 * The summary of field per point on one epoch axis: {xs, points: [{point,
 * mean, lo, hi, n}]}, each array aligned on xs (null where the point has
 * no value for that epoch). lo/hi: min and max over the seeds.
 */
export function bandData(group, field) {
	const epochs = new Set();
	for (const p of group.points)
		for (const s of p.summary)
			if (s[field])
				epochs.add(s.epoch);
	const xs = [...epochs].sort((a, b) => a - b);
	const at = new Map(xs.map((x, i) => [x, i]));
	const points = group.points.map((p) => {
		const line = { point: p.point, label: pointLabel(p), mean: [], lo: [], hi: [], n: [] };
		for (const k of ['mean', 'lo', 'hi', 'n'])
			line[k] = new Array(xs.length).fill(null);
		for (const s of p.summary) {
			const v = s[field];
			if (!v || !at.has(s.epoch))
				continue;
			const i = at.get(s.epoch);
			line.mean[i] = v.mean;
			line.lo[i] = v.min;
			line.hi[i] = v.max;
			line.n[i] = v.n;
		}
		return line;
	});
	return { xs, points };
}

/*
 * What differs between the points: [{field, values: [text per point]}]
 * for each grid field (seed aside) whose values are not all the same, then
 * the jobs per point and the last epoch's kNN top-1 as mean ± std.
 */
export function gridDiff(group) {
	const pts = group.points;
	const fields = [...new Set(pts.flatMap((p) => Object.keys(p.values || {})))];
	const rows = fields.map((field) => ({
		field, values: pts.map((p) => (field in (p.values || {}) ? valueText(p.values[field]) : '—')),
	})).filter((d) => d.values.some((v) => v !== d.values[0]));
	rows.push({ field: 'jobs (seeds)', values: pts.map((p) => String(p.jobs.length)) });
	rows.push({
		field: 'kNN top-1, last epoch (mean ± std)',
		values: pts.map((p) => {
			const last = [...p.summary].reverse().find((s) => s.knn_top1);
			if (!last)
				return '—';
			const k = last.knn_top1;
			return `${pct(k.mean)} ± ${(100 * k.std).toFixed(1)} (epoch ${last.epoch}, n=${k.n})`;
		}),
	});
	return rows;
}

/* ---- the view --------------------------------------------------------------- */

let uPlot = null, libError = null, visible = false, timer = null, announce = () => {};
let pick, info, box, empty, diffTable, charts = [];
let groups = [], current = null;

class BandChart {
	constructor(figure, field, format, bounds) {
		this.box = figure.querySelector('.plot');
		this.field = field;
		this.format = format;
		this.bounds = bounds;
		this.plot = null;
		this.shape = '';
	}

	update(group) {
		const { xs, points } = bandData(group, this.field);
		this.box.dataset.points = points.map((p) => `${p.point}:${p.mean.filter((v) => v !== null).length}`).join(',');
		const last = (a) => [...a].reverse().find((v) => v !== null);
		this.box.dataset.bands = points.map((p) => `${p.point}:${last(p.lo) ?? ''}..${last(p.hi) ?? ''}`).join(',');
		const data = [xs], series = [{ label: 'epoch' }], bands = [];
		for (const p of points) {
			const c = pointColor(p.point);
			const base = data.length;
			data.push(p.mean, p.hi, p.lo);
			series.push({ label: p.label, stroke: c, width: 2, spanGaps: true,
				points: { show: true, size: 6, fill: c }, value: (u, v) => this.format(v) },
			{ label: `${p.label} max`, stroke: fade(c, 0.35), width: 1, spanGaps: true, points: { show: false },
				value: (u, v) => this.format(v) },
			{ label: `${p.label} min`, stroke: fade(c, 0.35), width: 1, spanGaps: true, points: { show: false },
				value: (u, v) => this.format(v) });
			bands.push({ series: [base + 1, base + 2], fill: fade(c, 0.18) });
		}
		const shape = JSON.stringify(series.map((s) => s.label));
		if (this.plot && shape === this.shape) {
			this.plot.setData(data);
			return;
		}
		this.destroy();
		this.shape = shape;
		if (!uPlot || points.length === 0)
			return;
		const w = Math.max(240, Math.floor(this.box.clientWidth || 600));
		this.plot = new uPlot({
			width: w, height: w < 500 ? 220 : 280,
			legend: { live: true },
			scales: { x: { time: false }, y: { range: (u, min, max) => this.range(min, max) } },
			axes: [{ label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100] },
				{ size: 60, values: (u, ticks) => ticks.map((t) => this.format(t)) }],
			series, bands,
		}, data, this.box);
	}

	range(min, max) {
		if (min === null || max === null || !isFinite(min) || !isFinite(max))
			return this.bounds || [0, 1];
		const pad = Math.max((max - min) * 0.1, 0.01);
		const [lo, hi] = this.bounds || [-Infinity, Infinity];
		return [Math.max(lo, min - pad), Math.min(hi, max + pad)];
	}

	destroy() {
		if (this.plot) {
			this.plot.destroy();
			this.plot = null;
		}
	}
}

function renderPick() {
	const want = pick.value;
	pick.replaceChildren(...groups.map((g) => el('option', {
		value: String(g.id),
		text: `group ${g.id} · ${g.base.model || ''} · ${g.n_jobs} jobs · ${g.status.succeeded} done` +
			(g.status.running ? `, ${g.status.running} running` : '') +
			(g.status.queued ? `, ${g.status.queued} queued` : ''),
	})));
	if (groups.some((g) => String(g.id) === want))
		pick.value = want;
	empty.hidden = groups.length > 0;
	box.hidden = groups.length === 0;
}

function renderGroup(g) {
	const st = g.status;
	info.textContent = `Group ${g.id}: ${g.n_jobs} jobs over ${g.points.length} grid points — ` +
		Object.entries(st).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ') +
		'. Lines: mean over the seeds; bands: min to max over the seeds.';
	const diff = gridDiff(g);
	diffTable.querySelector('thead tr').replaceChildren(el('th', { scope: 'col', text: 'Grid point' }),
		...g.points.map((p) => {
			const sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
			sw.style.background = pointColor(p.point);
			return el('th', { scope: 'col' }, sw, ` point ${p.point}`);
		}));
	diffTable.querySelector('tbody').replaceChildren(...diff.map((d) => el('tr', {},
		el('th', { scope: 'row', text: d.field }), ...d.values.map((v) => el('td', { text: v })))));
	const unfinished = st.queued + st.running > 0;
	document.getElementById('g-cancel').disabled = !unfinished;
	document.getElementById('g-delete').disabled = unfinished;
	if (visible)
		for (const c of charts)
			c.update(g);
}

async function refresh() {
	try {
		groups = (await api.get('/groups')).groups;
		renderPick();
		if (groups.length === 0) {
			current = null;
			return;
		}
		const id = pick.value || String(groups[0].id);
		current = await api.get(`/groups/${id}`);
		renderGroup(current);
	} catch (e) {
		if (libError === null)
			info.textContent = `Could not load groups: ${e.message}`;
	}
}

function schedule() {
	clearTimeout(timer);
	if (visible)
		timer = setTimeout(async () => {
			await refresh();
			schedule();
		}, POLL_MS);
}

async function act(what) {
	if (!current)
		return;
	const id = current.id;
	try {
		if (what === 'cancel') {
			if (!await confirmAction(`Cancel every unfinished job of group ${id}?`, 'Cancel them'))
				return;
			await api.post(`/groups/${id}/cancel`);
			announce(`Group ${id}: cancel asked.`, false);
		} else {
			if (!await confirmAction(`Delete group ${id}, its jobs, their metrics and files?`, 'Delete'))
				return;
			await api.del(`/groups/${id}`);
			announce(`Group ${id} deleted.`, false);
			pick.value = '';
		}
	} catch (e) {
		announce(`Group ${id}: ${e.message}`, true);
	}
	await refresh();
}

/* Called by app.js when the view is shown or hidden. */
export function setVisible(on) {
	visible = on;
	if (on)
		refresh().then(schedule);
	else
		clearTimeout(timer);
}

export function init(announceFn) {
	announce = announceFn || announce;
	pick = document.getElementById('g-pick');
	info = document.getElementById('g-info');
	box = document.getElementById('group-box');
	empty = document.getElementById('groups-empty');
	diffTable = document.getElementById('g-diff');
	charts = [
		new BandChart(document.getElementById('g-chart-top1'), 'knn_top1',
			(v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(1) + '%'), [0, 1]),
		new BandChart(document.getElementById('g-chart-loss'), 'loss',
			(v) => (v === null || v === undefined ? '—' : v.toPrecision(4)), null),
	];
	pick.addEventListener('change', refresh);
	document.getElementById('g-cancel').addEventListener('click', () => act('cancel'));
	document.getElementById('g-delete').addEventListener('click', () => act('delete'));
	loadLibrary().then((lib) => { uPlot = lib; if (current && visible) renderGroup(current); },
		(e) => { libError = e; info.textContent = e.message; });
}
