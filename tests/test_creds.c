/* test_creds.c -- tests uploader/creds.c: sources, INI parsing, reload */
/*
 * Each test runs in a fresh temporary HOME with every AWS_* variable unset
 * and the log captured into a file, so the tests can grep the log for
 * secrets (there must be none). IMDS is disabled, so no test reaches a
 * real metadata service; the network sources are tested against the
 * stand-ins in tests/it/creds_*.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "creds.h"
#include "creds_fetch.h"
#include "log.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
#define SECRET2 "zzalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
#define TOKEN "FwoGZXIvYXdzEXAMPLETOKENvalue+/=="

struct fixture {
	char home[256];
	char file[300];
	char log[300];
	int logfd;
};

static const char *aws_vars[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",
	"AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
	"AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_STS",
	"AWS_ENDPOINT_URL_SSO",
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->home, sizeof(f->home), "/tmp/test_creds.XXXXXX");
	if (mkdtemp(f->home) == NULL)
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/.aws/credentials", f->home);
	snprintf(f->log, sizeof(f->log), "%s/log", f->home);
	for (size_t i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
	setenv("HOME", f->home, 1);
	/* No test may reach a real metadata service. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	f->logfd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (f->logfd < 0)
		return -1;
	log_set_fd(f->logfd);
	log_set_level(LOG_LEVEL_DEBUG);
	*state = f;
	return 0;
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Every test ends by checking that no secret reached the log. */
static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[1024];
	char *log = slurp(f->log);
	int leaked = strstr(log, SECRET) != NULL || strstr(log, SECRET2) != NULL ||
	    strstr(log, TOKEN) != NULL;

	free(log);
	log_set_fd(2);
	close(f->logfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->home);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return leaked ? -1 : 0;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	char dir[300];
	char *slash;
	FILE *fp;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	mkdir(dir, 0700);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static bool
log_contains(struct fixture *f, const char *needle)
{
	char *log = slurp(f->log);
	bool found = strstr(log, needle) != NULL;

	free(log);
	return found;
}

/* ---------------------------------------------------------------- sources */

static void
env_keys_take_precedence_over_file(void **state)
{
	struct fixture *f = *state;
	struct creds_secret s = { 0 };
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id = AKIAFILEFILEFILE\n"
	    "aws_secret_access_key = " SECRET2 "\nregion = eu-west-3\n", 0600);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", TOKEN, 1);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.access_key_id, "AKIAENVENVENVENV");
	assert_string_equal(s.secret_access_key, SECRET);
	assert_string_equal(s.session_token, TOKEN);
	assert_string_equal(creds_source(c), "env");
	/* The file still supplies the region when nothing else does. */
	assert_string_equal(creds_region(c), "eu-west-3");
	/* The environment cannot change: reload is a no-op. */
	assert_int_equal(creds_reload(c, true), 0);
	creds_secret_wipe(&s);
	creds_free(c);
}

/* creds_get() wipes the tail of the keys it overwrites: into arrays that
 * hold no string at all (here no NUL anywhere), it must neither read nor
 * wipe past them. Under ASan an overrun is a report. */
static void
get_into_arrays_without_a_string_stays_inside_them(void **state)
{
	struct creds_secret s;
	struct creds *c;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	unsetenv("AWS_SESSION_TOKEN");
	c = creds_new(NULL);
	assert_non_null(c);
	memset(&s, 'x', sizeof(s)); /* generation too: no NUL up to its end */
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.access_key_id, "AKIAENVENVENVENV");
	assert_string_equal(s.secret_access_key, SECRET);
	assert_string_equal(s.session_token, "");
	/* The old bytes past the new key are wiped, up to the array's end. */
	for (size_t i = strlen(SECRET) + 1; i < sizeof(s.secret_access_key); i++)
		assert_int_equal(s.secret_access_key[i], 0);
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
half_set_environment_is_refused(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENV", 1);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
}

