/* replay.c -- s3ring-uploader --replay DIR: upload the dead-letter spool's
 * messages, removing each file once S3 confirmed it. */
#include "uploader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "daemon.h"
#include "log.h"
#include "spool.h"

int
uploader_replay(const struct config *cfg)
{
	struct uploader u;
	struct s3_client *s3 = NULL;
	DIR *d;
	struct dirent *de;
	unsigned sent = 0, failed = 0;
	uint8_t *buf = NULL;
	size_t cap = (size_t)RING_MAX_CAPACITY / 8 + 4096;
	struct objopts_headers *hdrs = NULL;

	if (uploader_init(&u, cfg) < 0)
		return 1;
	cfg = u.cfg;
	if (s3_global_init() != 0 || uploader_make_clients(&u) < 0) {
		free(u.live);
		return 1;
	}
	s3 = s3_client_new(&u.s3cfg, u.creds);
	buf = malloc(cap);
	hdrs = malloc(sizeof(*hdrs));
	d = opendir(cfg->replay);
	if (s3 == NULL || buf == NULL || hdrs == NULL || d == NULL) {
		fprintf(stderr, "s3ring-uploader: replay %s: %s\n", cfg->replay, strerror(errno));
		failed = 1;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct spool_msg m;
		char path[4096 + 256], key[KEY_BUF], why[512];
		size_t n = strlen(de->d_name), len = 0;
		ssize_t got;
		int fd, rc = -1;

		if (de->d_name[0] == '.' || n <= strlen(SPOOL_SUFFIX) ||
		    strcmp(de->d_name + n - strlen(SPOOL_SUFFIX), SPOOL_SUFFIX) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cfg->replay, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			while ((got = read(fd, buf + len, cap - len)) > 0)
				len += (size_t)got;
			close(fd);
		}
		if (fd < 0 || len == cap || spool_parse(buf, len, &m) != 0) {
			fprintf(stderr, "s3ring-uploader: %s: not a readable spool file, kept\n", path);
			failed++;
			continue;
		}
		snprintf(key, sizeof(key), "%s%.*s", cfg->key_prefix, (int)m.key_len, m.key);
		if (objopts_headers(cfg->obj, cfg->nobj, m.key, hdrs) < 0) {
			fprintf(stderr, "s3ring-uploader: %s: the object options do not fit a request, kept\n",
			    path);
			failed++;
			continue;
		}
		for (unsigned attempt = 0; attempt < cfg->max_attempts; attempt++) {
			rc = s3_prepare_put_headers(s3, key, m.body, m.body_len,
			    crc32c(0, m.body, m.body_len), hdrs->h, hdrs->n);
			if (rc == 0)
				rc = s3_perform(s3);
			if (rc == 0 || rc != -EIO ||
			    s3_response(s3)->verdict.cls != S3ERR_TRANSIENT)
				break;
			usleep((useconds_t)s3err_backoff_default_ms(attempt, 0) * 1000);
		}
		if (rc == 0) {
			unlink(path);
			sent++;
		} else {
			if (rc == -EIO)
				retry_describe(s3_response(s3), why, sizeof(why));
			else
				snprintf(why, sizeof(why), "%s", strerror(-rc));
			fprintf(stderr, "s3ring-uploader: %s: %s, kept\n", path, why);
			failed++;
		}
	}
	closedir(d);
	log_kv(LOG_LEVEL_INFO, "replay finished", "dir", cfg->replay, (char *)NULL);
	printf("replayed %u, failed %u\n", sent, failed);
out:
	free(hdrs);
	free(buf);
	s3_client_free(s3);
	creds_free(u.creds);
	s3_global_cleanup();
	free(u.live);
	return failed ? 1 : 0;
}
