/*
 * web/js/form.js — the job submission form. The daemon is the validator
 * (the form has novalidate): a rejected spec comes back as
 * {"error": {"code": "invalid_spec", "message": "epochs: must be ..."}},
 * and the message's leading field path picks the input it is shown next to
 * (aria-invalid + aria-describedby, focus moved there). Messages whose path
 * matches no input are shown above the submit button.
 */
import * as store from './store.js';
import { el } from './util.js';

let form, formError, formStatus;

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
	const spec = { dataset: f.dataset.value, model: f.model.value };
	const top = (k) => (s, v) => { s[k] = v; };
	numberField(spec, f.epochs, top('epochs'));
	numberField(spec, f.batch_size, top('batch_size'));
	numberField(spec, f.lr, top('lr'));
	numberField(spec, f.temperature, top('temperature'));
	numberField(spec, f.seed, top('seed'));
	numberField(spec, f.train_subset, top('train_subset'));
	numberField(spec, f.knn_k, (s, v) => { s.eval = { knn_k: v }; });
	/* A switch off means the augmentation never happens; on keeps the
	 * method's defaults (DESIGN.md "The method"). */
	spec.augment = {
		crop: f.crop.checked,
		hflip: f.hflip.checked ? 0.5 : 0,
		grayscale: f.grayscale.checked ? 0.2 : 0,
		color_jitter: { p: f.color_jitter.checked ? 1.0 : 0 },
	};
	return spec;
}

function errorNode(input) {
	const id = input.id + '-err';
	let node = document.getElementById(id);
	if (!node) {
		node = el('p', { id, class: 'err field-err' });
		(input.closest('.field') || input.closest('label') || input).after(node);
	}
	return node;
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

function fillDatasets() {
	const select = form.elements.dataset;
	const keep = select.value;
	select.replaceChildren(...store.datasets.map((d) =>
		el('option', { value: d.name, text: d.available ? d.name : `${d.name} (unavailable)` })));
	if (keep && store.datasets.some((d) => d.name === keep))
		select.value = keep;
}

export function init() {
	form = document.getElementById('submit-form');
	formError = document.getElementById('form-error');
	formStatus = document.getElementById('form-status');
	form.addEventListener('submit', onSubmit);
	store.on((kind) => {
		if (kind === 'datasets')
			fillDatasets();
	});
}
