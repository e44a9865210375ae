/*
 * web/js/chart.js — one overlay chart of several jobs' per-epoch values, on
 * uPlot (web/vendor/uPlot.esm.js, copied from the npm package by
 * `make web-deps`). x is the epoch; each job is a smoothed line with points
 * and, optionally, its raw values as a faint line; the legend under the plot
 * is the hover read-out (values at the cursor's epoch). A log y axis gets
 * its own ticks (logTicks), enough of them when the range is under a decade.
 * Charts made with the same sync key share the cursor.
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

/* v to a number of decimals, dropping the binary fraction's tail (3 × 0.1 -> 0.3). */
const roundTo = (v, decimals) => Number(v.toFixed(Math.min(20, Math.max(0, decimals))));

/*
 * Ticks for a log axis from min to max (both > 0): at least 4 where the
 * range allows, about 10 at most. Over a factor of 3 or more: the powers of
 * ten, else 1-2-5, 1-2-3-5 or 1…9 of each decade, the first set that gives
 * 4. Over less (a loss going from 6.2 to 4.9) uPlot's own ticks, 1…9 ×
 * 10^k, leave one or two, so there the ticks are evenly spaced by 1, 2, 2.5
 * or 5 × 10^k: the widest step that gives 4.
 */
export function logTicks(min, max) {
	if (!(min > 0) || !(max >= min) || !isFinite(max))
		return [];
	if (max === min)
		return [min];
	const inside = (v) => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
	if (max / min >= 3)
		for (const mantissas of [[1], [1, 2, 5], [1, 2, 3, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
			const ticks = [];
			for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++)
				for (const m of mantissas) {
					const v = roundTo(m * Math.pow(10, e), -e);
					if (inside(v))
						ticks.push(v);
				}
			if (ticks.length >= 4)
				return ticks;
		}
	const top = Math.floor(Math.log10(max - min || max));
	for (let e = top; e >= top - 3; e--)
		for (const m of [5, 2.5, 2, 1]) {
			const step = m * Math.pow(10, e), decimals = -e + (m === 2.5 ? 1 : 0);
			const ticks = [];
			for (let k = Math.ceil(min / step - 1e-9); inside(k * step); k++)
				ticks.push(roundTo(k * step, decimals));
			if (ticks.length >= 4)
				return ticks;
		}
	return [min, max];
}

/* Tick labels: evenly spaced ticks with the same number of decimals
 * (4.75, 5.00, 5.25), others as short as they go (0.5, 1, 2, 5). */
export function tickText(ticks) {
	const short = ticks.map((t) => (t === null ? '' : String(Number(t.toPrecision(6)))));
	const real = ticks.filter((t) => t !== null);
	const step = real[1] - real[0];
	const even = real.length > 2 && real.every((t, i) => i === 0 || Math.abs(t - real[i - 1] - step) <= 1e-9 * Math.abs(step));
	if (!even || short.some((s) => s.includes('e')))
		return short;
	const decimals = Math.max(...short.map((s) => (s.split('.')[1] || '').length));
	return ticks.map((t) => (t === null ? '' : t.toFixed(decimals)));
}

export class OverlayChart {
	/* box: the element to draw in; opts: {field, format(v) -> text for the
	 * read-out, ticks(values) -> texts for the y axis, log, bounds, syncKey} */
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
		const tickLabels = this.opts.ticks || ((ts) => ts.map((t) => (t === null ? '' : this.opts.format(t))));
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
				/* Log: our ticks (logTicks), every one labelled. The
				 * labels drawn are kept in data-yticks, for the tests. */
				{
					size: 60,
					values: (u, ticks) => {
						const labels = tickLabels(ticks);
						this.box.dataset.yticks = labels.filter(Boolean).join(' ');
						return labels;
					},
					...(log ? { splits: (u, i, min, max) => logTicks(min, max), filter: (u, splits) => splits } : {}),
				},
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
