/*
 * web/js/store.js — what the dashboard knows about the daemon's jobs and how
 * it stays current: the job list, each job's per-epoch metrics rows, the
 * jobs picked for comparison, and the live feed.
 *
 * Live feed: one EventSource per running job (/jobs/{id}/events: "state",
 * "progress", "epoch"), at most MAX_STREAMS of them because a browser keeps
 * only six HTTP/1.1 connections per host. The job list is polled as well
 * (every POLL_SSE_MS, or POLL_FALLBACK_MS while some running job has no
 * stream); a running job without a stream gets its new rows from
 * /jobs/{id}/metrics?since=E on each poll, so everything keeps working when
 * EventSource is missing or refused.
 *
 * Views subscribe with on(fn); fn(kind, id) is called with kind "jobs" (the
 * list changed), "job" (one job's state or progress) or "metrics".
 */
import * as api from './api.js';

const MAX_STREAMS = 4;
const POLL_SSE_MS = 4000;
const POLL_FALLBACK_MS = 1500;
const MAX_STREAM_FAILURES = 3;
const METRICS_JOBS = 100;
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const COMPARE_KEY = 'isifd.compare';

export const jobs = new Map();     /* id -> job object as the API returns it */
export const metrics = new Map();  /* id -> rows ascending by epoch */
export const datasets = [];
export const selected = new Set(loadSelection());

const streams = new Map();         /* id -> EventSource */
const streamFailures = new Map();  /* id -> count of streams that closed on error */
const syncing = new Set();         /* ids with a metrics request in flight */
const listeners = new Set();
let pollTimer = null;
let lastError = null;

export const isFinal = (job) => FINAL.has(job.status);

