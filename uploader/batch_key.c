/* batch_key.c -- a stand-in for the batch key template checker.
 *
 * Placeholder: it knows only the rule that makes a batch's key stable,
 * that a template names both {ring} and {pos}, so that config.c can be
 * built and tested on its own. The real checker and expander replace this
 * file; nothing here may be relied on beyond batch_key.h's contract.
 */
#include "batch_key.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
batch_key_check(const char *tmpl, char *err, size_t errlen)
{
	if (strstr(tmpl, "{ring}") == NULL || strstr(tmpl, "{pos}") == NULL) {
		snprintf(err, errlen, "the key template must contain {ring} and {pos}");
		return -EINVAL;
	}
	return 0;
}

int
batch_key_expand(const char *tmpl, const struct batch_key_fields *f, char *out,
    size_t cap)
{
	(void)tmpl;
	(void)f;
	if (cap > 0)
		out[0] = '\0';
	return -ENOSYS;
}
