/* fuzz_s3err.c -- libFuzzer harness for the S3 XML error-body reader */
/*
 * The body comes from the network, so s3err_parse() must stay inside the
 * len bytes it is given (the input is an exact-size buffer, so ASan flags
 * any overrun), terminate, and leave NUL-terminated fields without control
 * characters. The classifier is fed the parsed code as well.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_field(const char *f, size_t cap)
{
	size_t n = strnlen(f, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)f[i] < 0x20 || f[i] == 0x7f)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3err_body b;
	struct s3err_verdict v;
	int rc;

	rc = s3err_parse(data, size, &b);
	check_field(b.code, sizeof(b.code));
	check_field(b.message, sizeof(b.message));
	check_field(b.request_id, sizeof(b.request_id));
	if (rc == 0 && b.code[0] == '\0')
		abort();
	v = s3err_classify(0, size > 0 ? 400 + data[0] % 200 : 0, b.code);
	if (v.reason == NULL)
		abort();
	return 0;
}
