/*
 * web/js/neighbors.js — the neighbours browser: pick a job (its embedding
 * index), then query with a test image from the grid, an uploaded JPEG/PNG
 * or an image URL; shows the query and its top-k with labels and cosine
 * similarities, results sharing the query's label marked (text and border,
 * not colour alone).
 *
 * API: GET /neighbors?image=test:N|URL&k=&job=, POST /neighbors?k=&job= with
 * the image as the body, answered
 * {"job", "query": {...}, "neighbors": [{"split", "index", "label", "similarity"}], "seconds"};
 * thumbnails from GET /datasets/{name}/images/{split}/{index}.
 */
import * as api from './api.js';
import * as store from './store.js';
import { el, labelName } from './util.js';

const PER_PAGE = 24;
let jobSel, kIn, fileIn, urlForm, urlIn, status, result, grid, pageLabel, prevBtn, nextBtn;
let page = 0, lastGridKey = '', uploadUrl = null;

function imageUrl(dataset, split, index) {
	return api.url(`/datasets/${encodeURIComponent(dataset)}/images/${split}/${index}`);
}

function currentJob() {
	const id = Number(jobSel.value);
	return store.jobs.get(id) || null;
}

function k() {
	const v = Math.round(Number(kIn.value));
	return v >= 1 ? v : 10;
}

/* Jobs that have trained at least one epoch can answer queries. */
function fillJobs() {
	const keep = jobSel.value;
	const usable = [...store.jobs.values()].filter((j) => j.epoch > 0).sort((a, b) => b.id - a.id);
	const opts = usable.map((j) => el('option', {
		value: String(j.id),
		text: `job ${j.id} · ${j.spec.dataset} · ${j.spec.model} · ${j.status} · epoch ${j.epoch}`,
	}));
	if (opts.length === 0)
		opts.push(el('option', { value: '', text: 'no trained job yet' }));
	const before = [...jobSel.options].map((o) => o.value + o.text).join('|');
	const after = opts.map((o) => o.value + o.text).join('|');
	if (before !== after) {
		jobSel.replaceChildren(...opts);
		if (keep && usable.some((j) => String(j.id) === keep))
			jobSel.value = keep;
	}
	renderGrid();
}

function renderGrid() {
	const job = currentJob();
	const key = job ? `${job.spec.dataset}:${page}` : '';
	if (key === lastGridKey)
		return;
	lastGridKey = key;
	grid.replaceChildren();
	prevBtn.disabled = !job || page === 0;
	nextBtn.disabled = !job;
	pageLabel.textContent = job ? `images ${page * PER_PAGE}–${page * PER_PAGE + PER_PAGE - 1}` : '';
	if (!job)
		return;
	const ds = job.spec.dataset;
	for (let i = page * PER_PAGE; i < (page + 1) * PER_PAGE; i++) {
		const img = el('img', { src: imageUrl(ds, 'test', i), alt: '', loading: 'lazy', width: '56', height: '56' });
		const li = el('li', {}, el('button', {
			type: 'button', class: 'thumb', 'aria-label': `Query with test image ${i}`,
			'data-index': String(i), onclick: () => queryRef(`test:${i}`, { src: img.src, split: 'test', index: i }),
		}, img));
		/* Past the end of the split: drop the tile. */
		img.addEventListener('error', () => li.remove(), { once: true });
		grid.append(li);
	}
}

function similarityText(s) {
	return typeof s === 'number' ? s.toFixed(3) : '—';
}

