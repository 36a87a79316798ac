/* uploader.h -- the s3ring-uploader daemon: dispatcher, workers, replay. */
#ifndef S3RING_UPLOADER_H
#define S3RING_UPLOADER_H

#include "config.h"

/* Exit statuses besides 0 and CONFIG_EXIT_USAGE. */
#define UPLOADER_EXIT_FAIL 1  /* could not start: ring, journal, memory */
/* uploader_run() only: the ring was retired and is finished with; main()
 * starts the uploader again (same arguments) on the new ring. */
#define UPLOADER_EXIT_REATTACH (-2)

/* Points stderr, where the log goes, at cfg->log_file if one is set
 * (opened for appending); called at start and on SIGHUP, for logrotate.
 * Returns 0 or -errno. */
int uploader_open_log(const struct config *cfg);

/* Attaches to (or creates) the ring, takes the journal, checks the bucket,
 * and drains the ring to S3 until SIGTERM or SIGINT. Returns the process
 * exit status: 0 after a clean stop. */
int uploader_run(const struct config *cfg);

/* Uploads every message of the spool directory cfg->replay, removing each
 * file once its upload succeeded. Returns 0 if all were sent, 1 if any
 * failed (they stay in the spool). */
int uploader_replay(const struct config *cfg);

#endif
