/*
 * web/js/similarity.js — the similarity figure beside the learning curves:
 * for one job, the histograms of cosine similarity of same-class and
 * different-class pairs of test images (GET /jobs/{id}/similarity) at the
 * epoch a slider picks, as fractions of each kind's pairs so the two are
 * comparable; their means and pair counts under the plot. A job without
 * evaluations says so. The slider follows the newest epoch while it sits
 * there.
 *
 * Not here: which jobs are plotted (curves.js passes them).
 */
import * as api from './api.js';
import { el } from './util.js';

const SAME = '#009E73', DIFF = '#D55E00';

let box, plotBox, slider, out, pick, note, summary, uPlot = null, plot = null;
let job = null;          /* the job shown */
let epochs = [];         /* its epochs with histograms, ascending */
let atLatest = true;     /* the slider sits on the newest epoch */
let asked = 0;           /* request counter: a late answer for an older ask is dropped */

function say(text) {
	note.textContent = text;
	note.hidden = !text;
}

function draw(d) {
	const bins = d.bins, xs = [], same = [], diff = [];
	for (let b = 0; b < bins; b++) {
		xs.push(-1 + (2 * b + 1) / bins);
		same.push(d.same.pairs ? d.same.counts[b] / d.same.pairs : null);
		diff.push(d.different.pairs ? d.different.counts[b] / d.different.pairs : null);
	}
	const mean = (p) => (p.mean === null ? '—' : p.mean.toFixed(3));
	summary.textContent = `Job ${d.job}, epoch ${d.epoch}: same class mean ${mean(d.same)} ` +
		`(${d.same.pairs} pairs), different classes mean ${mean(d.different)} (${d.different.pairs} pairs).`;
	plotBox.dataset.epoch = String(d.epoch);
	plotBox.dataset.pairs = `${d.same.pairs},${d.different.pairs}`;
	if (!uPlot)
		return;
	const data = [xs, same, diff];
	if (plot) {
		plot.setData(data);
		return;
	}
	const w = Math.max(240, Math.floor(plotBox.clientWidth));
	const fmt = (u, v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(2) + '%');
	plot = new uPlot({
		width: w, height: w < 500 ? 200 : 260,
		legend: { live: true },
		scales: { x: { time: false, range: [-1, 1] }, y: { range: (u, min, max) => [0, Math.max(max || 0, 0.01) * 1.1] } },
		axes: [{ label: 'cosine similarity' },
			{ size: 60, values: (u, ticks) => ticks.map((t) => (100 * t).toFixed(1) + '%') }],
		series: [{ label: 'similarity', value: (u, v) => (v === null ? '—' : v.toFixed(2)) },
			{ label: 'same class', stroke: SAME, fill: 'rgba(0, 158, 115, 0.15)', width: 2, value: fmt },
			{ label: 'different classes', stroke: DIFF, fill: 'rgba(213, 94, 0, 0.15)', width: 2, value: fmt }],
	}, data, plotBox);
}

function clear(text) {
	if (plot) {
		plot.destroy();
		plot = null;
	}
	summary.textContent = '';
	slider.disabled = true;
	out.value = '—';
	delete plotBox.dataset.epoch;
	say(text);
}

/* Fetches epoch e of the shown job (0: the newest) and draws it. */
async function load(e) {
	const mine = ++asked, id = job;
	let d;
	try {
		d = await api.get(`/jobs/${id}/similarity${e ? `?epoch=${e}` : ''}`);
	} catch (err) {
		if (mine === asked)
			clear(err.status === 404 ? `Job ${id} has no similarity histograms yet: they are made at each evaluation.`
				: `Similarity histograms: ${err.message}`);
		return;
	}
	if (mine !== asked)
		return;
	epochs = d.epochs;
	slider.disabled = epochs.length < 2;
	slider.max = String(epochs.length - 1);
	slider.value = String(epochs.indexOf(d.epoch));
	atLatest = d.epoch === epochs[epochs.length - 1];
	out.value = `epoch ${d.epoch}`;
	say('');
	draw(d);
}

function renderPicker(ids) {
	const have = [...pick.options].map((o) => Number(o.value));
	if (JSON.stringify(have) !== JSON.stringify(ids))
		pick.replaceChildren(...ids.map((id) => el('option', { value: String(id), text: `job ${id}` })));
	pick.value = String(job);
	pick.hidden = ids.length < 2;
}

/* Called by curves.js with the plotted jobs (newest last) whenever they or
 * their metrics change: keeps the shown job if still plotted, else the
 * newest; refetches when the shown job may have a new evaluation. */
export function update(ids, changed) {
	if (!box)
		return;
	if (ids.length === 0) {
		job = null;
		renderPicker([]);
		clear('');
		return;
	}
	const before = job;
	if (!ids.includes(job))
		job = ids[ids.length - 1];
	renderPicker(ids);
	if (job !== before)
		load(0);
	else if (changed === job && atLatest)
		load(0);
}

export function setLibrary(lib) {
	uPlot = lib;
	if (job !== null)
		load(atLatest ? 0 : epochs[Number(slider.value)]);
}

export function init() {
	box = document.getElementById('chart-sim');
	plotBox = box.querySelector('.plot');
	slider = document.getElementById('sim-epoch');
	out = document.getElementById('sim-epoch-out');
	pick = document.getElementById('sim-job');
	note = box.querySelector('.empty');
	summary = box.querySelector('.sim-summary');
	slider.addEventListener('input', () => {
		const e = epochs[Number(slider.value)];
		if (e !== undefined) {
			out.value = `epoch ${e}`;
			load(e);
		}
	});
	pick.addEventListener('change', () => {
		job = Number(pick.value);
		load(0);
	});
	new ResizeObserver(() => {
		if (plot)
			plot.setSize({ width: Math.max(240, Math.floor(plotBox.clientWidth)), height: plotBox.clientWidth < 500 ? 200 : 260 });
	}).observe(plotBox);
}
