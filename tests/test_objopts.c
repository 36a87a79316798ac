/* test_objopts.c -- tests uploader/objopts.c: the Content-Type table,
 * option parsing, merging a prefix rule over the global one, and the
 * headers of a PUT. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "objopts.h"

static const char *
header(const struct objopts_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->h[i].name, name) == 0)
			return h->h[i].value;
	return NULL;
}

static void
set_ok(struct objopts *o, const char *name, const char *value)
{
	char err[256] = "";

	assert_int_equal(objopts_set(o, name, value, err, sizeof(err)), 0);
}

static void
content_type_comes_from_the_extension_or_is_octet_stream(void **state)
{
	assert_string_equal(objopts_content_type_for_key("a/b.json"), "application/json");
	assert_string_equal(objopts_content_type_for_key("a/B.JSON"), "application/json");
	assert_string_equal(objopts_content_type_for_key("x.log"), "text/plain; charset=utf-8");
	assert_string_equal(objopts_content_type_for_key("x.tar.gz"), "application/gzip");
	assert_string_equal(objopts_content_type_for_key("logs/2026/a-1"), "application/octet-stream");
	assert_string_equal(objopts_content_type_for_key("a.d/noext"), "application/octet-stream");
	assert_string_equal(objopts_content_type_for_key("a/.hidden"), "application/octet-stream");
	assert_string_equal(objopts_content_type_for_key("a/b."), "application/octet-stream");
	assert_string_equal(objopts_content_type_for_key("a/b.unknown"), "application/octet-stream");
}

static void
bad_values_are_refused_with_the_option_named(void **state)
{
	struct objopts o;
	char err[256];

	memset(&o, 0, sizeof(o));
	assert_int_equal(objopts_set(&o, "storage-class", "FAST", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "storage-class"));
	assert_int_equal(objopts_set(&o, "sse", "rot13", err, sizeof(err)), -EINVAL);
	assert_int_equal(objopts_set(&o, "acl", "everyone", err, sizeof(err)), -EINVAL);
	assert_int_equal(objopts_set(&o, "cache-control", "a\r\nx-amz-acl: public-read", err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(objopts_set(&o, "content-type", "t\xc3\xa9xt", err, sizeof(err)), -EINVAL);
	assert_int_equal(objopts_set(&o, "meta", "no-equals", err, sizeof(err)), -EINVAL);
	assert_int_equal(objopts_set(&o, "meta", "bad name=v", err, sizeof(err)), -EINVAL);
	assert_int_equal(objopts_set(&o, "sse-bucket-key", "maybe", err, sizeof(err)), -EINVAL);
	assert_int_equal(o.set, 0);
}

static void
more_than_ten_tags_are_refused_and_a_repeated_name_replaces(void **state)
{
	struct objopts o;
	char err[256], v[32];

	memset(&o, 0, sizeof(o));
	for (int i = 0; i < OBJOPTS_PAIRS; i++) {
		snprintf(v, sizeof(v), "t%d=%d", i, i);
		set_ok(&o, "tag", v);
	}
	set_ok(&o, "tag", "t3=again");
	assert_int_equal(o.ntags, OBJOPTS_PAIRS);
	assert_string_equal(o.tags[3].value, "again");
	assert_int_equal(objopts_set(&o, "tag", "t10=x", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "more than 10"));
}

static void
kms_key_without_aws_kms_is_refused(void **state)
{
	struct objopts r[2];
	char err[256];

	memset(r, 0, sizeof(r));
	set_ok(&r[0], "sse-kms-key-id", "alias/logs");
	assert_int_equal(objopts_validate(r, 1, err, sizeof(err)), -EINVAL);
	set_ok(&r[0], "sse", "aws:kms");
	assert_int_equal(objopts_validate(r, 1, err, sizeof(err)), 0);
	/* A prefix that switches to AES256 keeps the global key id: refused. */
	snprintf(r[1].prefix, sizeof(r[1].prefix), "p/");
	set_ok(&r[1], "sse", "AES256");
	assert_int_equal(objopts_validate(r, 2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[prefix p/]"));
}

static void
the_longest_prefix_wins_field_by_field(void **state)
{
	struct objopts r[3];
	struct objopts_headers h;

	memset(r, 0, sizeof(r));
	set_ok(&r[0], "cache-control", "max-age=60");
	set_ok(&r[0], "meta", "team=platform");
	set_ok(&r[0], "storage-class", "STANDARD_IA");
	snprintf(r[1].prefix, sizeof(r[1].prefix), "logs/");
	set_ok(&r[1], "content-encoding", "gzip");
	snprintf(r[2].prefix, sizeof(r[2].prefix), "logs/raw/");
	set_ok(&r[2], "storage-class", "GLACIER_IR");
	set_ok(&r[2], "meta", "source=raw");

	assert_int_equal(objopts_headers(r, 3, "data/x.json", &h), 0);
	assert_string_equal(header(&h, "Content-Type"), "application/json");
	assert_string_equal(header(&h, "Cache-Control"), "max-age=60");
	assert_string_equal(header(&h, "x-amz-storage-class"), "STANDARD_IA");
	assert_string_equal(header(&h, "x-amz-meta-team"), "platform");
	assert_null(header(&h, "Content-Encoding"));

	assert_int_equal(objopts_headers(r, 3, "logs/a", &h), 0);
	assert_string_equal(header(&h, "Content-Encoding"), "gzip");
	assert_string_equal(header(&h, "x-amz-storage-class"), "STANDARD_IA");

	assert_int_equal(objopts_headers(r, 3, "logs/raw/a.txt", &h), 0);
	assert_string_equal(header(&h, "x-amz-storage-class"), "GLACIER_IR");
	assert_string_equal(header(&h, "Cache-Control"), "max-age=60");
	assert_null(header(&h, "Content-Encoding")); /* not inherited from logs/ */
	assert_string_equal(header(&h, "x-amz-meta-source"), "raw");
	assert_null(header(&h, "x-amz-meta-team")); /* the rule's metadata replaces */
}

static void
tags_are_url_encoded_and_sse_kms_sends_key_and_bucket_key(void **state)
{
	struct objopts r[1];
	struct objopts_headers h;

	memset(r, 0, sizeof(r));
	set_ok(&r[0], "tag", "env=prod & more");
	set_ok(&r[0], "tag", "path=a/b=c");
	set_ok(&r[0], "sse", "aws:kms");
	set_ok(&r[0], "sse-kms-key-id", "alias/logs");
	set_ok(&r[0], "sse-bucket-key", "true");
	set_ok(&r[0], "acl", "bucket-owner-full-control");
	assert_int_equal(objopts_headers(r, 1, "k", &h), 0);
	assert_string_equal(header(&h, "x-amz-tagging"), "env=prod%20%26%20more&path=a%2Fb%3Dc");
	assert_string_equal(header(&h, "x-amz-server-side-encryption"), "aws:kms");
	assert_string_equal(header(&h, "x-amz-server-side-encryption-aws-kms-key-id"), "alias/logs");
	assert_string_equal(header(&h, "x-amz-server-side-encryption-bucket-key-enabled"), "true");
	assert_string_equal(header(&h, "x-amz-acl"), "bucket-owner-full-control");
	assert_string_equal(header(&h, "Content-Type"), "application/octet-stream");
}

static void
no_options_send_only_the_content_type(void **state)
{
	struct objopts r[1];
	struct objopts_headers h;

	memset(r, 0, sizeof(r));
	assert_int_equal(objopts_headers(r, 1, "a.csv", &h), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(header(&h, "Content-Type"), "text/csv");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(content_type_comes_from_the_extension_or_is_octet_stream),
		cmocka_unit_test(bad_values_are_refused_with_the_option_named),
		cmocka_unit_test(more_than_ten_tags_are_refused_and_a_repeated_name_replaces),
		cmocka_unit_test(kms_key_without_aws_kms_is_refused),
		cmocka_unit_test(the_longest_prefix_wins_field_by_field),
		cmocka_unit_test(tags_are_url_encoded_and_sse_kms_sends_key_and_bucket_key),
		cmocka_unit_test(no_options_send_only_the_content_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
