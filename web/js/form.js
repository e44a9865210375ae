/*
 * web/js/form.js — the job submission form. The daemon is the validator
 * (the form has novalidate): a rejected spec comes back as
 * {"error": {"code": "invalid_spec", "message": "epochs: must be ..."}},
 * and the message's leading field path picks the input it is shown next to
 * (aria-invalid + aria-describedby, focus moved there), in a callout that
 * floats under the input so that no other control moves. Messages whose
 * path matches no input are shown under the submit button.
 *
 * The defaults are a quick run (convnet, 5 epochs, 10 000 images: the
 * README's first job), and the line beside the submit button estimates how
 * long the run in the form will take before it is submitted.
 */
import * as api from './api.js';
import * as store from './store.js';
import { el, estimateRunSeconds, roughDuration } from './util.js';

let form, formError, formStatus, formEstimate;

/* Training images/s (source images, each trained as two views) of each
 * model at 28×28 on the 2-core reference machine of docs/PERFORMANCE.md
 * (make bench, batch 128): the estimate's speed until a job of that model
 * and dataset has run on this daemon. Other image sizes scale by pixels. */
const REFERENCE_SPEED = { convnet: 2596, resnet20: 720, resnet18: 78.5 };
const REFERENCE_PIXELS = 28 * 28;
/* Split sizes of the default dataset, for before the daemon has loaded it
 * (GET /datasets has null sizes until then). */
const KNOWN_SIZES = { 'fashion-mnist': { train: 60000, test: 10000, pixels: 28 * 28 } };
/* An estimate above this is shown as a long run. */
const LONG_RUN_SECONDS = 3600;

/* Number inputs: '' means "use the daemon's default", unparsable text is
 * caught here because the browser hides it from .value. */
function numberField(spec, input, set) {
	if (input.validity.badInput)
		throw Object.assign(new Error(`${input.dataset.path}: must be a number`), { path: input.dataset.path });
	if (input.value.trim() !== '')
		set(spec, Number(input.value));
}

export function buildSpec() {
	const f = form.elements;
	const spec = { dataset: f.dataset.value, model: f.model.value, method: f.method.value };
	const top = (k) => (s, v) => { s[k] = v; };
	numberField(spec, f.epochs, top('epochs'));
	numberField(spec, f.batch_size, top('batch_size'));
	numberField(spec, f.lr, top('lr'));
	numberField(spec, f.temperature, top('temperature'));
	numberField(spec, f.seed, top('seed'));
	numberField(spec, f.train_subset, top('train_subset'));
	numberField(spec, f.knn_k, (s, v) => { s.eval = { knn_k: v }; });
	if (f.linear_probe.checked)
		spec.eval = { ...spec.eval, linear_probe: true };
	/* fp32 is the daemon's default: only bf16 is sent */
	if (f.precision.value !== 'fp32')
		spec.precision = f.precision.value;
	/* A switch off means the augmentation never happens; on keeps the
	 * method's defaults (DESIGN.md "The method"). */
	spec.augment = {
		crop: f.crop.checked,
		hflip: f.hflip.checked ? 0.5 : 0,
		grayscale: f.grayscale.checked ? 0.2 : 0,
		color_jitter: { p: f.color_jitter.checked ? 1.0 : 0 },
	};
	numberField(spec, f.random_crop, (s, v) => { s.augment.random_crop = v; });
	/* Pretrained weights (DESIGN.md "Starting from pretrained weights"). */
	spec.init = { checkpoint: f.init_checkpoint.value };
	numberField(spec, f.freeze_epochs, (s, v) => { s.init.freeze_epochs = v; });
	return spec;
}

/* The callout for input's message, inside its .field (or its label in
 * the switches); style.css takes it out of the flow. */
function errorNode(input) {
	const id = input.id + '-err';
	let node = document.getElementById(id);
	if (!node) {
		node = el('p', { id, class: 'err field-err' });
		(input.closest('.field') || input.closest('label') || input.parentElement).append(node);
	}
	return node;
}

