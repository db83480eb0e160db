/*
 * smtpkit: the interface between libsmtpkit (src/lib/mime.c) and the MIME
 * composing module smtpkit-mime.so (src/mime/compose.c).
 *
 * The module is loaded with dlopen() and these two symbols are the only
 * ones it exports.  The ABI number changes whenever the module's entry
 * point or a structure it reads (struct sk_mime and what it points to,
 * struct sk_error) changes shape, so that a library never calls a module
 * from another build.
 */
#ifndef SMTPKIT_MIME_MODULE_H
#define SMTPKIT_MIME_MODULE_H

#include "smtpkit/error.h"
#include "smtpkit/mime.h"

#define SK__MIME_MODULE_ABI	1

#define SK__MIME_MODULE_FILE	"smtpkit-mime.so"
#define SK__MIME_MODULE_ABI_SYM	"sk__mime_module_abi"
#define SK__MIME_MODULE_COMPOSE_SYM "sk__mime_module_compose"

/* The module is built with hidden visibility; these two are not. */
#define SK__MIME_EXPORT __attribute__((visibility("default")))

/* SK__MIME_MODULE_ABI as the module was built. */
SK__MIME_EXPORT extern const int sk__mime_module_abi;

/* sk_mime_compose, as the module does it: same contract, same errors. */
SK__MIME_EXPORT int sk__mime_module_compose(const struct sk_mime *m, int fd,
    struct sk_error *err);

#endif