static void
no_credentials_anywhere_is_enoent(void **state)
{
	struct fixture *f = *state;

	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, ENOENT);
	assert_true(log_contains(f, "no credentials"));
}

static void
file_profile_follows_aws_profile(void **state)
{
	struct fixture *f = *state;
	struct creds_secret s = { 0 };
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id=AKIADEFAULTDEFAULT\n"
	    "aws_secret_access_key=" SECRET2 "\n\n[dev]\n"
	    "aws_access_key_id=AKIADEVDEVDEVDEV\naws_secret_access_key=" SECRET
	    "\naws_session_token=" TOKEN "\n", 0600);
	setenv("AWS_PROFILE", "dev", 1);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.access_key_id, "AKIADEVDEVDEVDEV");
	assert_string_equal(s.secret_access_key, SECRET);
	assert_string_equal(s.session_token, TOKEN);
	assert_string_equal(creds_source(c), "profile:dev");
	assert_string_equal(creds_profile(c), "dev");
	assert_int_equal(s.generation, 1);
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
shared_credentials_file_variable_and_tilde(void **state)
{
	struct fixture *f = *state;
	char path[400];
	struct creds *c;

	snprintf(path, sizeof(path), "%s/elsewhere/creds", f->home);
	write_file(path, "[default]\naws_access_key_id=AKIAELSEWHERE0000\n"
	    "aws_secret_access_key=" SECRET "\n", 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere/creds", 1);
	c = creds_new(NULL);
	assert_non_null(c);
	creds_free(c);
	/* The option beats the variable. */
	errno = 0;
	assert_null(creds_new(&(struct creds_options){ .file = "~/missing" }));
	assert_int_equal(errno, ENOENT);
}

static void
region_and_endpoint_follow_aws_order(void **state)
{
	struct fixture *f = *state;
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id=AKIAORDERORDER00\n"
	    "aws_secret_access_key=" SECRET "\nregion=ap-south-1\n"
	    "endpoint_url=http://profile.example\n", 0600);
	c = creds_new(NULL);
	assert_string_equal(creds_region(c), "ap-south-1");
	assert_string_equal(creds_endpoint(c), "http://profile.example");
	creds_free(c);

	setenv("AWS_DEFAULT_REGION", "eu-north-1", 1);
	setenv("AWS_ENDPOINT_URL", "http://generic.example", 1);
	c = creds_new(NULL);
	assert_string_equal(creds_region(c), "eu-north-1");
	assert_string_equal(creds_endpoint(c), "http://generic.example");
	creds_free(c);

	setenv("AWS_REGION", "us-west-2", 1);
	setenv("AWS_ENDPOINT_URL_S3", "http://s3.example", 1);
	c = creds_new(NULL);
	assert_string_equal(creds_region(c), "us-west-2");
	assert_string_equal(creds_endpoint(c), "http://s3.example");
	creds_free(c);

	c = creds_new(&(struct creds_options){ .region = "sa-east-1",
	    .endpoint = "https://flag.example" });
	assert_string_equal(creds_region(c), "sa-east-1");
	assert_string_equal(creds_endpoint(c), "https://flag.example");
	creds_free(c);
}

static void
defaults_are_us_east_1_and_aws_endpoint(void **state)
{
	struct creds *c;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_string_equal(creds_region(c), "us-east-1");
	assert_null(creds_endpoint(c));
	assert_string_equal(creds_profile(c), "default");
	creds_free(c);
}

/* Writes an executable credential_process script. */
static void
write_script(struct fixture *f, const char *name, const char *body,
    char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", f->home, name);
	write_file(path, body, 0700);
}

