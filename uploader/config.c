/* config.c -- s3ring-uploader's settings from flags, environment and file.
 *
 * One table names every setting, so the command line, the config file and
 * the documentation cannot drift apart. Precedence, lowest first: defaults,
 * the --config file, the environment (the AWS conventions), the command
 * line. Every bad value is refused with one line that names the setting and
 * where it came from; nothing is silently clamped.
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

#include "log.h"
#include "ring_layout.h"

#define CONFIG_FILE_MAX (64 * 1024)

enum opt_type { T_STR, T_BOOL, T_UINT, T_SIZE, T_SECS, T_MODE, T_GROUP, T_LEVEL, T_OBJ };

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

/* Parses a `[prefix "P"]` (or `[prefix P]`) line at s and returns the
 * index of its rule in c->obj, adding it if new; -EINVAL with a message. */
static int
open_section(struct config *c, char *s, char *err, size_t errlen)
{
	size_t n = strlen(s);
	char *p;

	if (n < 2 || s[n - 1] != ']') {
		seterr(err, errlen, "a section line must end with ']'");
		return -EINVAL;
	}
	s[n - 1] = '\0';
	p = trim(s + 1);
	if (strncmp(p, "prefix", 6) != 0 || !isspace((unsigned char)p[6])) {
		seterr(err, errlen, "unknown section '[%s]' (the only one is [prefix \"P\"])", p);
		return -EINVAL;
	}
	p = trim(p + 6);
	n = strlen(p);
	if (n >= 2 && (p[0] == '"' || p[0] == '\'') && p[n - 1] == p[0]) {
		p[n - 1] = '\0';
		p++;
		n -= 2;
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
		if (strcmp(c->obj[i].prefix, p) == 0)
			return (int)i;
	if (c->nobj >= OBJOPTS_RULES) {
		seterr(err, errlen, "more than %d [prefix] sections", OBJOPTS_RULES - 1);
		return -EINVAL;
	}
	memset(&c->obj[c->nobj], 0, sizeof(c->obj[0]));
	memcpy(c->obj[c->nobj].prefix, p, n + 1);
	return (int)c->nobj++;
}

int
config_parse_file_text(struct config *c, const char *text, size_t len,
    const char *fname, char *err, size_t errlen)
{
	char line[CONFIG_STR_MAX + 128];
	size_t i = 0;
	unsigned lineno = 0, section = 0; /* 0: the top level */

	while (i < len) {
		size_t n = 0;
		char *s, *eq, *key, *val;
		char sub[CONFIG_ERR_MAX];

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
			int sec = open_section(c, s, sub, sizeof(sub));
			if (sec < 0) {
				seterr(err, errlen, "%s:%u: %s", fname, lineno, sub);
				return -EINVAL;
			}
			section = (unsigned)sec;
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
		if (find_opt(key) != NULL && (!strcmp(find_opt(key)->name, "config") ||
		    !strcmp(find_opt(key)->name, "replay"))) {
			seterr(err, errlen, "%s:%u: '%s' cannot be set in a config file", fname, lineno, key);
			return -EINVAL;
		}
		if (section != 0) {
			const struct opt *o = find_opt(key);
			if (o == NULL || o->type != T_OBJ) {
				seterr(err, errlen, "%s:%u: '%s' is not an object option: only object options may be set in a [prefix] section",
				    fname, lineno, key);
				return -EINVAL;
			}
			if (objopts_set(&c->obj[section], o->name, val, sub, sizeof(sub)) != 0) {
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
}
