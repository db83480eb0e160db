/*
 * smtpkit: messages for people go through gettext, domain "smtpkit".
 * The command binds the domain to its catalog directory (build tree or
 * LOCALEDIR); the library only looks messages up.
 */
#ifndef SMTPKIT_I18N_H
#define SMTPKIT_I18N_H

#include <libintl.h>

#define _(s) dgettext("smtpkit", s)
#define N_(s) (s)	/* marked for xgettext, translated where used */

#endif
