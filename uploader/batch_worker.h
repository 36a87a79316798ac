/* batch_worker.h -- one thread that compresses for the event loop.
 *
 * The loop frames a batch's records into a staging buffer; a job hands the
 * staged bytes (and, at the end of the object, the end of the stream) to
 * the worker thread, which runs the codec on them into the object's
 * buffer. Meanwhile the loop goes on reading the ring into the slot's
 * other staging buffer and serves its transfers. While a job is queued or
 * running, its codec, its input and its output belong to the worker: the
 * loop touches none of them until batch_job_done() or batch_job_wait()
 * says the job is over (they give the happens-before).
 *
 *   struct batch_worker *w = batch_worker_new(wake, arg);
 *   job->codec = c; job->in = staged; job->n = n; job->end = false;
 *   job->out = &out;
 *   batch_worker_submit(w, job);
 *   ... later, in the loop, after wake(arg) was called:
 *   if (batch_job_done(job)) use job->rc and out;
 *   batch_worker_free(w);   (waits for the jobs queued)
 */
#ifndef S3RING_BATCH_WORKER_H
#define S3RING_BATCH_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch_codec.h"

struct batch_job {
	/* Set by the submitter. */
	struct batch_codec *codec;
	const uint8_t *in;
	size_t n;
	bool end;                /* batch_codec_end() after the bytes */
	struct batch_out *out;
	/* The result: 0, or what batch_codec_write()/_end() returned. */
	int rc;
	/* The worker's. */
	_Atomic bool busy;
	struct batch_job *next;
};

struct batch_worker;

/* Starts the thread. wake(arg) is called from it after each job (the
 * loop's eventfd). Returns NULL with errno set. */
struct batch_worker *batch_worker_new(void (*wake)(void *), void *arg);
/* Runs the jobs still queued, then stops and joins the thread. NULL is
 * ignored. */
void batch_worker_free(struct batch_worker *w);

/* Queues job (not busy: a job is submitted again only once done). */
void batch_worker_submit(struct batch_worker *w, struct batch_job *job);
/* True if job is not queued or running: its result and output are the
 * caller's. */
bool batch_job_done(struct batch_job *job);
/* Waits until batch_job_done(job). */
void batch_job_wait(struct batch_worker *w, struct batch_job *job);

#endif
