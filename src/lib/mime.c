/*
 * smtpkit: MIME composition, the library's side.
 *
 * GMime, GLib and libmagic are large and slow to start, and most uses of
 * smtpkit (sendmail, the relay, ready messages) never compose anything.  So
 * the composer lives in a module, smtpkit-mime.so, that this file loads
 * with dlopen() the first time sk_mime_compose is called, and keeps loaded
 * for the life of the process.  libsmtpkit itself links none of them.
 *
 * Where the module is looked for, in order:
 *  1. the directory of the running program (/proc/self/exe), when a
 *     regular file smtpkit-mime.so is there: that is the Meson build tree,
 *     where build/smtpkit and the unit tests sit next to
 *     build/smtpkit-mime.so;
 *  2. SMTPKIT_MODULEDIR (prefix/libdir/smtpkit), set when building.
 * There is deliberately no environment variable to point elsewhere: that
 * would let whoever sets a program's environment run code in it.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "smtpkit/error.h"
#include "smtpkit/mime.h"
#include "mime_module.h"

#ifndef SMTPKIT_MODULEDIR
#error "SMTPKIT_MODULEDIR must be defined (meson.build does)"
#endif

typedef int (*compose_fn)(const struct sk_mime *, int, struct sk_error *);

static struct {
	pthread_once_t once;
	void *handle;
	compose_fn compose;
	char why[SK_ERROR_MESSAGE_MAX];	/* "" once loaded */
} mod = { PTHREAD_ONCE_INIT, NULL, NULL, "" };

/* The module's path under the rules above, into out (PATH_MAX octets). */
static void
module_path(char *out, size_t cap)
{
	char exe[PATH_MAX];
	struct stat st;
	char *slash;
	ssize_t n;
	int w;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			w = snprintf(out, cap, "%s/%s", exe,
			    SK__MIME_MODULE_FILE);
			if (w > 0 && (size_t)w < cap && stat(out, &st) == 0 &&
			    S_ISREG(st.st_mode))
				return;
		}
	}
	(void)snprintf(out, cap, "%s/%s", SMTPKIT_MODULEDIR,
	    SK__MIME_MODULE_FILE);
}

/*
 * dlerror() text without a leading "path: ", which the message already
 * names.
 */
static const char *
dl_why(const char *path)
{
	const char *e = dlerror();
	size_t n = strlen(path);

	if (e == NULL)
		return "unknown error";
	if (strncmp(e, path, n) == 0 && e[n] == ':' && e[n + 1] == ' ')
		return e + n + 2;
	return e;
}

static void
module_load(void)
{
	char path[PATH_MAX];
	const int *abi;
	void *h, *sym;

	module_path(path, sizeof(path));
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		(void)snprintf(mod.why, sizeof(mod.why), "cannot load the "
		    "MIME module %s: %s: reinstall smtpkit (make install)",
		    path, dl_why(path));
		return;
	}
	if ((abi = dlsym(h, SK__MIME_MODULE_ABI_SYM)) == NULL ||
	    (sym = dlsym(h, SK__MIME_MODULE_COMPOSE_SYM)) == NULL) {
		(void)snprintf(mod.why, sizeof(mod.why), "the MIME module %s "
		    "is not smtpkit's: %s: reinstall smtpkit (make install)",
		    path, dl_why(path));
		(void)dlclose(h);
		return;
	}
	if (*abi != SK__MIME_MODULE_ABI) {
		(void)snprintf(mod.why, sizeof(mod.why), "the MIME module %s "
		    "belongs to another build of smtpkit (interface %d, this "
		    "library needs %d): reinstall smtpkit (make install)",
		    path, *abi, SK__MIME_MODULE_ABI);
		(void)dlclose(h);
		return;
	}
	/* POSIX (dlsym) guarantees a data pointer can hold a function's. */
	(void)memcpy(&mod.compose, &sym, sizeof(mod.compose));
	__atomic_store_n(&mod.handle, h, __ATOMIC_RELEASE);
}

int
sk_mime_compose(const struct sk_mime *m, int fd, struct sk_error *err)
{
	int e;

	if (m == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "no message to compose");
	if ((e = pthread_once(&mod.once, module_load)) != 0) {
		(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "cannot load the MIME module: %s", strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		return -1;
	}
	/*
	 * No errno even when the file is missing: that is a broken
	 * installation (EX_OSERR), not a missing input of the user's.
	 */
	if (mod.handle == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "%s",
		    mod.why);
	if (err != NULL)
		sk_error_clear(err);
	return mod.compose(m, fd, err);
}

bool
sk_mime_loaded(void)
{
	return __atomic_load_n(&mod.handle, __ATOMIC_ACQUIRE) != NULL;
}