static void
config_file_profile_with_static_keys(void **state)
{
	struct fixture *f = *state;
	char cfg[400];
	struct creds_secret s = { 0 };
	struct creds *c;

	snprintf(cfg, sizeof(cfg), "%s/.aws/config", f->home);
	write_file(cfg, "[profile dev]\naws_access_key_id = AKIACONFIGCONFIG\n"
	    "aws_secret_access_key = " SECRET "\nregion = eu-west-2\n", 0600);
	setenv("AWS_PROFILE", "dev", 1);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.access_key_id, "AKIACONFIGCONFIG");
	assert_string_equal(creds_source(c), "profile:dev");
	assert_string_equal(creds_region(c), "eu-west-2");
	assert_int_equal(creds_expiration(c), 0);
	creds_free(c);
	/* The credentials file's values win over the config file's. */
	write_file(f->file, "[dev]\naws_access_key_id = AKIACREDSCREDS00\n"
	    "aws_secret_access_key = " SECRET2 "\n", 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.access_key_id, "AKIACREDSCREDS00");
	assert_string_equal(creds_region(c), "eu-west-2");
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
profile_of_settings_only_lets_the_chain_go_on(void **state)
{
	struct fixture *f = *state;
	char cfg[400];
	struct creds *c;

	snprintf(cfg, sizeof(cfg), "%s/.aws/config", f->home);
	write_file(cfg, "[default]\nregion = eu-central-1\n", 0644);
	/* On to ECS: nothing listens on port 1, which names it. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c", 1);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EIO);
	assert_true(log_contains(f, "source=ecs"));
	assert_false(log_contains(f, "lacks"));
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	/* Nothing further: the usual advice, not a complaint about it. */
	assert_null(creds_new(NULL));
	assert_int_equal(errno, ENOENT);
	assert_true(log_contains(f, "no credentials"));
	/* A half-configured profile is still refused by name. */
	write_file(cfg, "[default]\naws_access_key_id = AKIAHALFHALFHALF\n", 0644);
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(log_contains(f, "lacks aws_access_key_id or"));
	/* And the region of the settings-only profile applies to env keys. */
	write_file(cfg, "[default]\nregion = eu-central-1\n", 0644);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_string_equal(creds_region(c), "eu-central-1");
	creds_free(c);
}

static void
missing_named_profile_is_enoent_naming_both_files(void **state)
{
	struct fixture *f = *state;

	setenv("AWS_PROFILE", "nosuch", 1);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, ENOENT);
	assert_true(log_contains(f, "profile [nosuch] not found"));
	assert_true(log_contains(f, "/.aws/config"));
}

static void
credential_process_gives_keys_and_expiration(void **state)
{
	struct fixture *f = *state;
	char script[400], text[1200];
	struct creds_secret s = { 0 };
	struct creds *c;

	write_script(f, "proc.sh", "#!/bin/sh\ncat <<'J'\n{\"Version\": 1, "
	    "\"AccessKeyId\": \"AKIAPROCESSPROC1\", \"SecretAccessKey\": \""
	    SECRET "\", \"SessionToken\": \"" TOKEN "\", \"Expiration\": "
	    "\"2999-01-01T00:00:00Z\"}\nJ\n", script, sizeof(script));
	snprintf(text, sizeof(text), "[default]\ncredential_process = %s\n",
	    script);
	write_file(f->file, text, 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_string_equal(creds_source(c), "process");
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.access_key_id, "AKIAPROCESSPROC1");
	assert_string_equal(s.secret_access_key, SECRET);
	assert_string_equal(s.session_token, TOKEN);
	assert_int_equal(creds_expiration(c), 32472144000LL);
	assert_false(creds_expired(c, text, sizeof(text)));
	/* A forced reload (S3 said ExpiredToken) asks the refresher at
	 * once, long before the keys are due, and returns without waiting. */
	assert_int_equal(creds_reload(c, true), 2);
	for (int i = 0; i < 300 && creds_generation(c) < 2; i++)
		usleep(100 * 1000);
	assert_int_equal(creds_generation(c), 2);
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
credential_process_failures_are_refused_with_the_reason(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *body;
		int err;
		const char *logged;
	} cases[] = {
		{ "#!/bin/sh\nexit 1\n", ECHILD,
		  "exited with status 1" },
		{ "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": '\n",
		  EINVAL, "malformed" },
		{ "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"A\", "
		  "\"SecretAccessKey\": \"B\"}'\n", EINVAL, "Version 1" },
		{ "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": "
		  "\"AKIAEXPIREDEXPI1\", \"SecretAccessKey\": \"B\", "
		  "\"Expiration\": \"2001-01-01T00:00:00Z\"}'\n", EKEYEXPIRED,
		  "already expired" },
	};
	char script[400], text[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_script(f, "bad.sh", cases[i].body, script, sizeof(script));
		snprintf(text, sizeof(text), "[default]\ncredential_process = "
		    "%s\n", script);
		write_file(f->file, text, 0600);
		errno = 0;
		assert_null(creds_new(NULL));
		assert_int_equal(errno, cases[i].err);
		assert_true(log_contains(f, cases[i].logged));
	}
}

