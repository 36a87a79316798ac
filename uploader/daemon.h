/* daemon.h -- the uploader's internals, shared by its parts:
 *
 *   uploader.c  start-up and shutdown: signals, ring, journal, clients
 *   engine.c    the event loop: read the ring, start uploads, release
 *   upload.c    one upload's state machine, from the record to DONE
 *   retry.c     what to do after an attempt (a pure decision)
 *   status.c    alarms, the outage log, the heartbeat, STATUS, SIGHUP
 *   batch.c     batch mode: many small messages into one object
 *   replay.c    --replay of the dead-letter spool
 *
 * Everything runs on one thread, the loop's, except the ring watcher
 * (engine.c), which only sleeps on the ring's futex and wakes the loop,
 * the hasher (upload.c), which computes the SHA-256 of large bodies
 * signed over http, and the credentials refresher (creds.c).
 */
#ifndef S3RING_DAEMON_H
#define S3RING_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "creds.h"
#include "health.h"
#include "journal.h"
#include "objopts.h"
#include "retry.h"
#include "ring.h"
#include "s3.h"

#define MS (1000ull * 1000)
#define SEC (1000ull * MS)
#define KEY_BUF (2 * S3_KEY_MAX + 2)

enum upload_state {
	UP_FREE,     /* on the free list */
	UP_RUNNING,  /* a request is in flight */
	UP_WAITING,  /* backing off, paused by an alarm, or the spool is down */
	UP_MULTI,    /* a multipart upload (multipart.c counts its requests) */
	UP_HASHING,  /* its large body's SHA-256 is being computed (hasher) */
};

/* What a transfer's user pointer points to: each starts with the kind. */
enum xfer_kind { XFER_UPLOAD = 1, XFER_PART = 2, XFER_BATCH = 3 };

struct mpart;
struct mp_req;
struct batch_engine;
struct batch_flush;

/* One record on its way to S3. The body is read from the ring in place
 * (m.body points into it): the record stays reserved until it is DONE. */
struct upload {
	enum xfer_kind kind;         /* XFER_UPLOAD */
	struct upload *next;         /* free list */
	struct mpart *mp;            /* UP_MULTI */
	struct s3_client *s3;        /* created on first use */
	struct ring_msg m;
	char key[RING_MAX_KEY + 1];  /* as the producer put it */
	int slot;                    /* in the journal's in-flight table */
	enum upload_state state;
	bool spooling;               /* waiting to be written to the spool */
	bool awaiting_probe;         /* its failure is decided when the probe answers */
	struct retry_state rs;
	uint64_t due_ns;             /* UP_WAITING: when to try again */
	uint64_t t0;                 /* the attempt's start */
	unsigned region_gen;
	char *reason;                /* spooling: why (malloc'd) */
	/* The body's SHA-256 for signing over http, computed once by the
	 * hasher thread for large bodies (the loop's thread would stall on
	 * it); the bytes sent are checked against the CRC anyway. */
	bool hashed;
	char sha256[SIGV4_SHA256_HEX_LEN + 1];
	struct upload *hnext;        /* the hasher's queues */
};

struct uploader {
	const struct config *cfg;    /* = live */
	struct config *live;         /* our copy; SIGHUP updates it */
	struct ring ring;
	struct ring_consumer cons;
	struct journal journal;
	struct creds *creds;
	bool creds_alarm;            /* the alarm is raised for expired keys */
	struct s3_config s3cfg;
	char region[64];
	char endpoint[CONFIG_STR_MAX];
	char spool[CONFIG_STR_MAX];
	uint64_t epoch;

	/* The engine. */
	struct s3_multi *multi;
	struct sigv4_signer *signer; /* shared by every client: one thread */
	struct upload *up;           /* cfg->workers of them */
	unsigned nup;
	struct upload *free_list;
	unsigned running;            /* UP_RUNNING */
	unsigned busy;               /* not UP_FREE */
	unsigned waiting;            /* UP_WAITING */
	unsigned nmulti;             /* UP_MULTI */
	unsigned hashing;            /* UP_HASHING */
	uint64_t next_due_ns;        /* the earliest due_ns, 0: none */
	double limit;                /* adaptive: uploads allowed in flight */
	uint64_t last_slowdown_ns;
	struct objopts_headers *hdrs; /* scratch for one prepare */
	char keybuf[KEY_BUF];        /* scratch: prefix + key */
	struct s3_client *probe;     /* HEAD bucket, one a second at most */
	/* For the blocking requests of start-up (the bucket check, the
	 * leftover multipart uploads), never handed to the multi: libcurl
	 * 7.88 leaks a connection of a handle that did curl_easy_perform()
	 * and then joined a multi handle. */
	struct s3_client *sync_s3;
	bool probe_running;
	uint64_t last_probe_ns;      /* when the last probe was started */
	uint64_t probe_answered_ns;  /* when it answered */
	bool last_probe_ok;
	uint64_t last_success_ns;
	unsigned handed_back;

