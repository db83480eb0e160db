/*
 * smtpkit command line: where secrets come from.
 *
 * A password or token never comes from argv (every user of the machine can
 * read it in /proc): it comes from a file, an environment variable or the
 * output of a command, and it is wiped from memory when done.  The same
 * sources serve the flags and an account's keys, so the messages below
 * name them without the flag's dashes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "smtpkit/clock.h"
#include "cli.h"

#define SECRET_MAX 16384	/* OAuth tokens run to a few KB */
#define CMD_TIMEOUT_MS 30000

void
cli_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}

/* Keep the first line, without its line end. */
static int
take_line(char *buf, size_t len, const char *what, char **out,
    struct sk_error *err)
{
	size_t n;

	for (n = 0; n < len && buf[n] != '\n' && buf[n] != '\r'; n++)
		;
	if (n == 0) {
		OPENSSL_cleanse(buf, len);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "%s gave an empty password", what);
	}
	if ((*out = malloc(n + 1)) == NULL) {
		OPENSSL_cleanse(buf, len);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	memcpy(*out, buf, n);
	(*out)[n] = '\0';
	OPENSSL_cleanse(buf, len);
	return 0;
}

static int
from_file(const char *path, char **out, struct sk_error *err)
{
	char buf[SECRET_MAX];
	char what[300];
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "cannot read the password file %s: %s", path,
		    strerror(errno));
		err->sys_errno = errno;
		return -1;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	(void)snprintf(what, sizeof(what), "the password file %s", path);
	return take_line(buf, len, what, out, err);
}

static int
from_env(const char *name, char **out, struct sk_error *err)
{
	const char *v = getenv(name);
	char what[300];

	if (v == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "password-env %s: that environment variable is not set "
		    "(export it, e.g. export %s=...)", name, name);
	(void)snprintf(what, sizeof(what), "the environment variable %s", name);
	if (v[0] == '\0')
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "%s is empty", what);
	if ((*out = strdup(v)) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	(*out)[strcspn(*out, "\r\n")] = '\0';
	return 0;
}

/* Run cmd with /bin/sh, its standard output being the secret. */
static int
from_cmd(const char *cmd, char **out, struct sk_error *err)
{
	char buf[SECRET_MAX];
	struct pollfd pfd;
	int64_t deadline = sk_clock_ms() + CMD_TIMEOUT_MS;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int p[2], status, rc;
	bool timed_out = false;

	if (pipe2(p, O_CLOEXEC) == -1)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "pipe: %s", strerror(errno));
	if ((pid = fork()) == -1) {
		(void)close(p[0]);
		(void)close(p[1]);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		(void)dup2(p[1], STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	(void)close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		rc = poll(&pfd, 1, sk_clock_left(deadline));
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == 0) {
			timed_out = true;
			(void)kill(pid, SIGKILL);
			break;
		}
		if (rc == -1)
			break;
		n = read(p[0], buf + len, sizeof(buf) - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf))
			break;
	}
	(void)close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (timed_out) {
		OPENSSL_cleanse(buf, len);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "password-cmd did not finish within %d s",
		    CMD_TIMEOUT_MS / 1000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		OPENSSL_cleanse(buf, len);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "password-cmd failed (%s %d)",
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	return take_line(buf, len, "password-cmd", out, err);
}

int
cli_password(const struct password_src *src, char **out,
    struct sk_error *err)
{
	*out = NULL;
	if (src->file != NULL)
		return from_file(src->file, out, err);
	if (src->env != NULL)
		return from_env(src->env, out, err);
	if (src->cmd != NULL)
		return from_cmd(src->cmd, out, err);
	return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
	    "--user needs a password source: --password-file FILE, "
	    "--password-env VAR or --password-cmd CMD (never on the "
	    "command line)");
}