/* Keys that expire soon are refreshed ahead of time by the refresher
 * while creds_get() keeps answering; once the process starts failing,
 * the keys stay until they expire, and then creds_expired() says why. */
static void
short_lived_keys_are_refreshed_then_expire_when_refresh_fails(void **state)
{
	struct fixture *f = *state;
	char script[400], text[1400], why[512];
	struct creds_secret s = { 0 };
	struct creds *c;
	uint64_t gen;
	int i;

	/* Each run hands out new keys that live 4 s, until the file "stop"
	 * exists; then it fails. */
	snprintf(text, sizeof(text), "#!/bin/sh\n[ -e %s/stop ] && exit 3\n"
	    "n=$(cat %s/n 2>/dev/null || echo 0); n=$((n + 1)); "
	    "echo $n > %s/n\nexp=$(date -u -d @$(($(date +%%s) + 4)) "
	    "+%%Y-%%m-%%dT%%H:%%M:%%SZ)\nprintf '{\"Version\": 1, "
	    "\"AccessKeyId\": \"AKIAREFRESH%%05d\", \"SecretAccessKey\": \"%s\", "
	    "\"Expiration\": \"%%s\"}' $n $exp\n", f->home, f->home, f->home,
	    SECRET);
	write_script(f, "short.sh", text, script, sizeof(script));
	snprintf(text, sizeof(text), "[default]\ncredential_process = %s\n",
	    script);
	write_file(f->file, text, 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	gen = creds_generation(c);
	/* Due at half life (2 s); allow a loaded machine a lot more. */
	for (i = 0; i < 300 && creds_generation(c) == gen; i++)
		usleep(100 * 1000);
	assert_true(creds_generation(c) > gen);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_not_equal(s.access_key_id, "AKIAREFRESH00001");
	assert_true(log_contains(f, "credentials refreshed"));

	snprintf(text, sizeof(text), "%s/stop", f->home);
	write_file(text, "", 0600);
	for (i = 0; i < 300 && !creds_expired(c, why, sizeof(why)); i++)
		usleep(100 * 1000);
	assert_true(creds_expired(c, why, sizeof(why)));
	assert_non_null(strstr(why, "ExpiredToken"));
	assert_non_null(strstr(why, "exited with status 3"));
	assert_true(log_contains(f, "credentials refresh failed"));
	/* The last keys are still handed out: the caller decides. */
	assert_int_equal(creds_get(c, &s), 0);
	assert_non_null(strstr(s.access_key_id, "AKIAREFRESH"));
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
role_profiles_without_a_valid_source_are_refused(void **state)
{
	struct fixture *f = *state;
	char cfg[400];

	snprintf(cfg, sizeof(cfg), "%s/.aws/config", f->home);
	write_file(cfg, "[default]\nrole_arn = arn:aws:iam::1:role/r\n", 0600);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(log_contains(f, "neither source_profile"));

	write_file(cfg, "[default]\nrole_arn = arn:aws:iam::1:role/r\n"
	    "source_profile = a\n[profile a]\nrole_arn = arn:aws:iam::1:role/a\n"
	    "source_profile = b\n[profile b]\nrole_arn = arn:aws:iam::1:role/b\n"
	    "source_profile = a\n", 0600);
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(log_contains(f, "loop"));

	write_file(cfg, "[default]\nrole_arn = arn:aws:iam::1:role/r\n"
	    "credential_source = Environment\n", 0600);
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(log_contains(f, "credential_source = Environment"));
}

static void
sso_profile_without_a_login_says_run_aws_sso_login(void **state)
{
	struct fixture *f = *state;
	char cfg[400];

	snprintf(cfg, sizeof(cfg), "%s/.aws/config", f->home);
	write_file(cfg, "[default]\nsso_session = corp\nsso_account_id = 1\n"
	    "sso_role_name = R\n[sso-session corp]\nsso_start_url = "
	    "https://x.awsapps.com/start\nsso_region = eu-west-1\n", 0600);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, ENOENT);
	assert_true(log_contains(f, "aws sso login"));
	/* The cache is named after the SHA-1 of the session name. */
	assert_true(log_contains(f,
	    "/.aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json"));

	write_file(cfg, "[default]\nsso_account_id = 1\nsso_role_name = R\n"
	    "sso_session = nosuch\n", 0600);
	assert_null(creds_new(NULL));
	assert_true(log_contains(f, "[sso-session nosuch]"));
}

static void
ecs_full_uri_must_be_https_or_a_local_agent(void **state)
{
	struct fixture *f = *state;

	assert_true(cfetch_ecs_url_allowed("https://creds.example/x"));
	assert_true(cfetch_ecs_url_allowed("http://127.0.0.1:8080/creds"));
	assert_true(cfetch_ecs_url_allowed("http://169.254.170.2/v2/x"));
	assert_true(cfetch_ecs_url_allowed("http://[fd00:ec2::23]/x"));
	assert_true(cfetch_ecs_url_allowed("http://localhost:1/x"));
	assert_false(cfetch_ecs_url_allowed("http://evil.example/x"));
	assert_false(cfetch_ecs_url_allowed("http://127.0.0.1.evil.example/"));
	assert_false(cfetch_ecs_url_allowed("ftp://127.0.0.1/x"));
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example/c", 1);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(log_contains(f, "neither HTTPS"));
}

static void
unreachable_ecs_agent_is_an_error_naming_it(void **state)
{
	struct fixture *f = *state;

	/* Port 1 on loopback: nothing listens, the connection is refused. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c", 1);
	errno = 0;
	assert_null(creds_new(NULL));
	assert_int_equal(errno, EIO);
	assert_true(log_contains(f, "source=ecs"));
	assert_true(log_contains(f, "127.0.0.1:1"));
}

static void
refresh_is_due_15_minutes_early_or_at_half_life(void **state)
{
	(void)state;
	assert_int_equal(creds_refresh_due(1000, 0), INT64_MAX);
	/* An hour-long session: 15 minutes before the end. */
	assert_int_equal(creds_refresh_due(0, 3600), 3600 - 900);
	/* Two minutes: at one minute. */
	assert_int_equal(creds_refresh_due(100, 220), 160);
	/* Already expired when obtained: at least a second on. */
	assert_int_equal(creds_refresh_due(100, 100), 99);
	assert_int_equal(creds_retry_delay(0, 0, 0), 1);
	assert_int_equal(creds_retry_delay(3, 0, 0), 8);
	assert_int_equal(creds_retry_delay(20, 0, 0), 60);
	/* 40 s left: no wait longer than 10 s. */
	assert_int_equal(creds_retry_delay(20, 0, 40), 10);
	assert_int_equal(creds_retry_delay(20, 0, 2), 1);
	/* Expired: every 5 s at most. */
	assert_int_equal(creds_retry_delay(20, 100, 50), 5);
	assert_int_equal(creds_retry_delay(1, 100, 50), 2);
}

static void
world_readable_file_warns(void **state)
{
	struct fixture *f = *state;
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id=AKIAMODEMODEMODE\n"
	    "aws_secret_access_key=" SECRET "\n", 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	creds_free(c);
	assert_false(log_contains(f, "accessible by group or others"));
	assert_int_equal(chmod(f->file, 0644), 0);
	c = creds_new(NULL);
	assert_non_null(c);
	creds_free(c);
	assert_true(log_contains(f, "accessible by group or others (mode 0644)"));
}

/* ---------------------------------------------------------------- reload */

static void
reload_picks_up_a_changed_file(void **state)
{
	struct fixture *f = *state;
	struct creds_secret s = { 0 };
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id=AKIARELOADRELOAD\n"
	    "aws_secret_access_key=" SECRET "\n", 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	assert_int_equal(creds_reload(c, false), 0);
	/* A rename over the old file, like editors and credential helpers
	 * do: a new inode. */
	{
		char tmp[400];

		snprintf(tmp, sizeof(tmp), "%s.new", f->file);
		write_file(tmp, "[default]\naws_access_key_id=AKIARELOADRELOAD\n"
		    "aws_secret_access_key=" SECRET2 "\naws_session_token="
		    TOKEN "\n", 0600);
		assert_int_equal(rename(tmp, f->file), 0);
	}
	assert_int_equal(creds_reload(c, false), 1);
	assert_int_equal(creds_generation(c), 2);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.secret_access_key, SECRET2);
	assert_string_equal(s.session_token, TOKEN);
	assert_int_equal(creds_reload(c, false), 0);
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
reload_forced_rereads_a_file_that_looks_unchanged(void **state)
{
	struct fixture *f = *state;
	struct timespec times[2];
	struct creds_secret s = { 0 };
	struct creds *c;
	struct stat st;
	int fd;

	write_file(f->file, "[default]\naws_access_key_id=AKIAFORCEFORCE00\n"
	    "aws_secret_access_key=" SECRET "\n", 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	/* Same inode, same size, same mtime: only a forced reload (after
	 * ExpiredToken) can notice. */
	assert_int_equal(stat(f->file, &st), 0);
	fd = open(f->file, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "zz", 2, (off_t)(strstr(
	    "[default]\naws_access_key_id=AKIAFORCEFORCE00\n"
	    "aws_secret_access_key=" SECRET "\n", SECRET) -
	    "[default]\naws_access_key_id=AKIAFORCEFORCE00\n"
	    "aws_secret_access_key=" SECRET "\n")), 2);
	close(fd);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, f->file, times, 0), 0);

	assert_int_equal(creds_reload(c, false), 0);
	assert_int_equal(creds_reload(c, true), 1);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.secret_access_key, SECRET2);
	creds_secret_wipe(&s);
	creds_free(c);
}