	struct batch_engine *batch;  /* batch.c; NULL without batch rules */

	/* The hasher (upload.c): uploads in, hashed uploads out, under hmu. */
	pthread_t hasher;
	bool hasher_started;
	pthread_mutex_t hmu;
	pthread_cond_t hcv;
	struct upload *hq, **hq_tail;  /* to hash, in order */
	struct upload *hdone;          /* hashed, for the loop */
	bool hquit;

	/* The ring watcher (engine.c). */
	pthread_t watcher;
	bool watcher_started;
	_Atomic uint32_t watch_armed;
	_Atomic bool watch_quit;
	struct ring_consumer watch_cons; /* the loop's copy, when armed */

	/* The region the clients sign for. When none was set explicitly it
	 * follows the bucket's (a 301 or x-amz-bucket-region names it):
	 * region_gen grows on each switch, and each client adopts u->region
	 * before its next request. */
	unsigned region_gen;
	bool region_explicit;

	struct health health;        /* the outage log */
	uint64_t wd_us;              /* systemd watchdog interval, 0: none */
	uint64_t start_time;         /* ours, from /proc, for the ring header */
	uint32_t pid;                /* ours (getpid() is a system call) */
	bool lost;                   /* the ring was truncated under us */
	bool retiring;               /* removed or replaced: finish, then re-attach */
	bool reattach;               /* retired and finished: start again */
	bool stopping;               /* SIGTERM: no new attempts */
	bool corrupt_logged;
	uint64_t retire_deadline;
	uint64_t next_give_up;       /* past the deadline: when to give up writers again */
	uint64_t next_identity;      /* when to look at the ring's name again */
	uint64_t dropped_upto;       /* ring pages below this are unmapped */
	uint64_t drop_step;
	uint64_t next_wd, next_status, next_creds, next_expiry;
	uint64_t reload_again_ns;    /* a reload put off until batches close */
};

extern volatile sig_atomic_t uploader_got_stop, uploader_got_reload;

/* uploader.c */
int uploader_init(struct uploader *u, const struct config *cfg);
/* The credentials, the region and the S3 settings (u->s3cfg). Logs why on
 * failure. */
int uploader_make_clients(struct uploader *u);

/* status.c */
void status_note_failure(struct uploader *u, const char *why);
void status_note_success(struct uploader *u);
void status_note_attempt(struct uploader *u, uint64_t t0, const struct s3_response *r,
    bool ok);
void status_raise(struct uploader *u, unsigned flag, const char *what, const char *detail);
void status_clear(struct uploader *u, unsigned flag, const char *what);
bool status_alarmed(const struct uploader *u, unsigned flag);
void status_tick(struct uploader *u, const char *state);
void status_notify(struct uploader *u, const char *state);
void status_publish_limit(struct uploader *u);

/* upload.c */
int upload_engine_init(struct uploader *u);
void upload_engine_free(struct uploader *u);
/* A record just read: uploads it (or skips it, or spools it). */
void upload_begin(struct uploader *u, struct upload *up);
/* Its transfer ended with rc (as s3_perform() returns). */
void upload_finished(struct uploader *u, struct upload *up, int rc);
/* UP_WAITING and due: the next attempt (or spool write). */
void upload_resume(struct uploader *u, struct upload *up);
/* Stopping: leave it in the ring for the next start. */
void upload_hand_back(struct uploader *u, struct upload *up);
/* The hasher thread: start, stop (joins it), and the loop's collection of
 * what it hashed (each then goes on to its request). */
int upload_start_hasher(struct uploader *u);
void upload_stop_hasher(struct uploader *u);
void upload_hashed(struct uploader *u);
void upload_probe_finished(struct uploader *u, int rc);
bool upload_follow_region(struct uploader *u, const struct s3_response *r,
    const char *signed_for);
