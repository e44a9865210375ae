/*
 * web/js/curves.js — the learning-curves view: kNN top-1 and loss per epoch
 * for the jobs picked for comparison (the table's Compare column or the list
 * here), redrawn as rows arrive live; smoothing with a raw toggle, a log
 * axis for the loss, a CSV download of exactly what is plotted (raw values)
 * and the same values as a table for screen readers.
 */
import * as store from './store.js';
import { OverlayChart, loadLibrary, colorOf } from './chart.js';
import { el, pct, num, metricsCsv } from './util.js';

let top1, loss, uPlot = null, libError = null;
let smoothIn, smoothOut, rawIn, logIn, list, emptyNote, valuesBody, visible = false;
const checks = new Map();   /* id -> checkbox in the compare list */

function view() {
	return { smoothing: Number(smoothIn.value), raw: rawIn.checked, log: logIn.checked };
}

/* Picked jobs that still exist, oldest first (stable colours and order). */
function picked() {
	return [...store.selected].filter((id) => store.jobs.has(id)).sort((a, b) => a - b)
		.map((id) => ({ job: id, rows: store.metrics.get(id) || [] }));
}

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
				el('td', { class: 'num', text: pct(r.knn_top5) }), el('td', { class: 'num', text: String(r.lr) }),
				el('td', { class: 'num', text: num(r.images_per_sec, 0) })));
	valuesBody.replaceChildren(...rows);
}

function render() {
	renderList();
	const series = picked();
	emptyNote.hidden = series.length > 0 && !libError;
	if (libError)
		emptyNote.textContent = libError.message;
	renderTable(series);
	if (!uPlot || !visible)
		return;
	top1.update(uPlot, series, view());
	loss.update(uPlot, series, view());
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
	rawIn = document.getElementById('c-raw');
	logIn = document.getElementById('c-log');
	list = document.getElementById('compare-list');
	emptyNote = document.getElementById('curves-empty');
	valuesBody = document.querySelector('#curve-table tbody');
	top1 = new OverlayChart(document.querySelector('#chart-top1 .plot'),
		{ field: 'knn_top1', format: (v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(1) + '%'), bounds: [0, 1], syncKey: 'isifd' });
	loss = new OverlayChart(document.querySelector('#chart-loss .plot'),
		{ field: 'loss', format: (v) => (v === null || v === undefined ? '—' : v.toPrecision(4)), log: true, syncKey: 'isifd' });
	smoothIn.addEventListener('input', () => {
		smoothOut.value = Number(smoothIn.value).toFixed(2);
		render();
	});
	rawIn.addEventListener('change', render);
	logIn.addEventListener('change', render);
	document.getElementById('c-csv').addEventListener('click', downloadCsv);
	store.on((kind, id) => {
		if (kind === 'jobs' || kind === 'selection' || (kind === 'metrics' && store.selected.has(id)))
			render();
		else if (kind === 'job')
			renderList();
	});
	loadLibrary().then((lib) => {
		uPlot = lib;
		render();
	}, (e) => {
		libError = e;
		render();
	});
}