/* A callout hangs from its field's left edge, or from its right edge when
 * that would cross the form's; and never wider than the form. */
function placeCallout(node) {
	const pad = 8, f = form.getBoundingClientRect();
	node.classList.remove('flip');
	node.style.maxWidth = `${Math.max(120, f.width - 2 * pad)}px`;
	if (node.getBoundingClientRect().right > f.right - pad)
		node.classList.add('flip');
	if (node.getBoundingClientRect().left < f.left + pad) {
		node.classList.remove('flip');
		node.style.maxWidth = `${Math.max(120, f.right - pad - node.getBoundingClientRect().left)}px`;
	}
}

function clearErrors() {
	for (const input of form.querySelectorAll('[aria-invalid]')) {
		input.removeAttribute('aria-invalid');
		input.removeAttribute('aria-describedby');
	}
	for (const node of form.querySelectorAll('.field-err'))
		node.remove();
	formError.textContent = '';
}

/* The input whose data-path is the longest prefix of path. */
function inputFor(path) {
	let best = null;
	for (const node of form.querySelectorAll('[data-path]')) {
		const p = node.dataset.path;
		if ((path === p || path.startsWith(p + '.') || path.startsWith(p + '[')) &&
		    (!best || p.length > best.dataset.path.length))
			best = node;
	}
	if (best && best.tagName === 'FIELDSET')
		best = best.querySelector('input');
	return best;
}

export function showError(message, code) {
	const m = /^([A-Za-z_][\w.[\]]*): (.*)$/s.exec(message);
	let path = m ? m[1] : '';
	if (!path && code === 'unknown_dataset')
		path = 'dataset';
	const input = path ? inputFor(path) : null;
	if (!input) {
		formError.textContent = message;
		return;
	}
	const node = errorNode(input);
	node.textContent = message;
	placeCallout(node);
	input.setAttribute('aria-invalid', 'true');
	input.setAttribute('aria-describedby', node.id);
	input.focus();
}

async function onSubmit(ev) {
	ev.preventDefault();
	clearErrors();
	let spec;
	try {
		spec = buildSpec();
	} catch (e) {
		showError(e.message);
		return;
	}
	const button = form.querySelector('button[type=submit]');
	button.disabled = true;
	formStatus.textContent = 'Submitting…';
	try {
		const job = await store.submit(spec);
		formStatus.textContent = `Job ${job.id} submitted (${job.status}).`;
	} catch (e) {
		formStatus.textContent = '';
		showError(e.message, e.code);
	} finally {
		button.disabled = false;
	}
}

/* ---- the run-time estimate ---------------------------------------------------- */

/* {train, test, pixels} of a dataset, from the daemon or KNOWN_SIZES. */
function datasetSize(name) {
	const d = store.datasets.find((x) => x.name === name);
	if (d && d.train_images > 0)
		return { train: d.train_images, test: d.test_images || 0, pixels: d.height * d.width || REFERENCE_PIXELS };
	return KNOWN_SIZES[name] || null;
}

/* The training speed of the newest job of this model and dataset on this
 * daemon that finished an epoch: {imagesPerSec, job}. (A running epoch's
 * pace is left out: its first batches are slow and would mislead.) */
function measuredSpeed(model, dataset) {
	const jobs = [...store.jobs.values()].filter((j) => j.spec && j.spec.model === model && j.spec.dataset === dataset)
		.sort((a, b) => b.id - a.id);
	for (const j of jobs) {
		const v = j.last_metrics?.images_per_sec;
		if (v > 0)
			return { imagesPerSec: v, job: j.id };
	}
	return null;
}

const count = (n) => Math.round(n).toLocaleString('en-US');

