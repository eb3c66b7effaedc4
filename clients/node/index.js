// jobfs — client and worker library for the jobfs job daemon.
export { Client, Job } from './lib/client.js';
export { Worker, WorkerJob, worker } from './lib/worker.js';
export {
	JobfsError, RequestError, JobFailedError, JobTimeoutError,
	JobCancelledError, ResultDroppedError, WaitTimeoutError,
	ConnectionError, AuthError,
} from './lib/errors.js';
