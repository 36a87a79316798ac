/* config.c -- s3ring-uploader's settings from flags, environment and file.
 *
 * One table names every setting, so the command line, the config file and
 * the documentation cannot drift apart. Precedence, lowest first: defaults,
 * the --config file, the environment (the AWS conventions), the command
 * line. Every bad value is refused with one line that names the setting and
 * where it came from; nothing is silently clamped.
 *
 * Batch rules are the one setting that is a set: [batch "P"] sections of
 * the file, then --batch flags, each replacing a rule of its prefix. Each
 * rule is checked when it is complete, and the set once everything is
 * merged (config_check_batch()): no prefix may start another.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch_key.h"
#include "log.h"
#include "ring.h"
#include "ring_layout.h"

#define CONFIG_FILE_MAX (64 * 1024)

enum opt_type { T_STR, T_BOOL, T_UINT, T_SIZE, T_SECS, T_MODE, T_GROUP, T_LEVEL, T_OBJ, T_BATCH };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	size_t size;            /* T_STR: buffer size */
	unsigned long min, max; /* T_UINT, T_SECS */
	const char *help;
};

static const struct opt opts[] = {
	{ "ring", T_STR, offsetof(struct config, ring), sizeof(((struct config *)0)->ring), 0, 0, "ring NAME (/dev/shm/s3ring.NAME)" },
	{ "bucket", T_STR, offsetof(struct config, bucket), sizeof(((struct config *)0)->bucket), 0, 0, "destination bucket" },
	{ "endpoint", T_STR, offsetof(struct config, endpoint), sizeof(((struct config *)0)->endpoint), 0, 0, "S3 endpoint URL" },
	{ "region", T_STR, offsetof(struct config, region), sizeof(((struct config *)0)->region), 0, 0, "signing region" },
	{ "key-prefix", T_STR, offsetof(struct config, key_prefix), sizeof(((struct config *)0)->key_prefix), 0, 0, "prefix for every object key" },
	{ "spool", T_STR, offsetof(struct config, spool), sizeof(((struct config *)0)->spool), 0, 0, "dead-letter spool directory" },
	{ "ca-file", T_STR, offsetof(struct config, ca_file), sizeof(((struct config *)0)->ca_file), 0, 0, "CA bundle for TLS" },
	{ "replay", T_STR, offsetof(struct config, replay), sizeof(((struct config *)0)->replay), 0, 0, "upload a spool directory, then exit" },
	{ "config", T_STR, offsetof(struct config, config_file), sizeof(((struct config *)0)->config_file), 0, 0, "key = value settings file" },
	{ "log-file", T_STR, offsetof(struct config, log_file), sizeof(((struct config *)0)->log_file), 0, 0, "append logs here instead of stderr (reopened on SIGHUP)" },
	{ "log-level", T_LEVEL, offsetof(struct config, log_level), sizeof(((struct config *)0)->log_level), 0, 0, "debug, info, warn or error" },
	{ "path-style", T_BOOL, offsetof(struct config, path_style), 0, 0, 0, "path-style addressing" },
	{ "insecure", T_BOOL, offsetof(struct config, insecure), 0, 0, 0, "do not verify TLS certificates" },
	{ "allow-foreign-ring", T_BOOL, offsetof(struct config, allow_foreign_ring), 0, 0, 0, "attach to a ring owned by another user" },
	{ "workers", T_UINT, offsetof(struct config, workers), 0, 1, 4096, "uploads in flight at most" },
	{ "ring-size", T_SIZE, offsetof(struct config, ring_size), 0, 0, 0, "ring capacity when creating it" },
	{ "max-message", T_SIZE, offsetof(struct config, max_message), 0, 0, 0, "largest key + body when creating the ring" },
	{ "multipart-threshold", T_SIZE, offsetof(struct config, multipart_threshold), 0, 0, 0, "bodies this large go as multipart uploads (0: never)" },
	{ "part-size", T_SIZE, offsetof(struct config, part_size), 0, 0, 0, "multipart part size (5M to 5G)" },
	{ "multipart-parallel", T_UINT, offsetof(struct config, multipart_parallel), 0, 1, 64, "parts in flight per multipart upload" },
	{ "part-checksums", T_BOOL, offsetof(struct config, part_checksums), 0, 0, 0, "send each part's CRC-32C (off for servers without them)" },
	{ "max-attempts", T_UINT, offsetof(struct config, max_attempts), 0, 1, 1000000, "attempts before dead-lettering" },
	{ "max-age", T_SECS, offsetof(struct config, max_age_s), 0, 0, 30 * 86400, "dead-letter a failing message this old (0: never)" },
	{ "recheck-interval", T_SECS, offsetof(struct config, recheck_s), 0, 1, 86400, "re-check a configuration error every" },
	{ "connect-timeout", T_SECS, offsetof(struct config, connect_timeout_s), 0, 1, 3600, "TCP and TLS connect timeout" },
	{ "request-timeout", T_SECS, offsetof(struct config, request_timeout_s), 0, 1, 3600, "whole request timeout" },
	{ "stop-timeout", T_SECS, offsetof(struct config, stop_timeout_s), 0, 1, 3600, "SIGTERM: drain this long at most" },
	{ "ring-mode", T_MODE, offsetof(struct config, ring_mode), 0, 0, 0, "ring permissions when creating it (octal)" },
	{ "ring-group", T_GROUP, offsetof(struct config, ring_gid), 0, 0, 0, "ring group when creating it" },
	/* Batch rules: [batch "P"] sections of the config file, or this
	 * flag (repeatable), PREFIX:key=value,... with the section's keys. */
	{ "batch", T_BATCH, 0, 0, 0, 0, "batch rule PREFIX:key=value,... (repeatable; see the man page)" },
	{ "batch-flushes", T_UINT, offsetof(struct config, batch_flushes), 0, 1, 16, "batch objects being sent at once" },
	/* Object options (objopts.c parses them), global here, per key
	 * prefix in [prefix "P"] sections of the config file. */
	{ "content-type", T_OBJ, 0, 0, 0, 0, "Content-Type (default: from the key's extension)" },
	{ "cache-control", T_OBJ, 0, 0, 0, 0, "Cache-Control of the objects" },
	{ "content-encoding", T_OBJ, 0, 0, 0, 0, "Content-Encoding of the objects (e.g. gzip)" },
	{ "storage-class", T_OBJ, 0, 0, 0, 0, "S3 storage class (STANDARD_IA, INTELLIGENT_TIERING, ...)" },
	{ "sse", T_OBJ, 0, 0, 0, 0, "server-side encryption: AES256 or aws:kms" },
	{ "sse-kms-key-id", T_OBJ, 0, 0, 0, 0, "KMS key id, ARN or alias (sse = aws:kms)" },
	{ "sse-bucket-key", T_OBJ, 0, 0, 0, 0, "use an S3 bucket key for SSE-KMS (true/false)" },
	{ "acl", T_OBJ, 0, 0, 0, 0, "canned ACL, e.g. bucket-owner-full-control" },
	{ "tag", T_OBJ, 0, 0, 0, 0, "object tag NAME=VALUE (repeatable, up to 10)" },
	{ "meta", T_OBJ, 0, 0, 0, 0, "user metadata NAME=VALUE, sent as x-amz-meta-NAME (repeatable)" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->ring, sizeof(c->ring), "default");
	snprintf(c->log_level, sizeof(c->log_level), "info");
	c->workers = 64;
	c->ring_size = RING_DEFAULT_CAPACITY;
	c->max_message = 0; /* min(1 MiB, ring-size / 8) unless set */
	c->max_attempts = 10;
	c->multipart_threshold = 16u << 20;
	c->part_size = 8u << 20;
	c->multipart_parallel = 4;
	c->part_checksums = true;
	c->recheck_s = 30;
	c->connect_timeout_s = 10;
	c->request_timeout_s = 60;
	c->stop_timeout_s = 8;
	c->ring_mode = 0600;
	c->ring_gid = (gid_t)-1;
	c->nobj = 1; /* the global rule, empty */
	/* Two, so that one slow object does not hold up the batches behind
	 * it, while the memory for batches stays a small multiple of one. */
	c->batch_flushes = 2;
}