function showResult(ans, shown) {
	const job = store.jobs.get(ans.job) || currentJob();
	const ds = job ? job.spec.dataset : '';
	const q = ans.query || {};
	const qLabel = q.label ?? shown.label ?? null;
	const split = q.split ?? shown.split, index = q.index ?? shown.index;
	const known = split !== undefined && index !== undefined;
	const qSrc = shown.src || (known ? imageUrl(ds, split, index) : null);
	const qDesc = known ? `${split} #${index}` : shown.name || 'query';
	const same = ans.neighbors.filter((n) => qLabel !== null && n.label === qLabel).length;
	const query = el('figure', { class: 'query' },
		qSrc ? el('img', { src: qSrc, alt: `query image ${qDesc}` }) : el('div', { class: 'noimg', text: '?' }),
		el('figcaption', {},
			el('strong', { text: 'Query' }), el('br'), qDesc, el('br'),
			`label ${qLabel === null ? 'unknown' : labelName(ds, qLabel)}`));
	const items = ans.neighbors.map((n, i) => {
		const match = qLabel !== null && n.label === qLabel;
		return el('li', { class: match ? 'nb same' : 'nb' },
			el('img', { src: imageUrl(ds, n.split, n.index), alt: `${n.split} image ${n.index}`, width: '84', height: '84' }),
			el('span', { class: 'rank', text: `#${i + 1}` }),
			el('span', { class: 'lbl', text: labelName(ds, n.label) }),
			el('span', { class: 'sim', text: `sim ${similarityText(n.similarity)}` }),
			match ? el('span', { class: 'badge', text: '✓ same label' }) : null);
	});
	const summary = qLabel === null
		? `${ans.neighbors.length} neighbours (query label unknown)`
		: `${ans.neighbors.length} neighbours, ${same} with the query's label`;
	result.replaceChildren(query, el('div', { class: 'nb-list' },
		el('ol', { class: 'nb-items', 'aria-label': 'nearest neighbours' }, ...items)));
	status.textContent = `${summary} · job ${ans.job}` +
		(typeof ans.seconds === 'number' ? ` · ${(1000 * ans.seconds).toFixed(1)} ms` : '');
}

async function run(what, shown, call) {
	const job = currentJob();
	if (!job) {
		status.textContent = 'Pick a job first (one with at least one trained epoch).';
		return;
	}
	status.textContent = `Searching the ${k()} nearest neighbours of ${what}…`;
	try {
		showResult(await call(job.id), shown);
	} catch (e) {
		result.replaceChildren();
		status.textContent = `Query failed: ${e.message}`;
	}
}

function queryRef(ref, shown) {
	return run(ref, shown, (id) =>
		api.get(`/neighbors?image=${encodeURIComponent(ref)}&k=${k()}&job=${id}`));
}

function queryFile(file) {
	if (uploadUrl)
		URL.revokeObjectURL(uploadUrl);
	uploadUrl = URL.createObjectURL(file);
	return run(file.name, { src: uploadUrl, name: file.name }, (id) =>
		api.request('POST', `/neighbors?k=${k()}&job=${id}`, { body: file, type: file.type || 'application/octet-stream' }));
}

export function init() {
	jobSel = document.getElementById('nb-job');
	kIn = document.getElementById('nb-k');
	fileIn = document.getElementById('nb-file');
	urlForm = document.getElementById('nb-url-form');
	urlIn = document.getElementById('nb-url');
	status = document.getElementById('nb-status');
	result = document.getElementById('nb-result');
	grid = document.getElementById('nb-grid');
	pageLabel = document.getElementById('nb-page');
	prevBtn = document.getElementById('nb-prev');
	nextBtn = document.getElementById('nb-next');
	jobSel.addEventListener('change', () => { page = 0; renderGrid(); });
	prevBtn.addEventListener('click', () => { page = Math.max(0, page - 1); renderGrid(); });
	nextBtn.addEventListener('click', () => { page++; renderGrid(); });
	fileIn.addEventListener('change', () => {
		if (fileIn.files.length)
			queryFile(fileIn.files[0]);
	});
	urlForm.addEventListener('submit', (ev) => {
		ev.preventDefault();
		const u = urlIn.value.trim();
		if (u)
			queryRef(u, { src: u, name: u });
	});
	store.on((kind) => {
		if (kind === 'jobs' || kind === 'job')
			fillJobs();
	});
}
