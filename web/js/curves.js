/*
 * web/js/curves.js — the learning-curves view: kNN top-1 and loss per epoch
 * (and the linear probe's top-1 when a plotted job ran it)
 * for the jobs picked for comparison (the table's Compare column or the list
 * here), or the newest job while none is picked, redrawn as rows arrive
 * live; smoothing (automatic by default) with a raw toggle, a log axis for
 * the loss, the spec fields in which the picked jobs differ, a CSV download
 * of exactly what is plotted (raw values) and the same values as a table
 * for screen readers. Jobs in the unseen-category protocol get Recall@1 and
 * NMI on the held-out classes in place of kNN accuracy; the similarity
 * figure (similarity.js) shows one plotted job's histograms by epoch.
 */
import * as store from './store.js';
import { OverlayChart, loadLibrary, colorOf, tickText } from './chart.js';
import { el, pct, num, metricsCsv, specDiff } from './util.js';
import * as similarity from './similarity.js';

/* Automatic smoothing: none while the longest plotted run is shorter than
 * this many epochs, where a moving average would end far from the last
 * real value; AUTO_SMOOTHING from there on (the raw values stay visible). */
const AUTO_SMOOTH_EPOCHS = 20;
const AUTO_SMOOTHING = 0.6;

let top1, loss, recall1, nmiChart, probe, probeBackbone, uPlot = null, libError = null;
let smoothIn, smoothOut, smoothAuto, rawIn, logIn, list, note, diffBox, valuesBody, visible = false;
const checks = new Map();   /* id -> checkbox in the compare list */
let shown = new Set();      /* ids of the jobs plotted now */
let diffKey = '';           /* what the differences table shows */

/* The smoothing weight for these series: the slider's, or under "auto" the
 * rule above, which the slider and its read-out then show. */
function smoothing(series) {
	if (!smoothAuto.checked)
		return Number(smoothIn.value);
	const longest = Math.max(0, ...series.map((s) => s.rows.length));
	const w = longest >= AUTO_SMOOTH_EPOCHS ? AUTO_SMOOTHING : 0;
	smoothIn.value = String(w);
	smoothOut.value = w.toFixed(2);
	return w;
}

function view(series) {
	return { smoothing: smoothing(series), raw: rawIn.checked, log: logIn.checked };
}

/* The newest job that has started, else the newest: what a person who has
 * picked nothing most likely wants to watch. */
function newestJob() {
	const jobs = [...store.jobs.values()].sort((a, b) => b.id - a.id);
	const started = jobs.find((j) => j.epoch > 0 || j.status === 'running');
	return (started || jobs[0])?.id;
}

/* What to plot: the picked jobs that still exist, oldest first (stable
 * colours and order), or the newest job when none is picked (fallback). */
function plotted() {
	const ids = [...store.selected].filter((id) => store.jobs.has(id)).sort((a, b) => a - b);
	const fallback = ids.length === 0 && store.jobs.size > 0;
	if (fallback)
		ids.push(newestJob());
	return { fallback, series: ids.map((id) => ({ job: id, rows: flat(store.metrics.get(id) || []) })) };
}

/* Rows with Recall@1 as a field of its own (the API nests it in recall_at). */
const flat = (rows) => rows.map((r) => (r.recall_at ? { ...r, recall_at_1: r.recall_at['1'], recall_at_8: r.recall_at['8'] } : r));

const picked = () => plotted().series;

function renderList() {
	const ids = [...store.jobs.keys()].sort((a, b) => b - a);
	for (const [id, cb] of checks)
		if (!store.jobs.has(id)) {
			cb.closest('label').remove();
			checks.delete(id);
		}
	list.querySelector('.empty').hidden = ids.length > 0;
	let prev = list.querySelector('legend');
	for (const id of ids) {
		const job = store.jobs.get(id);
		let cb = checks.get(id);
		if (!cb) {
			cb = el('input', { type: 'checkbox', onchange: (ev) => store.select(id, ev.target.checked) });
			checks.set(id, cb);
		}
		const label = cb.closest('label') || el('label', { class: 'pick' }, cb,
			el('span', { class: 'swatch', 'aria-hidden': 'true' }), el('span', { class: 'what' }));
		label.querySelector('.swatch').style.background = colorOf(id);
		label.querySelector('.what').textContent =
			` job ${id} · ${job.spec.model} · ${job.status} · ${job.epoch}/${job.epochs}`;
		cb.checked = store.selected.has(id);
		if (prev.nextSibling !== label)
			prev.after(label);
		prev = label;
	}
}

function renderTable(series) {
	const rows = [];
	for (const s of series)
		for (const r of s.rows)
			rows.push(el('tr', {},
				el('th', { scope: 'row', text: `job ${s.job}` }), el('td', { text: String(r.epoch) }),
				el('td', { class: 'num', text: num(r.loss, 4) }), el('td', { class: 'num', text: pct(r.knn_top1) }),
				el('td', { class: 'num', text: pct(r.knn_top5) }), el('td', { class: 'num', text: pct(r.recall_at_1) }),
				el('td', { class: 'num', text: pct(r.recall_at_8) }),
				el('td', { class: 'num', text: r.nmi === undefined ? '—' : num(r.nmi, 3) }),
				el('td', { class: 'num', text: pct(r.probe_top1) }),
				el('td', { class: 'num', text: pct(r.probe_backbone_top1) }),
				el('td', { class: 'num', text: String(r.lr) }),
				el('td', { class: 'num', text: num(r.images_per_sec, 0) })));
	valuesBody.replaceChildren(...rows);
}

/* The spec fields in which the plotted jobs differ: a row per field, a
 * column per job (hidden below two jobs). */