static const struct opt *
find_opt(const char *name)
{
	char norm[64];
	size_t i;

	for (i = 0; name[i] != '\0' && i < sizeof(norm) - 1; i++)
		norm[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
	norm[i] = '\0';
	for (size_t k = 0; k < NOPTS; k++)
		if (strcmp(opts[k].name, norm) == 0)
			return &opts[k];
	return NULL;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (mul != 1 && (strcasecmp(end, "") == 0 || strcasecmp(end, "iB") == 0 ||
	    strcasecmp(end, "B") == 0))
		end += strlen(end);
	if (*end != '\0' || (v != 0 && mul > UINT64_MAX / v))
		return -EINVAL;
	*out = (uint64_t)v * mul;
	return 0;
}

static int
parse_bool(const char *v, bool *out)
{
	if (v == NULL || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") ||
	    !strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}


/* -------------------------------------------------------- batch rules */

/* A batch rule's limits. max-bytes counts framed, uncompressed bytes;
 * at most 4G keeps even an uncompressed batch inside S3's 10,000 parts at
 * the smallest part size (5M). max-age is bounded by a day: a batch held
 * open longer than that is more likely a unit mistake (seconds for
 * milliseconds) than a wish, and its messages would wait in the ring. */
#define BATCH_BYTES_MIN     (1ull << 10)
#define BATCH_BYTES_MAX     (4ull << 30)
#define BATCH_BYTES_DEFAULT (16ull << 20)
#define BATCH_AGE_MIN       10u
#define BATCH_AGE_MAX       86400000u
#define BATCH_AGE_DEFAULT   5000u
#define BATCH_KEYS          "max-bytes, max-age, framing, compression, level, key"

/* Indexed by enum batch_compression and enum batch_framing. The codec has
 * parsers of its own (batch_codec.h); reading the settings does not depend
 * on it, and the names here must stay the ones it takes. */
static const char *const batch_comp_names[] = { "none", "gzip", "zstd" };
static const int batch_level_max[] = { 0, 9, 19 };
static const char *const batch_framing_names[] = { "lines", "length" };
#define NCOMP (sizeof(batch_comp_names) / sizeof(batch_comp_names[0]))
#define NFRAMING (sizeof(batch_framing_names) / sizeof(batch_framing_names[0]))

/* Writes p (n bytes) into buf as a double-quoted string with '"', '\\'
 * and every byte outside printable ASCII escaped (\xNN), so that an error
 * naming a rule stays one readable line whatever the prefix holds; cut
 * short with "..." if it does not fit. Returns buf. */
static const char *
quote_prefix(char *buf, size_t cap, const char *p, size_t n)
{
	size_t o = 0;

	buf[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (o + 8 >= cap) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

#define QUOTED_MAX (CONFIG_BATCH_PREFIX_MAX + 8) /* room enough for a message */

static void
batch_rule_init(struct batch_rule *r, const char *prefix, size_t n)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->prefix, prefix, n);
	r->prefix[n] = '\0';
	r->max_bytes = BATCH_BYTES_DEFAULT;
	r->max_age_ms = BATCH_AGE_DEFAULT;
	r->framing = BATCH_FRAME_LINES;
	r->compression = BATCH_COMP_ZSTD;
	r->level = 0;
	snprintf(r->key, sizeof(r->key), "%s", BATCH_KEY_DEFAULT);
}

/* A prefix is 0 to CONFIG_BATCH_PREFIX_MAX bytes of what a message key may
 * hold (ring_key_valid(): UTF-8, no controls). Returns 0 or -EINVAL. */
static int
batch_prefix_check(const char *p, size_t n, char *err, size_t errlen)
{
	char q[QUOTED_MAX];

	if (n > CONFIG_BATCH_PREFIX_MAX) {
		seterr(err, errlen, "batch prefix %s: longer than %d bytes",
		    quote_prefix(q, sizeof(q), p, 32), CONFIG_BATCH_PREFIX_MAX);
		return -EINVAL;
	}
	if (n > 0 && (memchr(p, '\0', n) != NULL || !ring_key_valid(p, n))) {
		seterr(err, errlen, "batch prefix %s: not valid UTF-8, or a control character",
		    quote_prefix(q, sizeof(q), p, n));
		return -EINVAL;
	}
	return 0;
}

static int
name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* "5000", "5000ms", "5s", "2m": milliseconds. Returns 0 or -EINVAL (not
 * such a time, or outside BATCH_AGE_MIN..BATCH_AGE_MAX). */
static int
parse_batch_age(const char *s, unsigned *out)
{
	unsigned long long v, mul;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	if (*end == '\0' || strcasecmp(end, "ms") == 0)
		mul = 1;
	else if (strcasecmp(end, "s") == 0)
		mul = 1000;
	else if (strcasecmp(end, "m") == 0)
		mul = 60000;
	else
		return -EINVAL;
	if (v > BATCH_AGE_MAX / mul || v * mul < BATCH_AGE_MIN)
		return -EINVAL;
	*out = (unsigned)(v * mul);
	return 0;
}

/* Sets one key of a batch rule (key: '-' or '_', any case). Returns 0, or
 * -EINVAL with a message naming the key in err. The level is checked
 * against the compression only by batch_rule_check(), once the rule is
 * complete, since either may come first. */
static int
batch_rule_set(struct batch_rule *r, const char *key, const char *value,
    char *err, size_t errlen)
{
	char norm[32];
	size_t i;
	uint64_t sz;
	int k;

	for (i = 0; key[i] != '\0' && i < sizeof(norm) - 1; i++)
		norm[i] = key[i] == '_' ? '-' : (char)tolower((unsigned char)key[i]);
	norm[i] = '\0';
	if (key[i] != '\0' || norm[0] == '\0')
		goto unknown;
	if (strcmp(norm, "max-bytes") == 0) {
		if (config_parse_size(value, &sz) != 0 || sz < BATCH_BYTES_MIN || sz > BATCH_BYTES_MAX) {
			seterr(err, errlen, "max-bytes: '%s' is not a size from 1K to 4G", value);
			return -EINVAL;
		}
		r->max_bytes = sz;
	} else if (strcmp(norm, "max-age") == 0) {
		if (parse_batch_age(value, &r->max_age_ms) != 0) {
			seterr(err, errlen, "max-age: '%s' is not a time from 10 ms to 24 h (milliseconds, or with ms, s or m)",
			    value);
			return -EINVAL;
		}
	} else if (strcmp(norm, "framing") == 0) {
		if ((k = name_index(batch_framing_names, NFRAMING, value)) < 0) {
			seterr(err, errlen, "framing: '%s' is not lines or length", value);
			return -EINVAL;
		}
		r->framing = (enum batch_framing)k;
	} else if (strcmp(norm, "compression") == 0) {
		if ((k = name_index(batch_comp_names, NCOMP, value)) < 0) {
			seterr(err, errlen, "compression: '%s' is not none, gzip or zstd", value);
			return -EINVAL;
		}
		r->compression = (enum batch_compression)k;
	} else if (strcmp(norm, "level") == 0) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(value, &end, 10);
		if (!isdigit((unsigned char)*value) || *end != '\0' || errno != 0 || v > 99) {
			seterr(err, errlen, "level: '%s' is not a compression level (0: the default; gzip 1 to 9, zstd 1 to 19)",
			    value);
			return -EINVAL;
		}
		r->level = (int)v;
	} else if (strcmp(norm, "key") == 0) {
		char sub[CONFIG_ERR_MAX];

		if (strlen(value) >= sizeof(r->key)) {
			seterr(err, errlen, "key: template longer than %zu bytes", sizeof(r->key) - 1);
			return -EINVAL;
		}
		for (const char *s = value; *s; s++)
			if ((unsigned char)*s < 0x20 || *s == 0x7f) {
				seterr(err, errlen, "key: control character in the template");
				return -EINVAL;
			}
		if (batch_key_check(value, sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "key: '%s': %s", value, sub);
			return -EINVAL;
		}
		memcpy(r->key, value, strlen(value) + 1);
	} else {
		goto unknown;
	}
	return 0;
unknown:
	seterr(err, errlen, "unknown key '%s' (the keys are " BATCH_KEYS ")", key);
	return -EINVAL;
}

/* What only a complete rule can tell: its level against its compression.
 * Returns 0, or -EINVAL with a message (not naming the rule) in err. */
static int
batch_rule_check(const struct batch_rule *r, char *err, size_t errlen)
{
	unsigned comp = (unsigned)r->compression;

	if (comp >= NCOMP || (unsigned)r->framing >= NFRAMING) {
		seterr(err, errlen, "unknown compression or framing");
		return -EINVAL;
	}
	if (r->level == 0)
		return 0;
	if (r->compression == BATCH_COMP_NONE) {
		seterr(err, errlen, "level %d needs compression = gzip or zstd (compression is none)", r->level);
		return -EINVAL;
	}
	if (r->level < 1 || r->level > batch_level_max[comp]) {
		seterr(err, errlen, "level %d is out of range for %s (1 to %d, or 0 for its default)",
		    r->level, batch_comp_names[comp], batch_level_max[comp]);
		return -EINVAL;
	}
	return 0;
}

/* The index of c's rule for prefix p (n bytes), adding one with the
 * defaults if there is none; -EINVAL with a message if there is no room. */
static int
batch_rule_find(struct config *c, const char *p, size_t n, char *err, size_t errlen)
{
	char q[QUOTED_MAX];

	for (unsigned i = 0; i < c->nbatch; i++)
		if (strlen(c->batch[i].prefix) == n && memcmp(c->batch[i].prefix, p, n) == 0)
			return (int)i;
	if (c->nbatch >= CONFIG_BATCH_RULES) {
		seterr(err, errlen, "batch %s: more than %d batch rules",
		    quote_prefix(q, sizeof(q), p, n), CONFIG_BATCH_RULES);
		return -EINVAL;
	}
	batch_rule_init(&c->batch[c->nbatch], p, n);
	return (int)c->nbatch++;
}

/* --batch PREFIX:key=value,...: a whole rule, the defaults for the keys
 * not given. It replaces a rule of the same prefix (the file's, or an
 * earlier flag's), as a later flag wins elsewhere. The prefix ends at the
 * first ':', and the values at ','; either character needs the file. */
static int
batch_set_flag(struct config *c, const char *value, char *err, size_t errlen)
{
	const char *colon = strchr(value, ':');
	char list[2 * CONFIG_STR_MAX], q[QUOTED_MAX], sub[CONFIG_ERR_MAX];
	struct batch_rule r;
	size_t n;
	char *item, *next;
	int idx;

	if (colon == NULL) {
		seterr(err, errlen, "batch: '%s' has no ':' (PREFIX:key=value,...; 'PREFIX:' for the defaults)", value);
		return -EINVAL;
	}
	n = (size_t)(colon - value);
	if (batch_prefix_check(value, n, err, errlen) != 0)
		return -EINVAL;
	quote_prefix(q, sizeof(q), value, n);
	if (strlen(colon + 1) >= sizeof(list)) {
		seterr(err, errlen, "batch %s: longer than %zu bytes", q, sizeof(list) - 1);
		return -EINVAL;
	}
	memcpy(list, colon + 1, strlen(colon + 1) + 1);
	batch_rule_init(&r, value, n);
	item = trim(list);
	for (item = *item != '\0' ? item : NULL; item != NULL; item = next) {
		char *eq, *k;

		next = strchr(item, ',');
		if (next != NULL)
			*next++ = '\0';
		eq = strchr(item, '=');
		if (eq == NULL) {
			seterr(err, errlen, "batch %s: '%s' is not key=value (the keys are " BATCH_KEYS ")",
			    q, trim(item));
			return -EINVAL;
		}
		*eq = '\0';
		k = trim(item);
		if (batch_rule_set(&r, k, trim(eq + 1), sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "batch %s: %s", q, sub);
			return -EINVAL;
		}
	}
	if (batch_rule_check(&r, sub, sizeof(sub)) != 0) {
		seterr(err, errlen, "batch %s: %s", q, sub);
		return -EINVAL;
	}
	if ((idx = batch_rule_find(c, value, n, sub, sizeof(sub))) < 0) {
		seterr(err, errlen, "%s", sub);
		return -EINVAL;
	}
	c->batch[idx] = r;
	return 0;
}

int
config_check_batch(const struct config *c, char *err, size_t errlen)
{
	char qa[QUOTED_MAX], qb[QUOTED_MAX], sub[CONFIG_ERR_MAX];

	if (c->nbatch > CONFIG_BATCH_RULES) {
		seterr(err, errlen, "more than %d batch rules", CONFIG_BATCH_RULES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < c->nbatch; i++) {
		const struct batch_rule *r = &c->batch[i];
		size_t n = strnlen(r->prefix, sizeof(r->prefix));

		if (n == sizeof(r->prefix) || batch_prefix_check(r->prefix, n, sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "%s", n == sizeof(r->prefix) ? "batch prefix: not terminated" : sub);
			return -EINVAL;
		}
		if (batch_rule_check(r, sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "batch %s: %s", quote_prefix(qa, sizeof(qa), r->prefix, n), sub);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < c->nbatch; i++)
		for (unsigned j = i + 1; j < c->nbatch; j++) {
			const char *a = c->batch[i].prefix, *b = c->batch[j].prefix;
			size_t la = strlen(a), lb = strlen(b);

			if (strncmp(a, b, la < lb ? la : lb) != 0)
				continue;
			if (la > lb) { /* a is the shorter, the one that starts b */
				const char *t = a;
				size_t lt = la;

				a = b;
				la = lb;
				b = t;
				lb = lt;
			}
			quote_prefix(qa, sizeof(qa), a, la);
			quote_prefix(qb, sizeof(qb), b, lb);
			if (la == lb)
				seterr(err, errlen, "batch rule %s is given twice: a key must match one batch rule at most",
				    qa);
			else if (la == 0)
				seterr(err, errlen, "batch rule \"\" matches every key, so it must be the only batch rule (there is also %s): a key must match one batch rule at most",
				    qb);
			else
				seterr(err, errlen, "batch rules %s and %s nest (%s starts %s): a key must match one batch rule at most",
				    qa, qb, qa, qb);
			return -EINVAL;
		}
	return 0;
}

int
config_set(struct config *c, const char *name, const char *value, char *err,
    size_t errlen)
{
	const struct opt *o = find_opt(name);
	char *p, *end;
	unsigned long v;
	uint64_t sz;

	if (o == NULL) {
		seterr(err, errlen, "unknown setting '%s'", name);
		return -EINVAL;
	}
	p = (char *)c + o->off;
	if (value == NULL && o->type != T_BOOL) {
		seterr(err, errlen, "%s needs a value", o->name);
		return -EINVAL;
	}
	switch (o->type) {
	case T_OBJ:
		return objopts_set(&c->obj[0], o->name, value, err, errlen);
	case T_BATCH:
		return batch_set_flag(c, value, err, errlen);
	case T_STR:
		if (strlen(value) >= o->size) {
			seterr(err, errlen, "%s: value longer than %zu bytes", o->name, o->size - 1);
			return -EINVAL;
		}
		for (const char *s = value; *s; s++)
			if ((unsigned char)*s < 0x20 || *s == 0x7f) {
				seterr(err, errlen, "%s: control character in value", o->name);
				return -EINVAL;
			}
		memcpy(p, value, strlen(value) + 1);
		return 0;
	case T_LEVEL: {
		enum log_level lv;
		if (log_parse_level(value, &lv) != 0) {
			seterr(err, errlen, "%s: '%s' is not debug, info, warn or error", o->name, value);
			return -EINVAL;
		}
		snprintf(p, o->size, "%s", log_level_name(lv));
		return 0;
	}
	case T_BOOL:
		if (parse_bool(value, (bool *)p) != 0) {
			seterr(err, errlen, "%s: '%s' is not true or false", o->name, value);
			return -EINVAL;
		}
		return 0;
	case T_UINT:
	case T_SECS:
		errno = 0;
		v = strtoul(value, &end, 10);
		if (o->type == T_SECS && *end == 's' && end[1] == '\0')
			end++;
		if (!isdigit((unsigned char)*value) || *end != '\0' || errno != 0 ||
		    v < o->min || v > o->max) {
			seterr(err, errlen, "%s: '%s' is not a number from %lu to %lu%s",
			    o->name, value, o->min, o->max, o->type == T_SECS ? " (seconds)" : "");
			return -EINVAL;
		}
		*(unsigned *)p = (unsigned)v;
		return 0;
	case T_SIZE:
		if (config_parse_size(value, &sz) != 0) {
			seterr(err, errlen, "%s: '%s' is not a size (e.g. 65536, 64M, 1G)", o->name, value);
			return -EINVAL;
		}
		if (o->off == offsetof(struct config, multipart_threshold)) {
			if (sz != 0 && sz < (5u << 20)) {
				seterr(err, errlen, "multipart-threshold: %s must be 0 or at least 5M (S3's smallest part)", value);
				return -EINVAL;
			}
			c->multipart_threshold = sz;
		} else if (o->off == offsetof(struct config, part_size)) {
			if (sz < (5u << 20) || sz > (5ull << 30)) {
				seterr(err, errlen, "part-size: %s must be from 5M to 5G", value);
				return -EINVAL;
			}
			c->part_size = sz;
		} else if (o->off == offsetof(struct config, ring_size)) {
			if (sz < RING_MIN_CAPACITY || sz > RING_MAX_CAPACITY || (sz & (sz - 1))) {
				seterr(err, errlen, "ring-size: %s must be a power of two from 64K to 1G", value);
				return -EINVAL;
			}
			c->ring_size = sz;
			c->ring_size_set = true;
		} else {
			if (sz == 0 || sz > RING_MAX_CAPACITY / 8) {
				seterr(err, errlen, "max-message: %s must be from 1 to 128M", value);
				return -EINVAL;
			}
			c->max_message = (uint32_t)sz;
		}
		return 0;
	case T_MODE:
		errno = 0;
		v = strtoul(value, &end, 8);
		if (*value == '\0' || *end != '\0' || errno != 0 || v > 0777 ||
		    (v & 0600) != 0600) {
			seterr(err, errlen, "ring-mode: '%s' is not an octal mode that lets the owner read and write", value);
			return -EINVAL;
		}
		c->ring_mode = (mode_t)v;
		return 0;
	case T_GROUP: {
		struct group *g = getgrnam(value);
		if (g != NULL) {
			c->ring_gid = g->gr_gid;
			return 0;
		}
		errno = 0;
		v = strtoul(value, &end, 10);
		if (!isdigit((unsigned char)*value) || *end != '\0' || errno != 0 ||
		    v >= (unsigned long)(gid_t)-1) {
			seterr(err, errlen, "ring-group: no group '%s'", value);
			return -EINVAL;
		}
		c->ring_gid = (gid_t)v;
		return 0;
	}
	}
	return -EINVAL;
}

/* The section a config file line is in. */
enum section_kind { SEC_TOP, SEC_PREFIX, SEC_BATCH };

struct section {
	enum section_kind kind;
	unsigned idx;       /* SEC_PREFIX: in c->obj; SEC_BATCH: in c->batch */
};

/* Parses a `[prefix "P"]` or `[batch "P"]` line (the quotes optional) at
 * s into *sec, adding the rule if its prefix is new (a repeated prefix
 * continues its section). Returns 0, or -EINVAL with a message. */
static int
open_section(struct config *c, char *s, struct section *sec, char *err, size_t errlen)
{
	size_t n = strlen(s);
	enum section_kind kind;
	char *p;
	int idx;

	if (n < 2 || s[n - 1] != ']') {
		seterr(err, errlen, "a section line must end with ']'");
		return -EINVAL;
	}
	s[n - 1] = '\0';
	p = trim(s + 1);
	if (strncmp(p, "prefix", 6) == 0 && isspace((unsigned char)p[6])) {
		kind = SEC_PREFIX;
		p = trim(p + 6);
	} else if (strncmp(p, "batch", 5) == 0 && isspace((unsigned char)p[5])) {
		kind = SEC_BATCH;
		p = trim(p + 5);
	} else if (strcmp(p, "batch") == 0) {
		seterr(err, errlen, "a [batch] section needs a prefix: [batch \"P\"] ([batch \"\"] for every key)");
		return -EINVAL;
	} else {
		seterr(err, errlen, "unknown section '[%s]' (the sections are [prefix \"P\"] and [batch \"P\"])", p);
		return -EINVAL;
	}
	n = strlen(p);
	if (n >= 2 && (p[0] == '"' || p[0] == '\'') && p[n - 1] == p[0]) {
		p[n - 1] = '\0';
		p++;
		n -= 2;
	}
	if (kind == SEC_BATCH) {
		if (batch_prefix_check(p, n, err, errlen) != 0)
			return -EINVAL;
		if ((idx = batch_rule_find(c, p, n, err, errlen)) < 0)
			return -EINVAL;
		*sec = (struct section){ SEC_BATCH, (unsigned)idx };
		return 0;
	}
	if (n == 0 || n >= OBJOPTS_PREFIX_MAX) {
		seterr(err, errlen, "a prefix must have 1 to %d bytes", OBJOPTS_PREFIX_MAX - 1);
		return -EINVAL;
	}
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f) {
			seterr(err, errlen, "control character in the prefix");
			return -EINVAL;
		}
	for (unsigned i = 1; i < c->nobj; i++)
		if (strcmp(c->obj[i].prefix, p) == 0) {
			*sec = (struct section){ SEC_PREFIX, i };
			return 0;
		}
	if (c->nobj >= OBJOPTS_RULES) {
		seterr(err, errlen, "more than %d [prefix] sections", OBJOPTS_RULES - 1);
		return -EINVAL;
	}
	memset(&c->obj[c->nobj], 0, sizeof(c->obj[0]));
	memcpy(c->obj[c->nobj].prefix, p, n + 1);
	*sec = (struct section){ SEC_PREFIX, c->nobj++ };
	return 0;
}

int
config_parse_file_text(struct config *c, const char *text, size_t len,
    const char *fname, char *err, size_t errlen)
{
	char line[CONFIG_STR_MAX + 128];
	size_t i = 0;
	unsigned lineno = 0;
	struct section section = { SEC_TOP, 0 };
	/* The line of each batch rule's last level or compression, for the
	 * check of the one against the other once the file is read. */
	unsigned level_line[CONFIG_BATCH_RULES] = { 0 };
	char sub[CONFIG_ERR_MAX], q[QUOTED_MAX];

	while (i < len) {
		size_t n = 0;
		char *s, *eq, *key, *val;

		lineno++;
		while (i < len && text[i] != '\n') {
			if (n >= sizeof(line) - 1) {
				seterr(err, errlen, "%s:%u: line too long", fname, lineno);
				return -EINVAL;
			}
			if (text[i] == '\0') {
				seterr(err, errlen, "%s:%u: NUL byte", fname, lineno);
				return -EINVAL;
			}
			line[n++] = text[i++];
		}
		i++; /* the newline */
		line[n] = '\0';
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if (open_section(c, s, &section, sub, sizeof(sub)) != 0) {
				seterr(err, errlen, "%s:%u: %s", fname, lineno, sub);
				return -EINVAL;
			}
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL) {
			seterr(err, errlen, "%s:%u: expected 'key = value'", fname, lineno);
			return -EINVAL;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		n = strlen(val);
		if (n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0]) {
			val[n - 1] = '\0';
			val++;
		}
		if (*key == '\0') {
			seterr(err, errlen, "%s:%u: missing key", fname, lineno);
			return -EINVAL;
		}
		if (section.kind == SEC_BATCH) {
			struct batch_rule *r = &c->batch[section.idx];

			if (batch_rule_set(r, key, val, sub, sizeof(sub)) != 0) {
				seterr(err, errlen, "%s:%u: [batch %s]: %s", fname, lineno,
				    quote_prefix(q, sizeof(q), r->prefix, strlen(r->prefix)), sub);
				return -EINVAL;
			}
			if (!strcasecmp(key, "level") || !strcasecmp(key, "compression"))
				level_line[section.idx] = lineno;
			continue;
		}
		if (find_opt(key) != NULL && (!strcmp(find_opt(key)->name, "config") ||
		    !strcmp(find_opt(key)->name, "replay"))) {
			seterr(err, errlen, "%s:%u: '%s' cannot be set in a config file", fname, lineno, key);
			return -EINVAL;
		}
		if (find_opt(key) != NULL && find_opt(key)->type == T_BATCH) {
			seterr(err, errlen, "%s:%u: '%s' is the flag's form: in a config file, a batch rule is a [batch \"P\"] section",
			    fname, lineno, key);
			return -EINVAL;
		}
		if (section.kind == SEC_PREFIX) {
			const struct opt *o = find_opt(key);
			if (o == NULL || o->type != T_OBJ) {
				seterr(err, errlen, "%s:%u: '%s' is not an object option: only object options may be set in a [prefix] section",
				    fname, lineno, key);
				return -EINVAL;
			}
			if (objopts_set(&c->obj[section.idx], o->name, val, sub, sizeof(sub)) != 0) {
				seterr(err, errlen, "%s:%u: %s", fname, lineno, sub);
				return -EINVAL;
			}
			continue;
		}
		if (config_set(c, key, val, sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "%s:%u: %s", fname, lineno, sub);
			return -EINVAL;
		}
	}
	for (unsigned k = 0; k < c->nbatch; k++) {
		const struct batch_rule *r = &c->batch[k];

		if (batch_rule_check(r, sub, sizeof(sub)) == 0)
			continue;
		quote_prefix(q, sizeof(q), r->prefix, strlen(r->prefix));
		if (level_line[k] != 0)
			seterr(err, errlen, "%s:%u: [batch %s]: %s", fname, level_line[k], q, sub);
		else
			seterr(err, errlen, "%s: [batch %s]: %s", fname, q, sub);
		return -EINVAL;
	}
	return 0;
}

static int
load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text;
	size_t n;
	int rc;

	if (f == NULL) {
		seterr(err, errlen, "config %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	text = malloc(CONFIG_FILE_MAX + 1);
	if (text == NULL) {
		fclose(f);
		seterr(err, errlen, "config %s: out of memory", path);
		return -EINVAL;
	}
	n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	fclose(f);
	if (n > CONFIG_FILE_MAX) {
		free(text);
		seterr(err, errlen, "config %s: larger than %d bytes", path, CONFIG_FILE_MAX);
		return -EINVAL;
	}
	rc = config_parse_file_text(c, text, n, path, err, errlen);
	free(text);
	return rc;
}

static int
load_env(struct config *c, char *err, size_t errlen)
{
	static const struct { const char *env, *opt; } map[] = {
		/* Later entries win: AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL,
		 * AWS_REGION over AWS_DEFAULT_REGION, as the AWS CLI does. */
		{ "S3RING_RING", "ring" },
		{ "S3RING_BUCKET", "bucket" },
		{ "AWS_DEFAULT_REGION", "region" },
		{ "AWS_REGION", "region" },
		{ "AWS_ENDPOINT_URL", "endpoint" },
		{ "AWS_ENDPOINT_URL_S3", "endpoint" },
		{ "AWS_CA_BUNDLE", "ca-file" },
	};
	char sub[CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v = getenv(map[i].env);
		if (v == NULL || *v == '\0')
			continue;
		if (config_set(c, map[i].opt, v, sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "environment %s: %s", map[i].env, sub);
			return -EINVAL;
		}
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: s3ring-uploader [--ring NAME] --bucket B [--endpoint URL] [--region R]\n"
	    "         [--path-style] [--workers N] [--ring-size BYTES] [--max-message BYTES]\n"
	    "         [--spool DIR] [--key-prefix P] [--config FILE] [--log-level L]\n"
	    "       s3ring-uploader --replay DIR --bucket B [...]\n\nsettings (flags; the same names work in --config files):\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(f, "  --%-20s %s\n", opts[i].name, opts[i].help);
}

int
config_load(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct option lo[NOPTS + 3];
	const char *cfgfile = NULL;
	char sub[CONFIG_ERR_MAX];
	int ch, idx;

	config_defaults(c);
	for (size_t i = 0; i < NOPTS; i++) {
		lo[i].name = opts[i].name;
		lo[i].has_arg = opts[i].type == T_BOOL ? optional_argument : required_argument;
		lo[i].flag = NULL;
		lo[i].val = 1000 + (int)i;
	}
	lo[NOPTS] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[NOPTS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	lo[NOPTS + 2] = (struct option){ NULL, 0, NULL, 0 };

	/* Pass 1: syntax, --help, and where the config file is. */
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":", lo, &idx)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			return 1;
		}
		if (ch == 'V') {
			printf("s3ring-uploader %d.%d (ring layout %u)\n", 0, 1, RING_LAYOUT_VERSION);
			return 1;
		}
		if (ch == '?') {
			if (optopt >= 1000)
				seterr(err, errlen, "option --%s takes no value", opts[optopt - 1000].name);
			else
				seterr(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
		if (ch == ':') {
			seterr(err, errlen, "option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		}
		if (ch >= 1000 && !strcmp(opts[ch - 1000].name, "config"))
			cfgfile = optarg;
	}
	if (optind < argc) {
		seterr(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (cfgfile != NULL && load_file(c, cfgfile, err, errlen) != 0)
		return -EINVAL;
	if (load_env(c, err, errlen) != 0)
		return -EINVAL;
	/* Pass 2: the flags, over everything else. */
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":", lo, &idx)) != -1) {
		if (ch < 1000)
			continue;
		if (config_set(c, opts[ch - 1000].name, optarg, sub, sizeof(sub)) != 0) {
			seterr(err, errlen, "--%s", sub);
			return -EINVAL;
		}
	}

	if (c->bucket[0] == '\0') {
		seterr(err, errlen, "--bucket is required (or bucket = in --config, or S3RING_BUCKET)");
		return -EINVAL;
	}
	if (strchr(c->bucket, '/') != NULL || strchr(c->bucket, ' ') != NULL) {
		seterr(err, errlen, "bucket '%s': not a bucket name", c->bucket);
		return -EINVAL;
	}
	if (c->endpoint[0] != '\0' && strncmp(c->endpoint, "http://", 7) != 0 &&
	    strncmp(c->endpoint, "https://", 8) != 0) {
		seterr(err, errlen, "endpoint '%s': must start with http:// or https://", c->endpoint);
		return -EINVAL;
	}
	if (c->endpoint[0] != '\0') {
		const char *slash = strchr(strstr(c->endpoint, "://") + 3, '/');
		if (slash != NULL && slash[1] != '\0') {
			seterr(err, errlen, "endpoint '%s': must not have a path (use --key-prefix for a key prefix)",
			    c->endpoint);
			return -EINVAL;
		}
	}
	if (objopts_validate(c->obj, c->nobj, sub, sizeof(sub)) != 0) {
		seterr(err, errlen, "%s", sub);
		return -EINVAL;
	}
	if (config_check_batch(c, err, errlen) != 0)
		return -EINVAL;
	c->argc = argc;
	c->argv = argv;
	if (c->max_message == 0)
		c->max_message = (uint32_t)(RING_DEFAULT_MAX_MESSAGE < c->ring_size / 8 ?
		    RING_DEFAULT_MAX_MESSAGE : c->ring_size / 8);
	if (c->max_message > c->ring_size / 8) {
		seterr(err, errlen, "max-message %u is more than ring-size/8 (%llu)",
		    c->max_message, (unsigned long long)(c->ring_size / 8));
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------- reload */

static void
list_add(char *list, size_t cap, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, cap - n, "%s%s", n ? "," : "", name);
}

/* Field by field: the bytes after a string's NUL may differ. */
static bool
batch_rules_equal(const struct config *a, const struct config *b)
{
	if (a->nbatch != b->nbatch)
		return false;
	for (unsigned i = 0; i < a->nbatch; i++) {
		const struct batch_rule *x = &a->batch[i], *y = &b->batch[i];

		if (strcmp(x->prefix, y->prefix) != 0 || x->max_bytes != y->max_bytes ||
		    x->max_age_ms != y->max_age_ms || x->framing != y->framing ||
		    x->compression != y->compression || x->level != y->level ||
		    strcmp(x->key, y->key) != 0)
			return false;
	}
	return true;
}

static bool
objopts_equal(const struct config *a, const struct config *b)
{
	if (a->nobj != b->nobj)
		return false;
	for (unsigned i = 0; i < a->nobj; i++)
		if (memcmp(&a->obj[i], &b->obj[i], sizeof(a->obj[i])) != 0)
			return false;
	return true;
}

void
config_reload_diff(const struct config *live, const struct config *fresh,
    char *applied, char *restart, size_t cap)
{
	/* The settings that need a restart, by name and offset: the daemon
	 * built its ring, journal, clients and workers from them. */
	static const char *const restart_names[] = {
		"ring", "bucket", "endpoint", "region", "spool", "ca-file",
		"path-style", "insecure", "allow-foreign-ring", "workers",
		"ring-size", "max-message", "connect-timeout", "request-timeout",
		"ring-mode", "ring-group", "multipart-threshold", "part-size",
		"multipart-parallel", "part-checksums",
	};

	applied[0] = restart[0] = '\0';
	if (strcmp(live->log_level, fresh->log_level) != 0)
		list_add(applied, cap, "log-level");
	if (strcmp(live->log_file, fresh->log_file) != 0)
		list_add(applied, cap, "log-file");
	if (!objopts_equal(live, fresh))
		list_add(applied, cap, "object options");
	if (live->max_attempts != fresh->max_attempts)
		list_add(applied, cap, "max-attempts");
	if (live->max_age_s != fresh->max_age_s)
		list_add(applied, cap, "max-age");
	if (live->recheck_s != fresh->recheck_s)
		list_add(applied, cap, "recheck-interval");
	if (strcmp(live->key_prefix, fresh->key_prefix) != 0)
		list_add(applied, cap, "key-prefix");
	if (live->stop_timeout_s != fresh->stop_timeout_s)
		list_add(applied, cap, "stop-timeout");
	if (!batch_rules_equal(live, fresh))
		list_add(applied, cap, "batch");
	if (live->batch_flushes != fresh->batch_flushes)
		list_add(applied, cap, "batch-flushes");
	for (size_t i = 0; i < sizeof(restart_names) / sizeof(restart_names[0]); i++) {
		const struct opt *o = find_opt(restart_names[i]);
		const char *a = (const char *)live + o->off, *b = (const char *)fresh + o->off;
		bool same;

		switch (o->type) {
		case T_STR:
			same = strcmp(a, b) == 0;
			break;
		case T_BOOL:
			same = *(const bool *)a == *(const bool *)b;
			break;
		case T_UINT:
		case T_SECS:
			same = *(const unsigned *)a == *(const unsigned *)b;
			break;
		case T_SIZE:
			same = o->off == offsetof(struct config, ring_size) ?
			    live->ring_size == fresh->ring_size :
			    o->off == offsetof(struct config, max_message) ?
			    live->max_message == fresh->max_message :
			    *(const uint64_t *)a == *(const uint64_t *)b;
			break;
		case T_MODE:
			same = live->ring_mode == fresh->ring_mode;
			break;
		case T_GROUP:
			same = live->ring_gid == fresh->ring_gid;
			break;
		default:
			same = true;
			break;
		}
		if (!same)
			list_add(restart, cap, restart_names[i]);
	}
}

void
config_apply_runtime(struct config *live, const struct config *fresh)
{
	memcpy(live->log_level, fresh->log_level, sizeof(live->log_level));
	memcpy(live->log_file, fresh->log_file, sizeof(live->log_file));
	memcpy(live->obj, fresh->obj, sizeof(live->obj));
	live->nobj = fresh->nobj;
	live->max_attempts = fresh->max_attempts;
	live->max_age_s = fresh->max_age_s;
	live->recheck_s = fresh->recheck_s;
	memcpy(live->key_prefix, fresh->key_prefix, sizeof(live->key_prefix));
	live->stop_timeout_s = fresh->stop_timeout_s;
	/* The uploader closes the open batches before it calls this: a batch
	 * is built under one rule from its first message to its last. */
	memcpy(live->batch, fresh->batch, sizeof(live->batch));
	live->nbatch = fresh->nbatch;
	live->batch_flushes = fresh->batch_flushes;
}