void upload_adopt_region(struct uploader *u, struct s3_client *s3, unsigned *gen);

/* For batch.c: the decision after a failed attempt at an object that is
 * not one record (put_ns: its oldest message's), accounted for as any
 * upload's; and the counters and state of a confirmed upload. */
void upload_decide_object(struct uploader *u, struct retry_state *rs, uint64_t put_ns,
    struct s3_client *s3, int rc, const struct s3_response *r,
    struct retry_decision *d);
void upload_note_uploaded(struct uploader *u, uint64_t messages, uint64_t bytes);

/* batch.c. batch_init() checks the rules against the ring (a rule's
 * largest batch must fit a quarter of it) and logs why not: -EINVAL.
 * batch_take() is called for each record read: true if batch mode took it
 * (the upload stays free), false if it is uploaded alone. batch_room():
 * whether batch mode can take another record (otherwise the loop stops
 * reading). batch_pump() closes what is due, compresses, sends; it
 * returns true while it has more to do at once. */
int batch_init(struct uploader *u);
/* The consumer's leave_body (ring.h) for u: a record of a batch rule's
 * prefix is checked when its batch is read from the ring, on the copy
 * that is compressed; once at the cursor too would be a second pass. A
 * record that goes alone after all is checked by upload_begin(). */
bool batch_leaves_body(void *u, const char *key, size_t key_len);
void batch_free(struct uploader *u);
bool batch_take(struct uploader *u, struct upload *up);
bool batch_room(const struct uploader *u);
bool batch_pump(struct uploader *u, uint64_t now);
/* Whether the last read found the ring empty (then an old batch is due). */
void batch_caught_up(struct uploader *u, bool empty);
/* The ms until the next batch is due by age, at most cap. */
int batch_sleep_ms(const struct uploader *u, uint64_t now, int cap);
void batch_finished(struct uploader *u, struct batch_flush *f, int rc);
/* SIGTERM: close every open batch (false if some cannot be now: every
 * flush is in use); batch_busy() while some are not sent;
 * batch_stop() leaves the rest to the next start (their journal entries). */
bool batch_close_all(struct uploader *u);
bool batch_busy(const struct uploader *u);
/* Batch objects under way (being built, sent, or backing off): each counts
 * as one in shmstat's in_flight, as a single message's upload does. */
unsigned batch_in_flight(const struct uploader *u);
void batch_stop(struct uploader *u);
/* SIGHUP with other rules: batch_rules_fit() on the new ones (logs why
 * not), batch_close_all() under the old ones, then, once they are live,
 * batch_reload(). */
bool batch_rules_fit(const struct uploader *u, const struct config *cfg);
void batch_reload(struct uploader *u);
void batch_publish(struct uploader *u);

/* The multipart side of upload.c, for multipart.c. */
void upload_set_multi(struct uploader *u, struct upload *up);
void upload_decide_multipart(struct uploader *u, struct upload *up, int rc,
    const struct s3_response *r, struct retry_decision *d);
void upload_after_multipart(struct uploader *u, struct upload *up,
    enum retry_action done, const char *reason);

/* multipart.c */
bool multipart_wanted(const struct uploader *u, const struct upload *up);
bool multipart_begin(struct uploader *u, struct upload *up, const char *key);
void multipart_pump(struct uploader *u, struct upload *up, uint64_t now);
void multipart_finished(struct uploader *u, struct upload *up,
    const struct s3_response *r, int rc);
void multipart_part_finished(struct uploader *u, struct mp_req *q, int rc);
void multipart_aborted_then(struct uploader *u, struct upload *up);
void multipart_stop(struct uploader *u, struct upload *up);
void multipart_drop(struct uploader *u, struct upload *up);
void multipart_abort_leftovers(struct uploader *u);

/* engine.c */
void engine_run(struct uploader *u);
void engine_drain(struct uploader *u);
int engine_start_watcher(struct uploader *u);
/* pthread_create() with the asynchronous signals blocked in the new thread
 * (ring_guard_spawn()). 0 or -errno. */
int engine_spawn(pthread_t *t, void *(*fn)(void *), void *arg);
void engine_stop_watcher(struct uploader *u);

#endif
