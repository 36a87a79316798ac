/* fuzz_creds.c -- libFuzzer harness for the credential parsers */
/*
 * creds_parse_ini() and the document parsers of creds_doc.c (credential
 * JSON of every kind, STS XML, the SSO token cache, times) must stay
 * inside the exact-size input, terminate, keep every field NUL-terminated
 * within its cap, return only their documented codes, and leave no key
 * behind when they fail. The first input byte picks the parser and, for
 * the INI parser, the profile, so that found and missing profiles are
 * both explored.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "creds_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *f, size_t cap)
{
	if (strnlen(f, cap) == cap)
		abort();
}

static void
fuzz_ini(unsigned sel, const char *buf, size_t len)
{
	static const char *profiles[] = { "default", "dev", "a b", "",
	    "profile dev", "sso-session corp" };
	struct creds_profile p;
	int rc;

	rc = creds_parse_ini(buf, len, profiles[sel % 6], &p);
	check(p.keys.access_key_id, sizeof(p.keys.access_key_id));
	check(p.keys.secret_access_key, sizeof(p.keys.secret_access_key));
	check(p.keys.session_token, sizeof(p.keys.session_token));
	check(p.region, sizeof(p.region));
	check(p.endpoint_url, sizeof(p.endpoint_url));
	check(p.role_arn, sizeof(p.role_arn));
	check(p.source_profile, sizeof(p.source_profile));
	check(p.credential_process, sizeof(p.credential_process));
	check(p.sso_start_url, sizeof(p.sso_start_url));
	check(p.sso_session, sizeof(p.sso_session));
	if ((rc == -EINVAL || rc == -E2BIG) != (p.error_line != 0))
		abort();
	if (rc != 0 && rc != -ENOENT && rc != -EINVAL && rc != -E2BIG)
		abort();
	creds_secret_wipe(&p.keys);
}

static void
check_creds(int rc, const struct cdoc_creds *c)
{
	check(c->keys.access_key_id, sizeof(c->keys.access_key_id));
	check(c->keys.secret_access_key, sizeof(c->keys.secret_access_key));
	check(c->keys.session_token, sizeof(c->keys.session_token));
	check(c->error, sizeof(c->error));
	if (rc == 0 && (c->keys.access_key_id[0] == '\0' ||
	    c->keys.secret_access_key[0] == '\0'))
		abort();
	/* A failure names its reason and hands out no key. */
	if (rc < 0 && (c->error[0] == '\0' || c->keys.access_key_id[0] != '\0' ||
	    c->keys.secret_access_key[0] != '\0'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cdoc_creds c;
	const char *buf;
	size_t len;
	char tok[256], err[CDOC_ERROR_MAX];
	time_t t;
	int rc;

	if (size == 0)
		return 0;
	buf = (const char *)data + 1;
	len = size - 1;
	switch (data[0] % 8) {
	case 0:
	case 1:
		fuzz_ini(data[0] / 8, buf, len);
		break;
	case 2: case 3: case 4: case 5:
		rc = cdoc_parse_json_creds((enum cdoc_kind)(data[0] % 8 - 2), buf,
		    len, &c);
		if (rc != 0 && rc != -EINVAL && rc != -E2BIG)
			abort();
		check_creds(rc, &c);
		break;
	case 6:
		rc = cdoc_parse_sts(buf, len, &c);
		if (rc != 0 && rc != -EINVAL && rc != -EACCES)
			abort();
		check_creds(rc == -EACCES ? -1 : rc, &c);
		break;
	case 7:
		rc = cdoc_parse_sso_cache(buf, len, tok, sizeof(tok), &t, err);
		check(tok, sizeof(tok));
		check(err, sizeof(err));
		if (rc < 0 && tok[0] != '\0')
			abort();
		rc = cdoc_parse_time(buf, len, &t);
		if (rc != 0 && rc != -EINVAL)
			abort();
		break;
	}
	cdoc_creds_wipe(&c);
	return 0;
}
