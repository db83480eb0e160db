/*
 * smtpkit: whole writes, unnamed temporary files, atomic replacement.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

int
sk__write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sk__tmpfile(const char **dirp)
{
	char path[PATH_MAX];
	const char *dir;
	int fd, n;

	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	if (dirp != NULL)
		*dirp = dir;
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		return fd;
	/* A file system without O_TMPFILE: a name, gone at once. */
	n = snprintf(path, sizeof(path), "%s/smtpkit-XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* mkostemp makes it 0600 */
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
		(void)unlink(path);
	return fd;
}

static int
file_fail(struct sk_error *err, enum sk_error_kind kind, int e,
    const char *what, const char *name)
{
	(void)sk_error_set(err, SK_STAGE_LOCAL, kind, "%s %s: %s", what, name,
	    strerror(e));
	if (err != NULL)
		err->sys_errno = e;
	return -1;
}

int
sk__replace_file(const char *dir, const char *path, const char *text,
    size_t len, enum sk_error_kind kind, struct sk_error *err)
{
	char tmp[PATH_MAX];
	const char *base = strrchr(path, '/');
	int fd, dfd, e;

	base = base != NULL ? base + 1 : path;
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >=
	    (int)sizeof(tmp))
		return file_fail(err, kind, ENAMETOOLONG, "cannot create a file "
		    "in", dir);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return file_fail(err, kind, errno, "cannot create a file in",
		    dir);
	if (fchmod(fd, 0600) == -1 || sk__write_all(fd, text, len) == -1 ||
	    fsync(fd) == -1) {
		e = errno;
		(void)close(fd);
		(void)unlink(tmp);
		return file_fail(err, kind, e, "cannot write", tmp);
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		e = errno;
		(void)unlink(tmp);
		return file_fail(err, kind, e, "cannot replace", path);
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return file_fail(err, kind, errno, "cannot open", dir);
	if (fsync(dfd) == -1) {
		e = errno;
		(void)close(dfd);
		return file_fail(err, kind, e, "cannot sync", dir);
	}
	(void)close(dfd);
	return 0;
}
