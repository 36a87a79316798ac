/* creds_ini.h -- the shared config and credentials files: INI parsing and loading */
#ifndef S3RING_CREDS_INI_H
#define S3RING_CREDS_INI_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "creds.h"

/* What a file was when it was read, to notice a change cheaply. */
struct creds_file_ident {
	bool valid;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* Expands a leading "~/" (HOME, else the passwd entry) into out (cap
 * bytes). Returns 0, -ENOENT (no home) or -ENAMETOOLONG. */
int creds_expand_home(const char *in, char *out, size_t cap)
	__attribute__((warn_unused_result));

void creds_ident_from_stat(struct creds_file_ident *id, const struct stat *st);
bool creds_ident_equal(const struct creds_file_ident *a,
    const struct creds_file_ident *b);

/*
 * Reads path and parses its [section] into *prof (always initialised; the
 * caller wipes it), recording the identity of the descriptor actually read
 * (no stat/open race) in *ident. what names the file in logs
 * ("credentials file", "config file"). A missing file and a missing
 * section return -ENOENT and are not logged (the caller knows whether
 * they matter); other errors are logged unless quiet. A credentials file
 * readable by group or others is warned about.
 */
int creds_load_file(const char *path, const char *what, const char *section,
    struct creds_profile *prof, struct creds_file_ident *ident, bool quiet)
	__attribute__((warn_unused_result));

/* Copies every field that from sets over into: a later file wins. */
void creds_merge_profile(struct creds_profile *into,
    const struct creds_profile *from);

#endif /* S3RING_CREDS_INI_H */