static void
reload_keeps_old_keys_when_file_breaks(void **state)
{
	struct fixture *f = *state;
	struct creds_secret s = { 0 };
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id=AKIABREAKBREAK00\n"
	    "aws_secret_access_key=" SECRET "\n", 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	write_file(f->file, "[default\nthis is not ini\n", 0600);
	assert_int_equal(creds_reload(c, true), -EINVAL);
	unlink(f->file);
	assert_int_equal(creds_reload(c, false), -ENOENT);
	assert_int_equal(creds_get(c, &s), 0);
	assert_string_equal(s.secret_access_key, SECRET);
	assert_int_equal(s.generation, 1);
	assert_true(log_contains(f, "keeping the current keys"));
	creds_secret_wipe(&s);
	creds_free(c);
}

static int
count(struct fixture *f, const char *needle)
{
	char *log = slurp(f->log), *p = log;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p++;
	}
	free(log);
	return n;
}

static void
reload_reports_a_broken_or_missing_file_once(void **state)
{
	struct fixture *f = *state;
	struct creds *c;

	write_file(f->file, "[default]\naws_access_key_id=AKIAONCEONCEONCE\n"
	    "aws_secret_access_key=" SECRET "\n", 0600);
	c = creds_new(NULL);
	assert_non_null(c);
	write_file(f->file, "[default\n", 0600);
	assert_int_equal(creds_reload(c, false), -EINVAL);
	assert_int_equal(creds_reload(c, false), 0);
	assert_int_equal(creds_reload(c, false), 0);
	assert_int_equal(count(f, "not reloaded"), 1);
	unlink(f->file);
	assert_int_equal(creds_reload(c, false), -ENOENT);
	assert_int_equal(creds_reload(c, false), -ENOENT);
	assert_int_equal(count(f, "cannot stat"), 1);
	write_file(f->file, "[default]\naws_access_key_id=AKIAONCEONCEONCE\n"
	    "aws_secret_access_key=" SECRET2 "\n", 0600);
	assert_int_equal(creds_reload(c, false), 1);
	creds_free(c);
}

