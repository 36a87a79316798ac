/* objopts.h -- object options of the uploaded objects: Content-Type,
 * Cache-Control, Content-Encoding, storage class, encryption, ACL, tags and
 * user metadata, globally or per key prefix. */
#ifndef S3RING_OBJOPTS_H
#define S3RING_OBJOPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "sigv4.h"

#define OBJOPTS_RULES      16   /* the global rule and 15 prefixes */
#define OBJOPTS_PAIRS      10   /* tags (S3's limit) and metadata entries */
#define OBJOPTS_PREFIX_MAX 256
#define OBJOPTS_META_MAX   2048 /* S3: user metadata, names and values */

/* Which fields a rule sets (a prefix rule overrides only these). */
enum {
	OBJOPT_CONTENT_TYPE     = 1u << 0,
	OBJOPT_CACHE_CONTROL    = 1u << 1,
	OBJOPT_CONTENT_ENCODING = 1u << 2,
	OBJOPT_STORAGE_CLASS    = 1u << 3,
	OBJOPT_SSE              = 1u << 4,
	OBJOPT_SSE_KMS_KEY_ID   = 1u << 5,
	OBJOPT_SSE_BUCKET_KEY   = 1u << 6,
	OBJOPT_ACL              = 1u << 7,
	OBJOPT_TAGS             = 1u << 8,
	OBJOPT_META             = 1u << 9,
};

struct objopts_pair {
	char name[129];
	char value[257];
};

/* One rule: the global one (prefix "") or one for keys starting with
 * prefix. Plain data: copied with struct assignment. */
struct objopts {
	char prefix[OBJOPTS_PREFIX_MAX];
	unsigned set;
	char content_type[128];
	char cache_control[256];
	char content_encoding[64];
	char storage_class[32];
	char sse[16];                 /* AES256, aws:kms or aws:kms:dsse */
	char sse_kms_key_id[256];
	bool sse_bucket_key;
	char acl[32];                 /* a canned ACL */
	unsigned ntags, nmeta;
	struct objopts_pair tags[OBJOPTS_PAIRS];
	struct objopts_pair meta[OBJOPTS_PAIRS];
};

/* True if name (a setting's name, '-' form) is an object option:
 * content-type, cache-control, content-encoding, storage-class, sse,
 * sse-kms-key-id, sse-bucket-key, acl, tag (NAME=VALUE) or meta
 * (NAME=VALUE). */
bool objopts_is_option(const char *name);

/* Sets one option in o from its text. tag and meta add an entry (a second
 * one of the same name replaces the first). Returns 0, or -EINVAL with a
 * message (naming the option, no newline) in err. */
int objopts_set(struct objopts *o, const char *name, const char *value,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Checks what only a whole rule set can tell (a KMS key id or bucket key
 * without sse = aws:kms; metadata over 2 KB once merged). Returns 0 or
 * -EINVAL with a message in err. */
int objopts_validate(const struct objopts *rules, size_t n, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The Content-Type for a key without a configured one: from the key's
 * extension (case-insensitive) by a small built-in table, else
 * application/octet-stream. Never NULL; a static string. */
const char *objopts_content_type_for_key(const char *key);

/* The headers of one PUT, with their storage. Valid until the next
 * objopts_headers() on the same struct. */
#define OBJOPTS_MAX_HEADERS (9 + OBJOPTS_PAIRS)
struct objopts_headers {
	struct sigv4_kv h[OBJOPTS_MAX_HEADERS];
	size_t n;
	char meta_names[OBJOPTS_PAIRS][12 + 129];
	char tagging[OBJOPTS_PAIRS * (3 * 128 + 3 * 256 + 2) + 1];
};

/*
 * Fills *out with the headers for the object of message key `key`:
 * rules[0] is the global rule, rules[1..n-1] prefix rules, of which the
 * longest prefix of key applies over the global one, field by field (its
 * tags or metadata, if it has any, replace the global ones). Content-Type
 * is always sent. The strings point into rules and *out. Returns 0, or
 * -ENOSPC if the tagging header does not fit (it cannot with validated
 * rules).
 */
int objopts_headers(const struct objopts *rules, size_t n, const char *key,
    struct objopts_headers *out) __attribute__((warn_unused_result));

#endif
