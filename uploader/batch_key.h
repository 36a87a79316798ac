/* batch_key.h -- the object key of a batch, from the rule's template.
 *
 * A template is text with two kinds of fields:
 *   %X         strftime(3) conversions of the batch's first message's put
 *              time, in UTC: %Y %m %d %H %M %S %j %F %T ... ("%%" is "%")
 *   {prefix}   the rule's prefix, as written in the rule
 *   {host}     the host name (gethostname(), up to the first dot)
 *   {ring}     the ring's identity: 16 lowercase hex digits, random at the
 *              ring's creation
 *   {pos}      the ring position of the batch's first record, 16 lowercase
 *              hex digits
 *   {ext}      ".zst", ".gz" or "" after the rule's compression
 * {ring} and {pos} together never repeat for the life of a ring and are the
 * same when a batch is rebuilt after a restart, so a template must have
 * both: a re-upload overwrites the object instead of duplicating it.
 */
#ifndef S3RING_BATCH_KEY_H
#define S3RING_BATCH_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BATCH_KEY_DEFAULT "{prefix}%Y/%m/%d/%H/{host}-{ring}-{pos}{ext}"

/* A NULL prefix or ext expands to nothing; a NULL host to the short host
 * name, which is read once and kept (not thread-safe on the first call). */
struct batch_key_fields {
	time_t t;             /* the first message's put time, UTC */
	const char *prefix;
	const char *host;
	const char *ext;
	uint64_t ring_id;
	uint64_t pos;
};

/* Checks a template: the fields are known, {ring} and {pos} are present,
 * the conversions are ones strftime() knows (one letter, no flags or
 * modifiers; not %n or %t, which no key may hold). Returns 0 (err then
 * empty), or -EINVAL with a one-line reason (no newline) in err. */
int batch_key_check(const char *tmpl, char *err, size_t errlen);

/* Expands tmpl into out (cap bytes, NUL-terminated). Field values are
 * copied as they are, never read as template text. Returns the key's
 * length, -ENAMETOOLONG if it does not fit cap or S3's 1,024 bytes, or
 * -EINVAL if tmpl does not parse or the result is not a valid key
 * (ring_key_valid()); on failure out is the empty string (cap > 0). */
int batch_key_expand(const char *tmpl, const struct batch_key_fields *f,
    char *out, size_t cap);

#endif
