/*
 * web/js/util.js — small pure helpers shared by the views: building DOM
 * nodes, number and duration formatting, the smoothing of a curve, the
 * CSV text of metrics rows, what differs between job specs and how long a
 * run should take. Nothing here touches the network or the page's
 * state.
 */

/* el('td', {class: 'num', text: '3'}, child, ...): a new element. Keys
 * starting with "on" add listeners; "text" sets textContent; others are
 * attributes (false/null/undefined skip them). */
export function el(tag, attrs = {}, ...children) {
	const node = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (v === false || v === null || v === undefined)
			continue;
		if (k === 'text')
			node.textContent = v;
		else if (k.startsWith('on'))
			node.addEventListener(k.slice(2), v);
		else
			node.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children)
		if (c !== null && c !== undefined && c !== false)
			node.append(c);
	return node;
}

export function pct(x) {
	return x === null || x === undefined ? '—' : (100 * x).toFixed(1) + '%';
}

export function num(x, digits = 1) {
	return x === null || x === undefined || !isFinite(x) ? '—' : x.toFixed(digits);
}

/* 75 -> "1m 15s", 3725 -> "1h 2m". */
export function duration(s) {
	if (s === null || s === undefined || !isFinite(s) || s < 0)
		return '—';
	s = Math.round(s);
	if (s < 60)
		return s + 's';
	if (s < 3600)
		return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
	return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
}

/* Seconds from ISO time a to b (b null: now). */
export function secondsBetween(a, b) {
	if (!a)
		return null;
	const end = b ? Date.parse(b) : Date.now();
	return (end - Date.parse(a)) / 1000;
}

/*
 * Exponential moving average with TensorBoard's debiasing, so the first
 * points are not pulled towards 0:
 *     m_t = w·m_{t-1} + (1−w)·y_t,   m_0 = 0,   s_t = m_t / (1 − w^n_t)
 * with n_t the number of non-null values seen so far. Nulls stay null and
 * do not advance the average. w = 0 returns the values unchanged.
 */
export function smooth(values, w) {
	if (!(w > 0))
		return values.slice();
	let m = 0, n = 0;
	return values.map((y) => {
		if (y === null || y === undefined || !isFinite(y))
			return null;
		m = w * m + (1 - w) * y;
		n++;
		return m / (1 - Math.pow(w, n));
	});
}

/* A spec flattened to {"augment.hflip": "0.5", ...}: objects by dotted
 * path, strings as they are, other values (numbers, arrays, null) as JSON. */
function flattenSpec(obj, prefix, out) {
	for (const [k, v] of Object.entries(obj)) {
		const path = prefix ? `${prefix}.${k}` : k;
		if (v !== null && typeof v === 'object' && !Array.isArray(v))
			flattenSpec(v, path, out);
		else
			out[path] = typeof v === 'string' ? v : JSON.stringify(v);
	}
	return out;
}

/* The fields in which several jobs' specs differ, in the first spec's
 * order: [{field: "lr", values: ["0.03", "0.06"]}, ...] ("—" where a spec
 * lacks the field). */
export function specDiff(specs) {
	const flat = specs.map((s) => flattenSpec(s || {}, '', {}));
	const fields = [...new Set(flat.flatMap((f) => Object.keys(f)))];
	return fields.map((field) => ({ field, values: flat.map((f) => (field in f ? f[field] : '—')) }))
		.filter((d) => d.values.some((v) => v !== d.values[0]));
}

/* Embedding an image (forward pass, one view) costs about a sixth of
 * training on it (forward and backward of two views): docs/PERFORMANCE.md,
 * convnet embeds 15 995 images/s where it trains 2 596. */
export const EMBED_SPEEDUP = 6;

/*
 * Seconds a job should take: each epoch trains on trainImages at
 * imagesPerSec (the daemon's images_per_sec: source images, each one two
 * augmented views), and every evalEvery-th epoch and the last embed the
 * train and test images for the kNN evaluation at EMBED_SPEEDUP times that.
 * null without a usable speed, image count or epoch count.
 */
export function estimateRunSeconds({ trainImages, testImages = 0, epochs, imagesPerSec, evalEvery = 1 }) {
	if (!(imagesPerSec > 0) || !(trainImages > 0) || !(epochs >= 1))
		return null;
	const evals = evalEvery > 0 ? Math.ceil(epochs / evalEvery) : 0;
	return epochs * trainImages / imagesPerSec +
		evals * (trainImages + (testImages || 0)) / (EMBED_SPEEDUP * imagesPerSec);
}

/* A duration for an estimate: "≈ 40 s", "≈ 3 min", "≈ 2 h 20 min". */
export function roughDuration(s) {
	if (s === null || s === undefined || !isFinite(s) || s < 0)
		return '—';
	if (s < 59.5)
		return `≈ ${Math.max(1, Math.round(s))} s`;
	const min = Math.round(s / 60);
	if (min < 60)
		return `≈ ${min} min`;
	return `≈ ${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ''}`;
}

const CSV_COLUMNS = ['epoch', 'loss', 'knn_top1', 'knn_top5', 'lr', 'seconds', 'images_per_sec',
	'probe_top1', 'probe_backbone_top1'];

/* One CSV (RFC 4180) of several jobs' metrics, long format: a job column
 * first, then the API's row fields; empty cells for nulls. */
export function metricsCsv(series) {
	const lines = ['job,' + CSV_COLUMNS.join(',')];
	for (const { job, rows } of series)
		for (const r of rows)
			lines.push([job, ...CSV_COLUMNS.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c])))].join(','));
	return lines.join('\r\n') + '\r\n';
}

/* Fashion-MNIST's and CIFAR-10's class names, for readable labels. */
const CLASS_NAMES = {
	'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
	'cifar10': ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
	'cifar-10': ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
};

export function labelName(dataset, label) {
	if (label === null || label === undefined)
		return 'unknown';
	const names = CLASS_NAMES[dataset];
	return names && names[label] !== undefined ? `${label} · ${names[label]}` : String(label);
}
