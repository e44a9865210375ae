/*
 * web/js/app.js — the dashboard's entry point: wires the views to the
 * store, switches views on the URL's hash (#jobs, #curves, #groups, #neighbors),
 * shows whether updates arrive live (Server-Sent Events) or by polling, and
 * the API's last error in a banner for as long as the daemon does not answer.
 */
import * as api from './api.js';
import * as store from './store.js';
import * as jobs from './jobs.js';
import * as form from './form.js';
import * as curves from './curves.js';
import * as groups from './groups.js';
import * as neighbors from './neighbors.js';

const VIEWS = ['jobs', 'curves', 'groups', 'neighbors'];
let current = null;

function showView(name, moveFocus) {
	if (!VIEWS.includes(name) || name === current)
		return;
	current = name;
	for (const v of VIEWS)
		document.getElementById('view-' + v).hidden = v !== name;
	for (const a of document.querySelectorAll('nav a[data-view]')) {
		if (a.dataset.view === name)
			a.setAttribute('aria-current', 'page');
		else
			a.removeAttribute('aria-current');
	}
	curves.setVisible(name === 'curves');
	groups.setVisible(name === 'groups');
	/* Screen readers and keyboards land at the new view's heading. */
	if (moveFocus)
		document.querySelector(`#view-${name} h2`).focus();
}

function fromHash(moveFocus) {
	const name = location.hash.slice(1);
	if (VIEWS.includes(name))
		showView(name, moveFocus);
	else if (!current)
		showView('jobs', false);
}

/* A message in the banner: notes go after 5 s, errors after 15 s. */
function announce(text, isError) {
	const banner = document.getElementById('banner');
	banner.textContent = text;
	banner.hidden = !text;
	banner.classList.toggle('ok', !isError);
	delete banner.dataset.outage;
	clearTimeout(announce.timer);
	if (text)
		announce.timer = setTimeout(() => { banner.hidden = true; }, isError ? 15000 : 5000);
}

/* The daemon's answer to the last poll of the job list: while it fails the
 * banner says why and stays; the first answer after an outage takes it down
 * (a note or another error shown since is left alone). */
function showOutage(err) {
	const banner = document.getElementById('banner');
	if (err) {
		announce(`isifd: ${err.message}`, true);
		clearTimeout(announce.timer);
		banner.dataset.outage = 'true';
	} else if (banner.dataset.outage) {
		announce('');
	}
}

function showLive() {
	const live = document.getElementById('live');
	const err = store.error();
	let text, cls;
	if (err) {
		text = err.status === 401 ? 'token needed' : 'daemon unreachable';
		cls = 'bad';
	} else if (store.liveMode() === 'live') {
		text = 'live (SSE)';
		cls = 'ok';
	} else {
		text = 'polling';
		cls = 'warn';
	}
	if (live.textContent !== text)
		live.textContent = text;
	live.dataset.mode = cls;
}

function init() {
	jobs.init(announce);
	form.init();
	curves.init();
	groups.init(announce);
	neighbors.init();
	store.on((kind) => {
		if (kind === 'jobs' || kind === 'job')
			showLive();
		if (kind === 'jobs')
			showOutage(store.error());
	});
	document.getElementById('token-button').addEventListener('click', async () => {
		if (await api.askToken('Enter the token isifd was started with (--token-file).'))
			store.refresh();
	});
	window.addEventListener('hashchange', () => fromHash(true));
	fromHash(false);
	store.start();
}

init();