/* ---------------------------------------------------------------- parser */

static int
parse(const char *text, const char *profile, struct creds_profile *p)
{
	size_t n = strlen(text);
	char *copy = malloc(n ? n : 1);	/* exact size: ASan sees overruns */
	int rc;

	assert_non_null(copy);
	memcpy(copy, text, n);
	rc = creds_parse_ini(copy, n, profile, p);
	free(copy);
	return rc;
}

static void
parse_handles_comments_whitespace_crlf_and_case(void **state)
{
	struct creds_profile p;

	(void)state;
	assert_int_equal(parse("\xef\xbb\xbf# comment\r\n; another\r\n"
	    "[other]\r\naws_access_key_id = NO\r\n"
	    "[  dev  ]  \r\n"
	    "\tAWS_Access_Key_ID   =   AKIA1  \r\n"
	    "aws_secret_access_key: s#not-a-comment\r\n"
	    "s3 =\r\n    max_concurrent_requests = 20\r\n"
	    "region=eu-west-1\r\n"
	    "aws_access_key_id = AKIA2\r\n"
	    "[another]\r\naws_access_key_id = NO2", "dev", &p), 0);
	assert_string_equal(p.keys.access_key_id, "AKIA2");
	assert_string_equal(p.keys.secret_access_key, "s#not-a-comment");
	assert_string_equal(p.region, "eu-west-1");
	assert_int_equal(p.error_line, 0);
}

