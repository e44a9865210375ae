/*
 * web/js/chart.js — one overlay chart of several jobs' per-epoch values, on
 * uPlot (web/vendor/uPlot.esm.js, copied from the npm package by
 * `make web-deps`). x is the epoch; each job is a smoothed line with points
 * and, optionally, its raw values as a faint line; the legend under the plot
 * is the hover read-out (values at the cursor's epoch). Charts made with the
 * same sync key share the cursor.
 *
 * Not here: which jobs or which metric (curves.js).
 */
import { smooth } from './util.js';

let uPlotPromise = null;

/* The library, or an Error saying how to install it. */
export function loadLibrary() {
	if (!uPlotPromise)
		uPlotPromise = import('../vendor/uPlot.esm.js').then((m) => m.default, () => {
			throw new Error('chart library missing: run `make web-deps` (copies uPlot into web/vendor/)');
		});
	return uPlotPromise;
}

/* Okabe–Ito colours, distinguishable with the common colour-vision
 * deficiencies; a job keeps its colour across charts. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7F3C8D', '#555555'];
export const colorOf = (jobId) => PALETTE[(jobId - 1) % PALETTE.length];

function fade(hex, alpha) {
	const n = parseInt(hex.slice(1), 16);
	return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/*
 * Aligns several jobs' rows on the union of their epochs (uPlot wants one
 * x array): returns {xs, raw: [[v or null per x] per job]}.
 */
export function align(series, field) {
	const epochs = new Set();
	for (const s of series)
		for (const r of s.rows)
			epochs.add(r.epoch);
	const xs = [...epochs].sort((a, b) => a - b);
	const index = new Map(xs.map((x, i) => [x, i]));
	const raw = series.map((s) => {
		const ys = new Array(xs.length).fill(null);
		for (const r of s.rows) {
			const v = r[field];
			ys[index.get(r.epoch)] = v === null || v === undefined ? null : v;
		}
		return ys;
	});
	return { xs, raw };
}

export class OverlayChart {
	/* box: the element to draw in; opts: {field, format(v) -> text, log, syncKey} */
	constructor(box, opts) {
		this.box = box;
		this.opts = opts;
		this.plot = null;
		this.shape = '';
		this.observer = new ResizeObserver(() => {
			if (this.plot)
				this.plot.setSize(this.size());
		});
		this.observer.observe(box);
	}

	size() {
		const w = Math.max(240, Math.floor(this.box.clientWidth));
		return { width: w, height: w < 500 ? 200 : 260 };
	}

	/* series: [{job, rows}]; view: {smoothing, raw, log} */
	update(uPlot, series, view) {
		const { xs, raw } = align(series, this.opts.field);
		const showRaw = view.raw && view.smoothing > 0;
		const data = [xs];
		const defs = [{ label: 'epoch' }];
		series.forEach((s, i) => {
			const c = colorOf(s.job);
			data.push(smooth(raw[i], view.smoothing));
			defs.push({
				label: `job ${s.job}`, stroke: c, width: 2, spanGaps: true,
				points: { show: true, size: 6, fill: c }, value: (u, v) => this.opts.format(v),
			});
			if (showRaw) {
				data.push(raw[i]);
				defs.push({
					label: `job ${s.job} raw`, stroke: fade(c, 0.4), width: 1, spanGaps: true,
					points: { show: true, size: 4, stroke: fade(c, 0.5), fill: fade(c, 0.5) },
					value: (u, v) => this.opts.format(v),
				});
			}
		});
		const log = this.opts.log && view.log;
		/* A new plot when the series or axes change; new data otherwise. */
		const shape = JSON.stringify([defs.map((d) => d.label), log]);
		this.box.dataset.points = series.map((s, i) => `${s.job}:${raw[i].filter((v) => v !== null).length}`).join(',');
		this.box.dataset.log = String(log);
		if (this.plot && shape === this.shape) {
			this.plot.setData(data);
			return;
		}
		this.destroy();
		this.shape = shape;
		if (series.length === 0)
			return;
		const fmt = this.opts.format;
		this.plot = new uPlot({
			...this.size(),
			cursor: { sync: { key: this.opts.syncKey }, points: { size: 8 } },
			legend: { live: true },
			scales: {
				x: { time: false },
				/* Log: a little margin around the data rather than whole
				 * decades, so a loss going from 5.7 to 4.6 fills the plot. */
				y: log ? { distr: 3, log: 10, range: (u, min, max) => [min / 1.04, max * 1.04] }
					: { range: (u, min, max) => this.linearRange(min, max) },
			},
			axes: [
				{ label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
				  values: (u, ticks) => ticks.map((t) => String(t)) },
				/* uPlot passes null for the log ticks it leaves unlabelled. */
				{ values: (u, ticks) => ticks.map((t) => (t === null ? '' : fmt(t))), size: 60 },
			],
			series: defs,
		}, data, this.box);
	}

	/* 10% margin (at least 0.01), kept inside opts.bounds ([0, 1] for an
	 * accuracy) so a single point does not stretch the axis to 125%. */
	linearRange(min, max) {
		if (min === null || max === null || !isFinite(min) || !isFinite(max))
			return this.opts.bounds || [0, 1];
		const pad = Math.max((max - min) * 0.1, 0.01);
		const [lo, hi] = this.opts.bounds || [-Infinity, Infinity];
		return [Math.max(lo, min - pad), Math.min(hi, max + pad)];
	}

	destroy() {
		if (this.plot) {
			this.plot.destroy();
			this.plot = null;
		}
	}
}
