/*
 * web/js/jobs.js — the jobs table: one row per job, newest first, updated in
 * place (rows and their buttons persist, so keyboard focus survives the live
 * updates), with the compare switch, cancel and delete behind a confirmation
 * dialog. The submit form is form.js.
 */
import * as store from './store.js';
import { el, pct, num, duration, secondsBetween } from './util.js';

const rows = new Map();   /* id -> {tr, cells} */
let tbody, empty, announce;

/* Resolves true when the user confirms text in the confirmation dialog. */
export function confirmAction(text, yesLabel) {
	const dlg = document.getElementById('confirm-dialog');
	document.getElementById('confirm-text').textContent = text;
	document.getElementById('confirm-yes').textContent = yesLabel;
	return new Promise((resolve) => {
		dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
		dlg.returnValue = '';
		dlg.showModal();
	});
}

/* The state; a job whose run ended but whose end isifd could not record
 * yet (end_pending: a full disk, say) says so, with the reason as title. */
function stateCell(job) {
	const e = job.end_pending;
	if (e && job.status === 'running')
		return el('span', { class: 'state state-running', text: 'ending (retrying)',
			title: `ends ${e.status}; recording that failed ${e.retries} times: ${e.error}` });
	const s = job.cancel_requested && job.status === 'running' ? 'cancelling' : job.status;
	return el('span', { class: 'state state-' + job.status, text: s, title: job.error || null });
}

/* "2 / 3" and, while running, the phase (training, evaluating) and a bar
 * for its progress in the epoch. */
function epochCell(job) {
	const frag = document.createDocumentFragment();
	frag.append(`${job.epoch} / ${job.epochs}`);
	const p = job.progress;
	if (job.status === 'running' && p && p.images_total > 0) {
		const done = Math.min(1, p.images_done / p.images_total);
		const phase = p.phase || 'training';
		frag.append(el('span', { class: 'phase', text: ' ' + phase }));
		frag.append(el('progress', {
			max: '1', value: String(done),
			'aria-label': `job ${job.id} epoch ${p.epoch} ${phase} ${Math.round(100 * done)}% done`,
		}));
	}
	return frag;
}