static void
parse_reports_missing_profile(void **state)
{
	struct creds_profile p;

	(void)state;
	assert_int_equal(parse("[default]\na=b\n", "dev", &p), -ENOENT);
	assert_int_equal(parse("", "dev", &p), -ENOENT);
	assert_int_equal(parse("# only\n\n", "default", &p), -ENOENT);
}

static void
parse_reports_syntax_errors_with_line_numbers(void **state)
{
	struct creds_profile p;

	(void)state;
	assert_int_equal(parse("[default]\nno separator here\n", "default", &p),
	    -EINVAL);
	assert_int_equal(p.error_line, 2);
	assert_int_equal(parse("key=value before any section\n", "default", &p),
	    -EINVAL);
	assert_int_equal(p.error_line, 1);
	assert_int_equal(parse("\n\n[default\n", "default", &p), -EINVAL);
	assert_int_equal(p.error_line, 3);
	assert_int_equal(parse("[default]\n= value\n", "default", &p), -EINVAL);
	/* Indented lines continue the previous value, as in configparser. */
	assert_int_equal(parse("[default]\na=b\n  [dev]\n", "dev", &p), -ENOENT);
	assert_int_equal(parse("[default]\na=b\0c\n", "default", &p), 0);
	assert_int_equal(creds_parse_ini("[default]\na=b\0c\n", 16, "default", &p),
	    -EINVAL);
}

