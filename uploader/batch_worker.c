/* batch_worker.c -- the compressing thread of batch mode.
 *
 * A queue of jobs under one mutex; the thread sleeps on a condition
 * variable when it is empty. A job's busy flag is set by submit and
 * cleared by the thread with release once the codec has returned, so the
 * loop polls it without the lock (acquire); a waiter sleeps on a second
 * condition variable. One thread: zstd -3 keeps one core busy at about
 * 150-180 MB/s, and the loop, the producers and TLS need the rest.
 */
#include "batch_worker.h"
#include "sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct batch_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work;         /* a job was queued, or stop */
	pthread_cond_t over;         /* a job ended */
	struct batch_job *head, *tail;
	bool stop;
	void (*wake)(void *);
	void *arg;
};

static void
run(struct batch_job *j)
{
	int rc = batch_codec_write(j->codec, j->in, j->n, j->out);

	if (rc == 0 && j->end)
		rc = batch_codec_end(j->codec, j->out);
	j->rc = rc;
}

static void *
main_loop(void *arg)
{
	struct batch_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct batch_job *j;

		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		if ((j = w->head) == NULL)
			break; /* stop, and nothing left */
		w->head = j->next;
		if (w->head == NULL)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mu);
		run(j);
		pthread_mutex_lock(&w->mu);
		atomic_store_explicit(&j->busy, false, memory_order_release);
		pthread_cond_broadcast(&w->over);
		if (w->wake != NULL)
			w->wake(w->arg);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct batch_worker *
batch_worker_new(void (*wake)(void *), void *arg)
{
	struct batch_worker *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL)
		return NULL;
	w->wake = wake;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->over, NULL);
	/* Signals are the loop's (SIGTERM, SIGHUP): the thread blocks them,
	 * but not SIGBUS, as it reads records from the ring. */
	rc = -ring_guard_spawn(&w->thread, main_loop, w);
	if (rc != 0) {
		pthread_cond_destroy(&w->over);
		pthread_cond_destroy(&w->work);
		pthread_mutex_destroy(&w->mu);
		free(w);
		errno = rc;
		return NULL;
	}
	return w;
}

void
batch_worker_free(struct batch_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->over);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
batch_worker_submit(struct batch_worker *w, struct batch_job *job)
{
	atomic_store_explicit(&job->busy, true, memory_order_relaxed);
	job->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->tail != NULL)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
}

bool
batch_job_done(struct batch_job *job)
{
	return !atomic_load_explicit(&job->busy, memory_order_acquire);
}

void
batch_job_wait(struct batch_worker *w, struct batch_job *job)
{
	if (batch_job_done(job))
		return;
	pthread_mutex_lock(&w->mu);
	while (atomic_load_explicit(&job->busy, memory_order_acquire))
		pthread_cond_wait(&w->over, &w->mu);
	pthread_mutex_unlock(&w->mu);
}
