// Types of the jobfs Node client (see README.md).
import { EventEmitter } from 'node:events';

/** Any JSON value: job bodies and results. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JobId = string | number;

export interface ConnectOptions {
	/** JOBFS_HOST, default 127.0.0.1 */
	host?: string;
	/** JOBFS_MASTER_PORT, default 9998 */
	masterPort?: number;
	/** JOBFS_WORKER_PORT, default 9999 */
	workerPort?: number;
	/** JOBFS_TOKEN, or the first line of JOBFS_TOKEN_FILE */
	token?: string;
	/** JOBFS_TLS=1; also on when ca, cert or key is given */
	tls?: boolean;
	/** CA to verify the daemon: a file name or PEM text (JOBFS_CA) */
	ca?: string | Buffer;
	/** client certificate and its key (JOBFS_CERT, JOBFS_KEY) */
	cert?: string | Buffer;
	key?: string | Buffer;
	/** ms to connect, default 10000 */
	connectTimeout?: number;
	/** "action" (the later Gloom dialect) or "seed" (Gloom's first) */
	dialect?: 'action' | 'seed';
}

export interface ClientOptions extends ConnectOptions {
	/** prefix of the ids the client makes (default: random) */
	idPrefix?: string;
}

export interface SubmitOptions {
	/** default: a unique string */
	id?: JobId;
	priority?: number;
	/** ms from submission */
	timeout?: number;
	detach?: boolean;
	notify?: boolean;
	stream?: boolean;
	/** only the worker of that name takes it */
	worker?: string;
	retries?: number;
	/** ms */
	backoff?: number;
	/** ms */
	delay?: number;
	/** ms since the epoch, or a Date */
	at?: number | Date;
	after?: Array<JobId | Job>;
}

export interface JobStatus {
	id: JobId;
	type: string;
	status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'timeout' | 'delayed' | 'waiting';
	[key: string]: unknown;
}

export class Job<R = Json> extends EventEmitter {
	readonly id: JobId;
	readonly type: string | undefined;
	readonly done: boolean;
	/** rejects with JobFailedError, JobTimeoutError, JobCancelledError,
	 * ResultDroppedError, ConnectionError, or WaitTimeoutError */
	result(options?: { timeout?: number }): Promise<R>;
	status(): Promise<JobStatus>;
	/** true if it cancelled the job, false if it had ended */
	cancel(): Promise<boolean>;
	on(event: 'partial', listener: (body: Json) => void): this;
	on(event: 'running', listener: (info: { worker: string }) => void): this;
	on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class Client extends EventEmitter {
	constructor(options?: ClientOptions);
	connect(): Promise<unknown>;
	submit<R = Json>(type: string, body?: Json, options?: SubmitOptions): Promise<Job<R>>;
	job<R = Json>(id: JobId): Job<R>;
	wait<R = Json>(id: JobId): Promise<R>;
	status(id: JobId): Promise<JobStatus>;
	cancel(id: JobId): Promise<boolean>;
	stats(type?: string): Promise<Record<string, any>>;
	ping(): Promise<void>;
	publish(channel: string, body?: Json): Promise<void>;
	subscribe(channel: string, fn: (body: Json, message: Record<string, Json>) => void): Promise<() => void>;
	close(): void;
}

export interface WorkerOptions extends ConnectOptions {
	/** jobs at once, default 1 */
	capacity?: number;
	/** ms of silence after which the daemon pings */
	heartbeat?: number;
	/** the worker's name (default: the daemon's choice) */
	name?: string;
	/** take cancels (default true) */
	cancel?: boolean;
	/** reconnect after a loss (default true) */
	reconnect?: boolean;
}

export class WorkerJob<B = Json> extends EventEmitter {
	readonly id: JobId;
	readonly body: B;
	readonly type: string;
	readonly ended: boolean;
	readonly cancelled: boolean;
	/** aborts when the job is cancelled */
	readonly signal: AbortSignal;
	progress(body: Json): void;
	/** false if the job had already ended */
	respond(body?: Json, options?: { log?: string }): boolean;
	fail(error: Error | Json, options?: { log?: string }): boolean;
	on(event: 'cancelled', listener: () => void): this;
	on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class Worker<B = Json> extends EventEmitter implements AsyncIterable<WorkerJob<B>> {
	constructor(type: string, options?: WorkerOptions);
	readonly type: string;
	[Symbol.asyncIterator](): AsyncIterator<WorkerJob<B>>;
	start(): void;
	close(): void;
	on(event: 'disconnect', listener: (err: Error) => void): this;
	on(event: 'reconnect', listener: (info: { tries: number; ms: number }) => void): this;
	on(event: 'ping', listener: () => void): this;
	on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export function worker<B = Json>(type: string, options?: WorkerOptions): Worker<B>;

export class JobfsError extends Error {
	code?: string;
	id?: JobId;
	reason?: unknown;
}
export class RequestError extends JobfsError {}
export class JobFailedError extends JobfsError {
	lastError?: Json;
}
export class JobTimeoutError extends JobfsError {}
export class JobCancelledError extends JobfsError {}
export class ResultDroppedError extends JobfsError {}
export class WaitTimeoutError extends JobfsError {}
export class ConnectionError extends JobfsError {}
export class AuthError extends JobfsError {}