function renderDiff(series) {
	const specs = series.map((s) => store.jobs.get(s.job).spec);
	const key = JSON.stringify([series.map((s) => s.job), specs]);
	if (key === diffKey)
		return;
	diffKey = key;
	diffBox.hidden = series.length < 2;
	if (diffBox.hidden)
		return;
	const diff = specDiff(specs);
	diffBox.querySelector('thead tr').replaceChildren(el('th', { scope: 'col', text: 'Spec field' }),
		...series.map((s) => {
			const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
			swatch.style.background = colorOf(s.job);
			return el('th', { scope: 'col' }, swatch, ` job ${s.job}`);
		}));
	diffBox.querySelector('tbody').replaceChildren(...diff.map((d) => el('tr', {},
		el('th', { scope: 'row', text: d.field }), ...d.values.map((v) => el('td', { text: v })))));
	diffBox.querySelector('table').hidden = diff.length === 0;
	diffBox.querySelector('.empty').hidden = diff.length > 0;
}

function showNote(fallback, series) {
	let text = '';
	if (libError)
		text = libError.message;
	else if (series.length === 0)
		text = 'No jobs yet: submit one in Jobs to see its curves here.';
	else if (fallback)
		text = `Showing the newest job, job ${series[0].job}: tick jobs in the list to compare them.`;
	note.textContent = text;
	note.hidden = !text;
}

function render(changed) {
	renderList();
	const { fallback, series } = plotted();
	shown = new Set(series.map((s) => s.job));
	showNote(fallback, series);
	renderDiff(series);
	renderTable(series);
	if (visible)
		similarity.update(series.map((s) => s.job), changed);
	if (!uPlot || !visible)
		return;
	const v = view(series);
	/* held-out-class charts only where a plotted job has such rows */
	const unseen = series.some((s) => s.rows.some((r) => r.recall_at_1 !== undefined));
	document.getElementById('chart-recall').hidden = !unseen;
	document.getElementById('chart-nmi').hidden = !unseen;
	top1.update(uPlot, series, v);
	loss.update(uPlot, series, v);
	if (unseen) {
		recall1.update(uPlot, series, v);
		nmiChart.update(uPlot, series, v);
	}
	/* the probe's charts only when a plotted job ran it (eval.linear_probe) */
	const probed = series.some((s) => s.rows.some((r) => r.probe_top1 !== null && r.probe_top1 !== undefined));
	for (const [chart, id] of [[probe, 'chart-probe'], [probeBackbone, 'chart-probe-backbone']]) {
		document.getElementById(id).hidden = !probed;
		if (probed)
			chart.update(uPlot, series, v);
	}
}

function downloadCsv() {
	const series = picked();
	const blob = new Blob([metricsCsv(series)], { type: 'text/csv' });
	const a = el('a', {
		href: URL.createObjectURL(blob),
		download: `isifd-metrics-jobs-${series.map((s) => s.job).join('-') || 'none'}.csv`,
	});
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/* Called by app.js when the view is shown or hidden: uPlot needs a laid-out
 * box to size itself. */
export function setVisible(on) {
	visible = on;
	if (on)
		render();
}

export function init() {
	smoothIn = document.getElementById('c-smooth');
	smoothOut = document.getElementById('c-smooth-out');
	smoothAuto = document.getElementById('c-smooth-auto');
	rawIn = document.getElementById('c-raw');
	logIn = document.getElementById('c-log');
	list = document.getElementById('compare-list');
	note = document.getElementById('curves-empty');
	diffBox = document.getElementById('compare-diff');
	valuesBody = document.querySelector('#curve-table tbody');
	top1 = new OverlayChart(document.querySelector('#chart-top1 .plot'),
		{ field: 'knn_top1', format: (v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(1) + '%'), bounds: [0, 1], syncKey: 'isifd' });
	const fraction = (v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(1) + '%');
	probe = new OverlayChart(document.querySelector('#chart-probe .plot'),
		{ field: 'probe_top1', format: fraction, bounds: [0, 1], syncKey: 'isifd' });
	probeBackbone = new OverlayChart(document.querySelector('#chart-probe-backbone .plot'),
		{ field: 'probe_backbone_top1', format: fraction, bounds: [0, 1], syncKey: 'isifd' });
	loss = new OverlayChart(document.querySelector('#chart-loss .plot'),
		{ field: 'loss', format: (v) => (v === null || v === undefined ? '—' : v.toPrecision(4)), ticks: tickText, log: true, syncKey: 'isifd' });
	const frac = (v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(1) + '%');
	recall1 = new OverlayChart(document.querySelector('#chart-recall .plot'),
		{ field: 'recall_at_1', format: frac, bounds: [0, 1], syncKey: 'isifd' });
	nmiChart = new OverlayChart(document.querySelector('#chart-nmi .plot'),
		{ field: 'nmi', format: (v) => (v === null || v === undefined ? '—' : v.toFixed(3)), bounds: [0, 1], syncKey: 'isifd' });
	similarity.init();
	smoothIn.addEventListener('input', () => {
		smoothAuto.checked = false;
		smoothOut.value = Number(smoothIn.value).toFixed(2);
		render();
	});
	smoothAuto.addEventListener('change', render);
	rawIn.addEventListener('change', render);
	logIn.addEventListener('change', render);
	document.getElementById('c-csv').addEventListener('click', downloadCsv);
	store.on((kind, id) => {
		if (kind === 'jobs' || kind === 'selection' || (kind === 'metrics' && (store.selected.has(id) || shown.has(id))))
			render(kind === 'metrics' ? id : undefined);
		else if (kind === 'job')
			renderList();
	});
	loadLibrary().then((lib) => {
		uPlot = lib;
		similarity.setLibrary(lib);
		render();
	}, (e) => {
		libError = e;
		render();
	});
}
