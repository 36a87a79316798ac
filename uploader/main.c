/* main.c -- s3ring-uploader: parse the settings, then run or replay.
 *
 * Exit statuses: 0 after a clean stop (SIGTERM) or a complete replay, 64
 * (EX_USAGE) for a bad flag, value or config file, 1 when the daemon cannot
 * start (ring, journal, credentials) or a replay left files behind. Every
 * failure prints one line on stderr.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "uploader.h"

int
main(int argc, char **argv)
{
	static struct config cfg;
	char err[CONFIG_ERR_MAX];
	enum log_level lv;
	int rc;

	/* Blocks of 16 KiB and more (curl's send buffer, one per upload in
	 * flight, made and freed with each transfer) are mapped and unmapped:
	 * only the pages a transfer writes are ever resident, where a heap
	 * recycling them would keep every page any of them ever touched. */
	(void)mallopt(M_MMAP_THRESHOLD, 16 * 1024);
	rc = config_load(&cfg, argc, argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "s3ring-uploader: %s\n", err);
		return CONFIG_EXIT_USAGE;
	}
	if (log_parse_level(cfg.log_level, &lv) == 0)
		log_set_level(lv);
	if ((rc = uploader_open_log(&cfg)) < 0) {
		fprintf(stderr, "s3ring-uploader: log file %s: %s\n", cfg.log_file, strerror(-rc));
		return 1;
	}
	if (cfg.replay[0] != '\0')
		return uploader_replay(&cfg);
	rc = uploader_run(&cfg);
	if (rc == UPLOADER_EXIT_REATTACH) {
		/* A fresh start is the one path that is known to attach (or
		 * create) correctly: same binary, same arguments, same pid, so
		 * systemd keeps supervising it. */
		execv("/proc/self/exe", argv);
		fprintf(stderr, "s3ring-uploader: cannot start again on the new ring: %s\n",
		    strerror(errno));
		return 1;
	}
	return rc;
}