export function on(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

function emit(kind, id) {
	for (const fn of listeners)
		fn(kind, id);
}

/* "live" when every running job has an open event stream, else "polling". */
export function liveMode() {
	if (typeof EventSource === 'undefined')
		return 'polling';
	for (const j of jobs.values())
		if (j.status === 'running' && !(streams.has(j.id) && streams.get(j.id).readyState === EventSource.OPEN))
			return 'polling';
	return 'live';
}

export const error = () => lastError;

export function bestTop1(id) {
	let best = null;
	for (const r of metrics.get(id) || [])
		if (r.knn_top1 !== null && r.knn_top1 !== undefined && (best === null || r.knn_top1 > best))
			best = r.knn_top1;
	return best;
}

/* ---- comparison selection ------------------------------------------------ */

function loadSelection() {
	try {
		return JSON.parse(sessionStorage.getItem(COMPARE_KEY) || '[]').filter(Number.isInteger);
	} catch {
		return [];
	}
}

export function select(id, on_) {
	if (on_) {
		selected.add(id);
		syncMetrics(id);
	} else {
		selected.delete(id);
	}
	try {
		sessionStorage.setItem(COMPARE_KEY, JSON.stringify([...selected]));
	} catch {
		/* not kept across reloads then */
	}
	emit('selection', id);
}

/* ---- metrics rows ---------------------------------------------------------- */

function addRows(id, rows) {
	const have = metrics.get(id) || [];
	const byEpoch = new Map(have.map((r) => [r.epoch, r]));
	let changed = false;
	for (const r of rows) {
		if (!byEpoch.has(r.epoch))
			changed = true;
		byEpoch.set(r.epoch, r);
	}
	if (!changed && have.length)
		return;
	metrics.set(id, [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch));
	emit('metrics', id);
}

function lastEpoch(id) {
	const rows = metrics.get(id);
	return rows && rows.length ? rows[rows.length - 1].epoch : 0;
}

/* Fetches the rows after the last one we have, when the job says there are. */
export async function syncMetrics(id, force = false) {
	const job = jobs.get(id);
	if (syncing.has(id) || (!force && metrics.has(id) && (!job || job.epoch <= lastEpoch(id))))
		return;
	syncing.add(id);
	try {
		const since = lastEpoch(id);
		const ans = await api.get(`/jobs/${id}/metrics?since=${since}`);
		if (!metrics.has(id) && ans.metrics.length === 0) {
			metrics.set(id, []);
			emit('metrics', id);
		}
		addRows(id, ans.metrics);
	} catch (e) {
		if (e.status === 404)
			forget(id);
	} finally {
		syncing.delete(id);
	}
}

/* ---- event streams --------------------------------------------------------- */

function closeStream(id) {
	const es = streams.get(id);
	if (es) {
		es.close();
		streams.delete(id);
	}
}

function openStream(id) {
	if (typeof EventSource === 'undefined' || streams.has(id) || streams.size >= MAX_STREAMS ||
	    (streamFailures.get(id) || 0) >= MAX_STREAM_FAILURES)
		return;
	const es = new EventSource(api.url(`/jobs/${id}/events`));
	streams.set(id, es);
	const parse = (ev) => {
		try {
			return JSON.parse(ev.data);
		} catch {
			return null;
		}
	};
	es.addEventListener('state', (ev) => {
		const job = parse(ev);
		if (!job)
			return;
		mergeJob(job);
		/* Rows missed while disconnected (the stream resumes with the state). */
		syncMetrics(id);
		if (isFinal(job)) {
			closeStream(id);
			syncMetrics(id, true);
		}
	});
	es.addEventListener('progress', (ev) => {
		const p = parse(ev);
		const job = jobs.get(id);
		if (!p || !job)
			return;
		job.progress = p;
		job.phase = p.phase;
		emit('job', id);
	});
	es.addEventListener('epoch', (ev) => {
		const row = parse(ev);
		if (!row)
			return;
		const job = jobs.get(id);
		if (job && row.epoch > job.epoch) {
			job.epoch = row.epoch;
			job.last_metrics = row;
		}
		delete row.job;
		addRows(id, [row]);
		emit('job', id);
	});
	es.addEventListener('open', () => {
		streamFailures.set(id, 0);
		emit('job', id);
	});
	es.addEventListener('error', () => {
		/* CLOSED: refused (401, 404, not an event stream). CONNECTING: the
		 * browser retries by itself; after MAX_STREAM_FAILURES tries in a
		 * row without an open stream we stop it. Polling takes over for
		 * this job; the next refresh opens a new stream unless this job's
		 * streams failed MAX_STREAM_FAILURES times. */
		const n = (streamFailures.get(id) || 0) + 1;
		streamFailures.set(id, n);
		if (es.readyState === EventSource.CLOSED || n >= MAX_STREAM_FAILURES) {
			closeStream(id);
			emit('job', id);
			schedulePoll(0);
		}
	});
}

/* ---- the job list ------------------------------------------------------------ */

/* Whether progress a is further on than b: a later epoch, then evaluating
 * after training, then more images of the phase. */
function progressAhead(a, b) {
	const rank = (p) => (p.phase === 'evaluating' ? 1 : 0);
	if (a.epoch !== b.epoch)
		return a.epoch > b.epoch;
	if (rank(a) !== rank(b))
		return rank(a) > rank(b);
	return a.images_done > b.images_done;
}

function mergeJob(job) {
	const old = jobs.get(job.id);
	if (old && old.progress && !job.progress && job.status === 'running')
		job.progress = old.progress;
	jobs.set(job.id, job);
	emit('job', job.id);
}

function forget(id) {
	closeStream(id);
	jobs.delete(id);
	metrics.delete(id);
	if (selected.has(id))
		select(id, false);
	emit('jobs');
}

export async function refresh() {
	try {
		const ans = await api.get('/jobs?limit=500');
		lastError = null;
		const seen = new Set();
		for (const job of ans.jobs) {
			seen.add(job.id);
			/* A stream's newer progress wins over the list's snapshot. */
			const old = jobs.get(job.id);
			if (old && old.status === 'running' && job.status === 'running' && old.progress && job.progress &&
			    progressAhead(old.progress, job.progress) && old.epoch >= job.epoch) {
				job.progress = old.progress;
				job.phase = old.progress.phase;
			}
			jobs.set(job.id, job);
		}
		for (const id of [...jobs.keys()])
			if (!seen.has(id))
				forget(id);
		for (const job of jobs.values()) {
			if (job.status === 'running')
				openStream(job.id);
			else if (isFinal(job))
				closeStream(job.id);
		}
		emit('jobs');
		/* Rows (for "best top-1" and the curves): the newest METRICS_JOBS
		 * jobs and the picked ones, newest first, a few at a time. */
		const newest = [...jobs.values()].sort((a, b) => b.id - a.id);
		const need = newest.filter((j, i) => (i < METRICS_JOBS || selected.has(j.id)) &&
			(!metrics.has(j.id) || j.epoch > lastEpoch(j.id)));
		for (let i = 0; i < need.length; i += 4)
			await Promise.all(need.slice(i, i + 4).map((j) => syncMetrics(j.id)));
	} catch (e) {
		lastError = e;
		emit('jobs');
	}
}

export async function loadDatasets() {
	try {
		const ans = await api.get('/datasets');
		datasets.splice(0, datasets.length, ...ans.datasets);
	} catch (e) {
		lastError = e;
	}
	emit('datasets');
}

function schedulePoll(ms) {
	clearTimeout(pollTimer);
	pollTimer = setTimeout(async () => {
		await refresh();
		schedulePoll(liveMode() === 'live' ? POLL_SSE_MS : POLL_FALLBACK_MS);
	}, ms);
}

export function start() {
	loadDatasets();
	schedulePoll(0);
}

/* ---- actions ------------------------------------------------------------------ */

export async function submit(spec) {
	const job = await api.post('/jobs', spec);
	mergeJob(job);
	metrics.set(job.id, []);
	emit('jobs');
	schedulePoll(300);
	return job;
}

export async function cancel(id) {
	const job = await api.post(`/jobs/${id}/cancel`);
	mergeJob(job);
	schedulePoll(300);
	return job;
}

export async function remove(id) {
	await api.del(`/jobs/${id}`);
	forget(id);
}