static void
parse_refuses_overlong_lines_and_values(void **state)
{
	struct creds_profile p;
	size_t n = CREDS_LINE_MAX + 64;
	char *text = malloc(n + 1);
	int o;

	(void)state;
	assert_non_null(text);
	o = snprintf(text, n + 1, "[default]\naws_session_token=");
	memset(text + o, 'x', n - (size_t)o);
	text[n] = '\0';
	assert_int_equal(parse(text, "default", &p), -E2BIG);
	assert_int_equal(p.error_line, 2);
	/* A line that fits but a value that does not fit its field. */
	text[o + CREDS_SECRET_MAX] = '\0';
	memcpy(text + 10, "aws_secret_access_key=", 22);
	o = 10 + 22;
	memset(text + o, 'y', CREDS_SECRET_MAX);
	text[o + CREDS_SECRET_MAX] = '\0';
	assert_int_equal(parse(text, "default", &p), -E2BIG);
	free(text);
}

static void
mask_key_id_shows_only_the_ends(void **state)
{
	char out[32];

	(void)state;
	creds_mask_key_id("AKIAIOSFODNN7EXAMPLE", out, sizeof(out));
	assert_string_equal(out, "AKIA...MPLE");
	creds_mask_key_id("short", out, sizeof(out));
	assert_string_equal(out, "****");
}

static void
secrets_never_reach_the_log(void **state)
{
	struct fixture *f = *state;
	struct creds *c;

	/* Every path that logs: load, warn on mode, reload, failures. */
	write_file(f->file, "[default]\naws_access_key_id=AKIALOGLOGLOGLOG\n"
	    "aws_secret_access_key=" SECRET "\naws_session_token=" TOKEN "\n",
	    0644);
	c = creds_new(NULL);
	assert_non_null(c);
	write_file(f->file, "[default]\naws_access_key_id=AKIALOGLOGLOGLOG\n"
	    "aws_secret_access_key " SECRET "\n", 0644);
	assert_int_equal(creds_reload(c, true), -EINVAL);
	write_file(f->file, "[default]\naws_access_key_id=AKIALOGLOGLOGLOG\n"
	    "aws_secret_access_key=" SECRET2 "\n", 0644);
	assert_int_equal(creds_reload(c, true), 1);
	creds_free(c);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", TOKEN, 1);
	assert_null(creds_new(NULL));
	assert_true(log_contains(f, "AKIA...GLOG"));
	assert_false(log_contains(f, SECRET));
	assert_false(log_contains(f, SECRET2));
	assert_false(log_contains(f, TOKEN));
	assert_false(log_contains(f, "zzalrXUtnFEMI"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(env_keys_take_precedence_over_file),
		T(get_into_arrays_without_a_string_stays_inside_them),
		T(half_set_environment_is_refused),
		T(no_credentials_anywhere_is_enoent),
		T(file_profile_follows_aws_profile),
		T(shared_credentials_file_variable_and_tilde),
		T(region_and_endpoint_follow_aws_order),
		T(defaults_are_us_east_1_and_aws_endpoint),
		T(config_file_profile_with_static_keys),
		T(profile_of_settings_only_lets_the_chain_go_on),
		T(missing_named_profile_is_enoent_naming_both_files),
		T(credential_process_gives_keys_and_expiration),
		T(credential_process_failures_are_refused_with_the_reason),
		T(short_lived_keys_are_refreshed_then_expire_when_refresh_fails),
		T(role_profiles_without_a_valid_source_are_refused),
		T(sso_profile_without_a_login_says_run_aws_sso_login),
		T(ecs_full_uri_must_be_https_or_a_local_agent),
		T(unreachable_ecs_agent_is_an_error_naming_it),
		T(refresh_is_due_15_minutes_early_or_at_half_life),
		T(world_readable_file_warns),
		T(reload_picks_up_a_changed_file),
		T(reload_forced_rereads_a_file_that_looks_unchanged),
		T(reload_keeps_old_keys_when_file_breaks),
		T(reload_reports_a_broken_or_missing_file_once),
		T(parse_handles_comments_whitespace_crlf_and_case),
		T(parse_reports_missing_profile),
		T(parse_reports_syntax_errors_with_line_numbers),
		T(parse_refuses_overlong_lines_and_values),
		T(mask_key_id_shows_only_the_ends),
		T(secrets_never_reach_the_log),
	};

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
