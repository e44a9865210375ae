/*
 * web/js/api.js — every request the dashboard makes to isifd goes through
 * here: JSON fetches with the bearer token, URLs for <img> and EventSource
 * (which cannot send headers, so they carry ?access_token=), the token
 * prompt on 401, and the API's error objects turned into exceptions.
 *
 * Not here: what the answers mean (store.js) or how they are shown.
 */

const TOKEN_KEY = 'isifd.token';

/* An API error: status, code ("invalid_spec", ...) and message. */
export class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

export function token() {
	try {
		return sessionStorage.getItem(TOKEN_KEY) || '';
	} catch {
		return '';
	}
}

export function setToken(t) {
	try {
		if (t)
			sessionStorage.setItem(TOKEN_KEY, t);
		else
			sessionStorage.removeItem(TOKEN_KEY);
	} catch {
		/* storage disabled: the token lives as long as the request */
	}
}

/* A URL for a resource the browser loads by itself (<img>, EventSource,
 * download links): RFC 6750 §2.3 query parameter when a token is set. */
export function url(path) {
	const t = token();
	if (!t)
		return path;
	return path + (path.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(t);
}

/* The token prompt is a <dialog> in index.html; one prompt at a time, and
 * every request that met a 401 meanwhile waits on it. */
let pending = null;
/* Set when the user dismissed the prompt: requests then fail with 401
 * instead of asking again on every poll, until a token is entered through
 * the header's Token button. */
let declined = false;

export function askToken(reason) {
	if (pending)
		return pending;
	const dlg = document.getElementById('token-dialog');
	const input = document.getElementById('token-input');
	const msg = document.getElementById('token-reason');
	msg.textContent = reason || 'The daemon needs a bearer token.';
	input.value = '';
	pending = new Promise((resolve) => {
		const done = () => {
			dlg.removeEventListener('close', done);
			pending = null;
			const ok = dlg.returnValue === 'ok' && input.value.trim() !== '';
			if (ok)
				setToken(input.value.trim());
			declined = !ok;
			resolve(ok);
		};
		dlg.addEventListener('close', done);
		dlg.showModal();
		input.focus();
	});
	return pending;
}

async function errorOf(res) {
	let code = 'http_' + res.status, message = res.statusText || 'request failed';
	try {
		const body = await res.json();
		if (body && body.error) {
			code = body.error.code || code;
			message = body.error.message || message;
		}
	} catch {
		/* not JSON: keep the status line */
	}
	return new ApiError(res.status, code, message);
}

/* fetch() with the token; on 401 asks for a token and tries again (until the
 * user gives up). Returns the parsed JSON, null for 204, or throws ApiError. */
export async function request(method, path, { json, body, type } = {}) {
	for (;;) {
		const headers = {};
		const t = token();
		if (t)
			headers.Authorization = 'Bearer ' + t;
		let payload = body;
		if (json !== undefined) {
			headers['Content-Type'] = 'application/json';
			payload = JSON.stringify(json);
		} else if (type) {
			headers['Content-Type'] = type;
		}
		let res;
		try {
			res = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
		} catch (e) {
			throw new ApiError(0, 'network', 'isifd unreachable: ' + e.message);
		}
		if (res.status === 401) {
			const why = t ? 'The token was refused; enter it again.' : 'The daemon needs a bearer token.';
			if (!declined && await askToken(why))
				continue;
			throw await errorOf(res);
		}
		if (!res.ok)
			throw await errorOf(res);
		if (res.status === 204)
			return null;
		return res.json();
	}
}

export const get = (path) => request('GET', path);
export const post = (path, json) => request('POST', path, { json });
export const del = (path) => request('DELETE', path);
