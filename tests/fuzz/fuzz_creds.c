/* fuzz_creds.c -- libFuzzer harness for the credentials-file parser */
/*
 * creds_parse_ini() must stay inside the exact-size input, terminate, keep
 * every field NUL-terminated within its cap, and report an error line
 * exactly when it fails with -EINVAL or -E2BIG. The first input byte picks
 * the profile so that both found and missing profiles are explored.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *f, size_t cap)
{
	if (strnlen(f, cap) == cap)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *profiles[] = { "default", "dev", "a b", "" };
	struct creds_profile p;
	const char *profile;
	int rc;

	if (size == 0)
		return 0;
	profile = profiles[data[0] % 4];
	rc = creds_parse_ini((const char *)data + 1, size - 1, profile, &p);
	check(p.keys.access_key_id, sizeof(p.keys.access_key_id));
	check(p.keys.secret_access_key, sizeof(p.keys.secret_access_key));
	check(p.keys.session_token, sizeof(p.keys.session_token));
	check(p.region, sizeof(p.region));
	check(p.endpoint_url, sizeof(p.endpoint_url));
	check(p.unsupported, sizeof(p.unsupported));
	if ((rc == -EINVAL || rc == -E2BIG) != (p.error_line != 0))
		abort();
	if (rc != 0 && rc != -ENOENT && rc != -EINVAL && rc != -E2BIG)
		abort();
	creds_secret_wipe(&p.keys);
	return 0;
}