/* "1.2 GiB" */
function bytes(n) {
	if (n === null || n === undefined)
		return null;
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/* The model, with the job's estimated peak memory, processes and threads as its title. */
function modelTitle(job) {
	const parts = [];
	const procs = job.spec.processes ?? 1;
	if (job.memory_estimate_bytes != null)
		parts.push(`estimated peak memory ${bytes(job.memory_estimate_bytes)}`);
	if (procs > 1)
		parts.push(`${procs} MPI processes`);
	if (job.threads != null)
		parts.push(`${job.threads} threads${procs > 1 ? ' each' : ''}`);
	return parts.join(', ');
}

function elapsed(job) {
	return duration(secondsBetween(job.started_at, job.finished_at));
}

function imagesPerSec(job) {
	const p = job.status === 'running' && job.progress ? job.progress.images_per_sec : null;
	const v = p ?? (job.last_metrics ? job.last_metrics.images_per_sec : null);
	return num(v, 0);
}

function eta(job) {
	const p = job.status === 'running' ? job.progress : null;
	return p && p.eta_seconds != null ? duration(p.eta_seconds) : '—';
}

async function onCancel(id) {
	if (!(await confirmAction(`Cancel job ${id}? Its metrics and last checkpoint are kept.`, 'Cancel job')))
		return;
	try {
		await store.cancel(id);
		announce(`Job ${id}: cancel requested.`);
	} catch (e) {
		announce(`Job ${id} could not be cancelled: ${e.message}`, true);
	}
}

async function onDelete(id) {
	if (!(await confirmAction(`Delete job ${id}, its metrics and its files? This cannot be undone.`, 'Delete job')))
		return;
	const next = rows.get(id)?.tr.nextElementSibling || rows.get(id)?.tr.previousElementSibling;
	try {
		await store.remove(id);
		announce(`Job ${id} deleted.`);
		/* Keep the keyboard where it was: the next row's first control. */
		(next?.querySelector('input, button') || document.getElementById('jobs-h')).focus();
	} catch (e) {
		announce(`Job ${id} could not be deleted: ${e.message}`, true);
	}
}

function makeRow(id) {
	const cb = el('input', {
		type: 'checkbox', 'aria-label': `Compare job ${id}`,
		onchange: (ev) => store.select(id, ev.target.checked),
	});
	const cancelBtn = el('button', { type: 'button', class: 'small', text: 'Cancel', 'aria-label': `Cancel job ${id}`, onclick: () => onCancel(id) });
	const deleteBtn = el('button', { type: 'button', class: 'small danger', text: 'Delete', 'aria-label': `Delete job ${id}`, onclick: () => onDelete(id) });
	const cells = {
		compare: el('td', {}, cb), id: el('th', { scope: 'row', text: String(id) }),
		state: el('td'), dataset: el('td'), model: el('td'), epoch: el('td', { class: 'epoch' }),
		last: el('td', { class: 'num' }), best: el('td', { class: 'num' }), ips: el('td', { class: 'num' }),
		elapsed: el('td', { class: 'num' }), eta: el('td', { class: 'num' }),
		actions: el('td', { class: 'actions' }, cancelBtn, deleteBtn),
	};
	/* On a phone the rows become cards (style.css); each cell names its
	 * column, and explicit roles keep the table's semantics there. */
	const heads = ['Compare', 'Job', 'State', 'Dataset', 'Model', 'Epoch', 'Last top-1', 'Best top-1',
		'Images/s', 'Elapsed', 'ETA', 'Actions'];
	Object.values(cells).forEach((c, i) => {
		c.dataset.label = heads[i];
		c.setAttribute('role', c.tagName === 'TH' ? 'rowheader' : 'cell');
	});
	const tr = el('tr', { 'data-job': String(id), role: 'row' }, ...Object.values(cells));
	return { tr, cells, cb, cancelBtn, deleteBtn };
}

function setText(node, text) {
	if (node.textContent !== text)
		node.textContent = text;
}

function updateRow(r, job) {
	const c = r.cells;
	r.tr.dataset.status = job.status;
	c.state.replaceChildren(stateCell(job));
	setText(c.dataset, job.spec.dataset);
	/* a data-parallel job shows its process count beside the model */
	const procs = job.spec.processes ?? 1;
	setText(c.model, procs > 1 ? `${job.spec.model} × ${procs}` : job.spec.model);
	c.model.title = modelTitle(job);
	c.epoch.replaceChildren(epochCell(job));
	setText(c.last, pct(job.last_metrics ? job.last_metrics.knn_top1 : null));
	setText(c.best, pct(store.bestTop1(job.id)));
	setText(c.ips, imagesPerSec(job));
	setText(c.elapsed, elapsed(job));
	setText(c.eta, eta(job));
	r.cb.checked = store.selected.has(job.id);
	const done = store.isFinal(job);
	/* Hidden rather than disabled would move focus; disabled keeps layout. */
	r.cancelBtn.disabled = done || job.cancel_requested;
	r.deleteBtn.disabled = !done;
}

function renderAll() {
	const ids = [...store.jobs.keys()].sort((a, b) => b - a);
	for (const [id, r] of rows)
		if (!store.jobs.has(id)) {
			r.tr.remove();
			rows.delete(id);
		}
	let prev = null;
	for (const id of ids) {
		let r = rows.get(id);
		if (!r) {
			r = makeRow(id);
			rows.set(id, r);
		}
		updateRow(r, store.jobs.get(id));
		const want = prev ? prev.nextSibling : tbody.firstChild;
		if (want !== r.tr)
			tbody.insertBefore(r.tr, want);
		prev = r.tr;
	}
	empty.hidden = ids.length > 0;
}

export function init(announceFn) {
	announce = announceFn;
	tbody = document.querySelector('#jobs-table tbody');
	empty = document.getElementById('jobs-empty');
	store.on((kind, id) => {
		if (kind === 'jobs')
			renderAll();
		else if ((kind === 'job' || kind === 'metrics' || kind === 'selection') && rows.has(id) && store.jobs.has(id))
			updateRow(rows.get(id), store.jobs.get(id));
	});
	/* Elapsed and ETA move with the clock between events. */
	setInterval(() => {
		for (const [id, r] of rows) {
			const job = store.jobs.get(id);
			if (job && job.status === 'running')
				setText(r.cells.elapsed, elapsed(job));
		}
	}, 1000);
}
