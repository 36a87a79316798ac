/* retry.c -- what to do after one upload attempt: a pure decision. */
#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "health.h"
#include "s3err.h"

bool
retry_is_region_error(const struct s3_response *r)
{
	return r->bucket_region[0] != '\0' && (r->status == 301 ||
	    strcmp(r->error.code, "PermanentRedirect") == 0 ||
	    strcmp(r->error.code, "AuthorizationHeaderMalformed") == 0);
}

const char *
retry_describe(const struct s3_response *r, char *buf, size_t cap)
{
	if (retry_is_region_error(r))
		snprintf(buf, cap, "%s (HTTP %ld): the bucket is in region %s",
		    r->error.code[0] ? r->error.code : "PermanentRedirect",
		    r->status, r->bucket_region);
	else if (r->error.code[0] != '\0')
		snprintf(buf, cap, "%s (HTTP %ld)%s%s", r->error.code, r->status,
		    r->error.message[0] ? ": " : "", r->error.message);
	else if (r->curl_code != 0 || r->body_changed)
		snprintf(buf, cap, "%s%s%s", r->verdict.reason,
		    r->curl_error[0] ? ": " : "", r->curl_error);
	else
		snprintf(buf, cap, "HTTP %ld", r->status);
	return buf;
}

/* S3 refused the bytes as not what was signed or checksummed. */
static bool
digest_refused(const struct s3_response *r)
{
	return strcmp(r->error.code, "BadDigest") == 0 ||
	    strcmp(r->error.code, "XAmzContentSHA256Mismatch") == 0 ||
	    strcmp(r->error.code, "InvalidDigest") == 0;
}

static bool
slow_down(const struct s3_response *r)
{
	return r->status == 429 || strcmp(r->error.code, "SlowDown") == 0 ||
	    (r->status == 503 && r->error.code[0] == '\0');
}

/* Transient, and none of the exceptions retry_decide() makes first. */
static bool
plain_transient(const struct retry_facts *f)
{
	const struct s3_response *r = f->r;

	return f->rc == -EIO && !f->stopping && !r->body_changed &&
	    !digest_refused(r) && !f->region_followed &&
	    r->verdict.cls != S3ERR_CONFIG && r->verdict.cls != S3ERR_MESSAGE;
}

bool
retry_needs_probe(const struct retry_state *st, const struct retry_facts *f)
{
	uint64_t since = st->prev_fail_ns ? st->prev_fail_ns : f->now_ns;

	return plain_transient(f) && f->probe < 0 && !(f->last_success_ns > since);
}

void
retry_decide(const struct retry_policy *p, struct retry_state *st,
    const struct retry_facts *f, struct retry_decision *d)
{
	const struct s3_response *r = f->r;
	uint64_t since;
	bool counted;

	memset(d, 0, sizeof(*d));
	if (f->rc == 0) {
		d->action = RETRY_UPLOADED;
		return;
	}
	if (f->rc != -EIO) {
		snprintf(d->why, sizeof(d->why), "request not sent: %s", strerror(-f->rc));
		snprintf(d->reason, sizeof(d->reason), "%s", d->why);
		d->action = RETRY_DEAD_LETTER;
		return;
	}
	retry_describe(r, d->why, sizeof(d->why));
	if (f->stopping) {
		d->action = RETRY_HAND_BACK;
		return;
	}
	/* Changed bytes: the engine aborted the send (body_changed), or S3
	 * refused the digest. If the ring's bytes no longer match their CRC,
	 * a producer scribbled over a committed record: it is corrupt, and no
	 * retry will mend it. If they still match, the damage was in transit:
	 * send it again. */
	if (r->body_changed || digest_refused(r)) {
		if (!f->ring_bytes_intact) {
			d->action = RETRY_CORRUPT;
			return;
		}
		d->action = RETRY_AGAIN;
		d->retried = true;
		st->tries++;
		d->delay_ms = s3err_backoff_ms(st->tries - 1, S3ERR_BACKOFF_BASE_MS,
		    S3ERR_BACKOFF_MAX_MS, 0, f->rnd);
		return;
	}
	if (f->region_followed) {
		d->action = RETRY_NOW;
		return;
	}
	switch (r->verdict.cls) {
	case S3ERR_CONFIG:
		d->action = RETRY_PAUSE;
		d->delay_ms = p->recheck_ms;
		return;
	case S3ERR_MESSAGE:
		snprintf(d->reason, sizeof(d->reason), "%s", d->why);
		st->attempts++;
		d->action = RETRY_DEAD_LETTER;
		return;
	case S3ERR_TRANSIENT:
	default:
		break;
	}
	/* Only a failure while the service works counts toward max-attempts
	 * and max-age: one that hits every request (the endpoint down, an
	 * outage) is waited out, and the message stays in the ring. The proof
	 * is a success of another upload since this message's previous
	 * failure (a success from before the outage began proves nothing),
	 * or a HEAD of the bucket answered within the last second. */
	st->tries++;
	d->retried = true;
	d->slow_down = slow_down(r);
	since = st->prev_fail_ns ? st->prev_fail_ns : f->now_ns;
	counted = f->last_success_ns > since || f->probe == 1;
	d->want_probe = !counted && f->probe < 0;
	if (counted)
		st->attempts++;
	st->prev_fail_ns = f->now_ns;
	if (health_give_up(st->attempts, p->max_attempts, counted,
	    f->now_ns > f->put_ns ? f->now_ns - f->put_ns : 0, p->max_age_ns)) {
		snprintf(d->reason, sizeof(d->reason), "gave up after %u attempts: %s",
		    st->tries, d->why);
		d->action = RETRY_DEAD_LETTER;
		return;
	}
	d->action = RETRY_AGAIN;
	d->delay_ms = s3err_backoff_ms(st->tries - 1, S3ERR_BACKOFF_BASE_MS, S3ERR_BACKOFF_MAX_MS,
	    r->has_retry_after ? r->retry_after_ms : 0, f->rnd);
}
