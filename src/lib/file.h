/*
 * smtpkit: files the library and the command write: whole writes, unnamed
 * temporary files, and a file replaced so that it is whole or untouched.
 * Internal (sk__): for src/lib, src/cli and the MIME module alike.
 */
#ifndef SMTPKIT_FILE_H
#define SMTPKIT_FILE_H

#include <stddef.h>

#include "smtpkit/error.h"

/*
 * Write all n octets of p to fd, retrying after EINTR and short writes.
 * Returns 0, or -1 with errno set.
 */
int sk__write_all(int fd, const void *p, size_t n);

/*
 * An unnamed file readable and writable by this user alone, for spooling:
 * O_TMPFILE in $TMPDIR (or /tmp), or where the file system lacks it, a
 * named file unlinked at once.  *dirp (may be NULL) is set to the
 * directory, for messages.  Returns the fd (close-on-exec), or -1 with
 * errno set.
 */
int sk__tmpfile(const char **dirp);

/*
 * Replace path, in directory dir, with text, mode 0600: a temporary file
 * in dir, synced, renamed over path, and dir synced so that the rename
 * lasts.  A reader sees the old file or the new one, never a part.
 * Errors: stage SK_STAGE_LOCAL, the given kind, sys_errno, a message
 * naming the file; the temporary file is removed.
 */
int sk__replace_file(const char *dir, const char *path, const char *text,
    size_t len, enum sk_error_kind kind, struct sk_error *err);

#endif