/* What the estimate line says: {seconds, text, how} or {text} without one. */
function estimate() {
	const f = form.elements;
	const model = f.model.value, dataset = f.dataset.value;
	/* Empty fields take the daemon's defaults (20 epochs, whole split). */
	const epochs = f.epochs.value.trim() === '' ? 20 : Number(f.epochs.value);
	const subset = f.train_subset.value.trim() === '' ? 0 : Number(f.train_subset.value);
	const size = datasetSize(dataset);
	if (!Number.isInteger(epochs) || epochs < 1 || !(subset >= 0))
		return { text: 'no run-time estimate for these values' };
	if (!size && !(subset > 0))
		return { text: `no run-time estimate: ${dataset || 'the dataset'}'s size is known once isifd has loaded it` };
	const images = subset > 0 && size ? Math.min(subset, size.train) : subset > 0 ? subset : size.train;
	const measured = measuredSpeed(model, dataset);
	let imagesPerSec, how;
	if (measured) {
		imagesPerSec = measured.imagesPerSec;
		how = `${count(imagesPerSec)} images/s, measured by job ${measured.job} on this machine`;
	} else if (REFERENCE_SPEED[model]) {
		imagesPerSec = REFERENCE_SPEED[model] * REFERENCE_PIXELS / ((size && size.pixels) || REFERENCE_PIXELS);
		how = `≈ ${count(imagesPerSec)} images/s, the reference figure for ${model} on 2 cores ` +
			`(no ${model} job on ${dataset} has run here yet)`;
	} else {
		return { text: `no run-time estimate for ${model}` };
	}
	const seconds = estimateRunSeconds({ trainImages: images, testImages: size ? size.test : 0, epochs, imagesPerSec });
	return { seconds, text: `${roughDuration(seconds)} estimated run time`,
		how: `${count(images)} images × ${epochs} epochs at ${how}; kNN evaluation each epoch included` };
}

/* The estimate line (its seconds in data-seconds), redrawn only when it
 * changes: the job list refreshes it every few seconds. */
function showEstimate() {
	const e = estimate();
	const long = e.seconds > LONG_RUN_SECONDS;
	const text = e.text + (long ? ' — a long run' : ''), how = e.how ? ` (${e.how})` : '';
	formEstimate.dataset.seconds = e.seconds > 0 ? String(e.seconds) : '';
	if (formEstimate.textContent === text + how)
		return;
	formEstimate.classList.toggle('long', long);
	formEstimate.replaceChildren(el('strong', { text }), how ? el('span', { class: 'hint', text: how }) : '');
}

function fillDatasets() {
	const select = form.elements.dataset;
	const keep = select.value;
	select.replaceChildren(...store.datasets.map((d) =>
		el('option', { value: d.name, text: d.available ? d.name : `${d.name} (unavailable)` })));
	if (keep && store.datasets.some((d) => d.name === keep))
		select.value = keep;
}

/* The uploaded starting checkpoints (GET /checkpoints) as choices. */
async function fillCheckpoints() {
	const select = form.elements.init_checkpoint;
	let list = [];
	try {
		list = (await api.get('/checkpoints')).checkpoints || [];
	} catch {
		return; /* an older daemon, or no token yet: only "its seed" */
	}
	const keep = select.value;
	select.replaceChildren(select.options[0],
		...list.map((c) => el('option', { value: c.name, text: c.name })));
	if (list.some((c) => c.name === keep))
		select.value = keep;
}

export function init() {
	form = document.getElementById('submit-form');
	formError = document.getElementById('form-error');
	formStatus = document.getElementById('form-status');
	formEstimate = document.getElementById('form-estimate');
	form.addEventListener('submit', onSubmit);
	form.addEventListener('input', showEstimate);
	form.addEventListener('change', showEstimate);
	window.addEventListener('resize', () => form.querySelectorAll('.field-err').forEach(placeCallout));
	store.on((kind) => {
		if (kind === 'datasets')
			fillDatasets();
		/* New jobs may bring a measured speed. */
		if (kind === 'datasets' || kind === 'jobs')
			showEstimate();
	});
	showEstimate();
	fillCheckpoints();
}
