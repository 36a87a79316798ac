/* config.h -- s3ring-uploader's settings: flags, environment, config file. */
#ifndef S3RING_CONFIG_H
#define S3RING_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch_codec.h"
#include "objopts.h"

#define CONFIG_STR_MAX 1024
#define CONFIG_ERR_MAX 512

/* Batch rules (s3ring-uploader(8), "Batch mode"): the messages whose key
 * starts with prefix go into compressed batch objects instead of one object
 * each. Prefixes never nest (neither is a prefix of the other), so a key
 * matches one rule at most, whatever the order or the set of rules: a
 * batch can be rebuilt after a restart from its prefix alone. */
#define CONFIG_BATCH_RULES 16       /* RING_BATCH_RULES: shmstat shows each */
#define CONFIG_BATCH_PREFIX_MAX 255 /* bytes */

struct batch_rule {
	char prefix[CONFIG_BATCH_PREFIX_MAX + 1];
	uint64_t max_bytes;           /* framed, uncompressed bytes: flush at this */
	unsigned max_age_ms;          /* the oldest message's age: flush at this */
	enum batch_framing framing;
	enum batch_compression compression;
	int level;                    /* 0: the codec's default */
	char key[CONFIG_STR_MAX];     /* template, batch_key.h */
};

struct config {
	char ring[256];
	char bucket[256];
	char endpoint[CONFIG_STR_MAX];   /* "" means AWS: https://s3.REGION.amazonaws.com */
	char region[64];                 /* "": the profile's, else us-east-1 */
	char key_prefix[CONFIG_STR_MAX];
	char spool[CONFIG_STR_MAX];
	char ca_file[CONFIG_STR_MAX];
	char log_level[16];
	char replay[CONFIG_STR_MAX];     /* --replay DIR: send the spool, exit */
	char config_file[CONFIG_STR_MAX];
	char log_file[CONFIG_STR_MAX];   /* "": stderr */
	bool path_style;
	bool insecure;                   /* no TLS verification (warned) */
	bool allow_foreign_ring;         /* attach to a ring of another uid */
	unsigned workers;
	uint64_t ring_size;
	bool ring_size_set;        /* given by flag or file, not the default */
	uint32_t max_message;
	/* Bodies of at least multipart_threshold bytes (0: none) go as
	 * multipart uploads of part_size parts, multipart_parallel of them in
	 * flight per message, each with its CRC-32C if part_checksums. */
	uint64_t multipart_threshold;
	uint64_t part_size;
	unsigned multipart_parallel;
	bool part_checksums;
	struct batch_rule batch[CONFIG_BATCH_RULES];
	unsigned nbatch;
	unsigned batch_flushes;          /* batch objects being sent at once */
	unsigned max_attempts;
	unsigned max_age_s;              /* 0: no age limit */
	unsigned recheck_s;              /* configuration alarm re-check */
	unsigned connect_timeout_s;
	unsigned request_timeout_s;
	unsigned stop_timeout_s;         /* SIGTERM: drain this long at most */
	mode_t ring_mode;
	gid_t ring_gid;                  /* (gid_t)-1: the creator's group */
	/* Object options: obj[0] is the global rule (flags and the file's
	 * top level), obj[1..nobj-1] the file's [prefix "P"] sections. */
	struct objopts obj[OBJOPTS_RULES];
	unsigned nobj;
	/* The command line config_load() read (borrowed from main): SIGHUP
	 * loads the settings again from it, so flags keep winning. */
	int argc;
	char **argv;
};

/* Exit status for a usage or configuration error (EX_USAGE). */
#define CONFIG_EXIT_USAGE 64

/* Fills *c from, in increasing order of precedence, the defaults, the
 * --config file, the environment and the command line. Returns 0; 1 when
 * --help or --version was handled (print nothing more, exit 0); or -EINVAL
 * with a one-line message (no newline) in err. */
int config_load(struct config *c, int argc, char **argv, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Applies one setting by name (the long flag without dashes; '_' and '-'
 * are the same). Returns 0, or -EINVAL with a message in err. Exposed for
 * tests and the fuzzer. */
int config_set(struct config *c, const char *name, const char *value,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Parses `key = value` lines (comments start with '#' or ';', blank lines
 * are skipped, values may be quoted). A `[prefix "P"]` line starts a
 * section whose lines are object options for message keys starting with P
 * (up to OBJOPTS_RULES - 1 sections; a repeated prefix continues its
 * section). A `[batch "P"]` line starts a batch rule for P ("" allowed;
 * up to CONFIG_BATCH_RULES) whose lines are max-bytes, max-age, framing,
 * compression, level and key; a repeated prefix continues its rule, and
 * each rule's level is checked against its compression once the file is
 * read. Returns 0, or -EINVAL naming the file and line in err. */
int config_parse_file_text(struct config *c, const char *text, size_t len,
    const char *fname, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks the batch rules as a set, as config_load() does once the file,
 * the environment and the flags are merged: each prefix is valid, each
 * level fits its compression, and no prefix starts another (equal ones
 * included; "" only alone), so that a key matches one rule at most.
 * Returns 0, or -EINVAL with a one-line message naming the rule in err.
 * Exposed for tests and the fuzzer. */
int config_check_batch(const struct config *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Parses "65536", "64K", "64MiB", "1G". Returns 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *out)
    __attribute__((warn_unused_result));

void config_defaults(struct config *c);

/*
 * What a reload (SIGHUP) may change in a running uploader: log level and
 * file, object options, max-attempts, max-age, recheck-interval,
 * key-prefix, stop-timeout, the batch rules ("batch") and batch-flushes. Everything else (the ring, bucket,
 * endpoint, region, workers, timeouts of the S3 clients, TLS, spool...)
 * needs a restart.
 *
 * config_reload_diff() writes into applied and restart (each cap bytes,
 * NUL-terminated, comma-separated setting names, "" if none) which
 * settings differ between live and fresh, split that way.
 * config_apply_runtime() copies the run-time settings of fresh into live
 * and leaves the others.
 */
void config_reload_diff(const struct config *live, const struct config *fresh,
    char *applied, char *restart, size_t cap);
void config_apply_runtime(struct config *live, const struct config *fresh);

#endif
