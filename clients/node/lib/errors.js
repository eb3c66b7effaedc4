// errors.js — what a job's result, or a request, rejects with.

/** Base of every error this library raises about a job or a request. */
export class JobfsError extends Error {
	constructor(message, props = {}) {
		super(message);
		this.name = new.target.name;
		Object.assign(this, props);
	}
}

/** The daemon refused a request: the frame's "error" is in .code. */
export class RequestError extends JobfsError {}

/** A job ended without a result ("job_failed"); .lastError holds the
 * worker's fail body when the daemon sent one. */
export class JobFailedError extends JobfsError {}

/** A job's own "timeout" passed. */
export class JobTimeoutError extends JobfsError {}

/** A job was cancelled (by a cancel, its master's disconnect, the tree). */
export class JobCancelledError extends JobfsError {}

/** The job is done but the daemon no longer keeps its result. */
export class ResultDroppedError extends JobfsError {}

/** result({timeout}) waited that long: the job itself goes on. */
export class WaitTimeoutError extends JobfsError {}

/** The connection to the daemon was lost (or could not be made). */
export class ConnectionError extends JobfsError {}

/** auth_failed, auth_required or forbidden: the token is wrong or lacks
 * the role. */
export class AuthError extends JobfsError {}

const ENDINGS = {
	job_failed: JobFailedError,
	timeout: JobTimeoutError,
	cancelled: JobCancelledError,
	result_dropped: ResultDroppedError,
};

/** isEnding(code): the error code ends a job (rather than refusing a
 * request). */
export function isEnding(code) {
	return Object.hasOwn(ENDINGS, code);
}

/** fromFrame(m): the error for the error frame m. */
export function fromFrame(m) {
	const code = m.error;
	const Cls = ENDINGS[code] ??
	    (code === 'auth_failed' || code === 'auth_required' || code === 'forbidden' ?
	    AuthError : RequestError);
	let text = String(code);
	if (m.reason !== undefined && !isEnding(code))
		text += `: ${m.reason}`;
	else if (isEnding(code) && m.id !== undefined)
		text = `job ${m.id}: ${code}` + (typeof m.reason === 'string' &&
		    m.reason !== String(m.id) ? ` (${m.reason})` : '');
	if (m.name !== undefined)
		text += ` (field ${m.name})`;
	const props = { code, id: m.id, reason: m.reason };
	if (m.last_error !== undefined)
		props.lastError = m.last_error;
	return new Cls(text, props);
}
