// hold-worker.js TYPE — a worker process for the tests: it prints "got
// ID" for each job and never answers, so that the test can kill it while
// it holds the job.
import { worker } from '../index.js';

for await (const j of worker(process.argv[2], { capacity: 2 }))
	process.stdout.write(`got ${j.id}\n`);
