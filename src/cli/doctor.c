/*
 * smtpkit doctor: walk the whole chain to a mail server and name the fault.
 *
 * The library runs the stages and reaches the verdict; this file chooses
 * what to diagnose (an account, a provider preset, a bare host), prints the
 * report for a person or as JSON, and turns the verdict into an exit
 * status.  It also holds what the interactive commands share: message
 * catalogs (gettext) and the report printer that "smtpkit setup" uses.
 */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include <cjson/cJSON.h>

#include "smtpkit/smtpkit.h"
#include "smtpkit/config.h"
#include "smtpkit/doctor.h"
#include "smtpkit/providers.h"
#include "cli.h"
#include "i18n.h"

#ifndef SMTPKIT_LOCALEDIR
#define SMTPKIT_LOCALEDIR "/usr/local/share/locale"
#endif

#define DOCTOR_TIMEOUT_S 10
#define WRAP_MAX 100

/* ------------------------------------------------------------------ */
/* Message catalogs */

static bool
is_c_locale(const char *name)
{
	return name == NULL || name[0] == '\0' || strcmp(name, "C") == 0 ||
	    strcmp(name, "POSIX") == 0;
}

/* The locale messages come from, by POSIX precedence. */
static const char *
env_messages_locale(void)
{
	static const char *const vars[] = { "LC_ALL", "LC_MESSAGES", "LANG" };
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((v = getenv(vars[i])) != NULL && v[0] != '\0')
			return v;
	return NULL;
}

/* Try locales in turn for one category; true once one is set. */
static bool
set_any_locale(int category)
{
	static const char *const names[] = { "C.UTF-8", "C.utf8",
	    "en_US.UTF-8" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (setlocale(category, names[i]) != NULL)
			return true;
	return false;
}

/*
 * Bind the "smtpkit" domain.  A binary run from the build tree finds the
 * catalogs Meson built next to it (build/po/zh_CN/LC_MESSAGES/smtpkit.mo);
 * an installed one uses LOCALEDIR, fixed at build time.  Nothing in the
 * build tree is consulted unless that very file is there.
 */
static void
bind_catalog(void)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	char *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			(void)snprintf(path, sizeof(path),
			    "%s/po/zh_CN/LC_MESSAGES/smtpkit.mo", exe);
			if (access(path, R_OK) == 0) {
				(void)snprintf(path, sizeof(path), "%s/po", exe);
				(void)bindtextdomain("smtpkit", path);
				goto bound;
			}
		}
	}
	(void)bindtextdomain("smtpkit", SMTPKIT_LOCALEDIR);
bound:
	(void)bind_textdomain_codeset("smtpkit", "UTF-8");
	(void)textdomain("smtpkit");
}

/*
 * glibc ignores LANGUAGE while LC_MESSAGES is "C", which is what it is under
 * LANG=C and also when the zh_CN locale asked for is not installed (setlocale
 * fails and leaves "C").  So when Chinese is wanted and LC_MESSAGES is C,
 * switch LC_MESSAGES (and a C LC_CTYPE, for the UTF-8 width of what we
 * print) to C.UTF-8, which Debian always has; LANGUAGE=zh_CN then picks the
 * catalog.  Call before the first message is looked up.
 */
const char *
cli_i18n_init(const char *lang)
{
	const char *env, *language;
	bool zh;

	(void)setlocale(LC_ALL, "");
	env = env_messages_locale();
	language = getenv("LANGUAGE");
	if (lang != NULL)
		zh = strcmp(lang, "zh") == 0;
	else if (language != NULL && language[0] != '\0' && !is_c_locale(env))
		zh = strncmp(language, "zh", 2) == 0;
	else
		zh = env != NULL && strncmp(env, "zh", 2) == 0;

	if (zh) {
		(void)setenv("LANGUAGE", "zh_CN", 1);
		if (is_c_locale(setlocale(LC_MESSAGES, NULL)))
			(void)set_any_locale(LC_MESSAGES);
	} else if (lang != NULL || (language != NULL && language[0] != '\0')) {
		/* No "en" catalog: every message stays as written. */
		(void)setenv("LANGUAGE", "en", 1);
	}
	if (is_c_locale(setlocale(LC_CTYPE, NULL)))
		(void)set_any_locale(LC_CTYPE);
	bind_catalog();
	return zh ? "zh" : "en";
}

/* --lang, looked for before the options are parsed so that their errors
 * are translated too. */
const char *
cli_lang_arg(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--lang") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--lang=", 7) == 0)
			return argv[i] + 7;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Shared helpers */

struct sk_providers *
cli_providers_load(struct sk_error *err)
{
	char buf[PATH_MAX];
	const char *dirs[3];

	sk_providers_default_dirs(dirs, buf, sizeof(buf));
	return sk_providers_load(dirs, err);
}

/* The preset whose host (or one of its regions' hosts) is host. */
const struct sk_provider *
cli_provider_by_host(const struct sk_providers *db, const char *host,
    const struct sk_provider_region **region)
{
	const struct sk_provider *p;
	size_t i, j;

	*region = NULL;
	for (i = 0; i < sk_providers_count(db); i++) {
		p = sk_providers_at(db, i);
		if (p->host != NULL && strcasecmp(p->host, host) == 0)
			return p;
		for (j = 0; j < p->nregions; j++)
			if (p->regions[j].host != NULL &&
			    strcasecmp(p->regions[j].host, host) == 0) {
				*region = &p->regions[j];
				return p;
			}
	}
	return NULL;
}

bool
cli_color_ok(int fd)
{
	const char *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	if (nc != NULL && nc[0] != '\0')
		return false;
	if (term != NULL && strcmp(term, "dumb") == 0)
		return false;
	return isatty(fd) == 1;
}

/* Columns a UTF-8 string takes on a terminal. */
static int
text_width(const char *s, size_t len)
{
	mbstate_t st;
	wchar_t wc;
	size_t n;
	int w = 0, cw;

	memset(&st, 0, sizeof(st));
	while (len > 0) {
		n = mbrtowc(&wc, s, len, &st);
		if (n == (size_t)-1 || n == (size_t)-2) {
			memset(&st, 0, sizeof(st));
			s++;
			len--;
			w++;
			continue;
		}
		if (n == 0)
			break;
		cw = wcwidth(wc);
		w += cw > 0 ? cw : 0;
		s += n;
		len -= n;
	}
	return w;
}

static void
put_padded(FILE *f, const char *s, int width, bool right)
{
	int pad = width - text_width(s, strlen(s));

	if (right)
		for (; pad > 0; pad--)
			fputc(' ', f);
	fputs(s, f);
	if (!right)
		for (; pad > 0; pad--)
			fputc(' ', f);
}

/* ------------------------------------------------------------------ */
/* The report, for a person */

struct out {
	FILE *f;
	bool color;
	int wrap;		/* columns to wrap prose at; 0: never */
};

enum hue { HUE_NONE, HUE_GREEN, HUE_RED, HUE_YELLOW, HUE_DIM, HUE_BOLD };

static void
hue_on(const struct out *o, enum hue h)
{
	static const char *const seq[] = { "", "\033[32m", "\033[31m",
	    "\033[33m", "\033[2m", "\033[1m" };

	if (o->color && h != HUE_NONE)
		fputs(seq[h], o->f);
}

static void
hue_off(const struct out *o, enum hue h)
{
	if (o->color && h != HUE_NONE)
		fputs("\033[0m", o->f);
}

/*
 * Print text, the cursor being at column col, wrapped at o->wrap: at
 * spaces, and between wide (CJK) characters, which need no space to break.
 * Later lines start at column hang.  Line ends in text are kept; the last
 * line is ended.
 */
static void
put_wrapped(const struct out *o, const char *text, int col, int hang)
{
	const char *line = text, *p, *brk;
	mbstate_t st;
	wchar_t wc;
	size_t n;
	int cw;
	bool brk_space;

	do {
		memset(&st, 0, sizeof(st));
		brk = NULL;
		brk_space = false;
		for (p = line; *p != '\0' && *p != '\n'; p += n) {
			n = mbrtowc(&wc, p, MB_CUR_MAX, &st);
			if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
				memset(&st, 0, sizeof(st));
				n = 1;
				cw = 1;
			} else if ((cw = wcwidth(wc)) < 0) {
				cw = 0;
			}
			if (*p == ' ') {
				brk = p;
				brk_space = true;
			} else if (cw == 2 && p > line) {
				brk = p;
				brk_space = false;
			}
			if (o->wrap > 0 && col + cw > o->wrap && brk != NULL &&
			    brk > line)
				break;
			col += cw;
		}
		if (*p == '\0' || *p == '\n') {
			fwrite(line, 1, (size_t)(p - line), o->f);
			line = *p == '\n' ? p + 1 : p;
		} else {
			fwrite(line, 1, (size_t)(brk - line), o->f);
			line = brk_space ? brk + 1 : brk;
		}
		fputc('\n', o->f);
		if (*line != '\0')
			fprintf(o->f, "%*s", hang, "");
		col = hang;
	} while (*line != '\0');
}

static void
heading(const struct out *o, const char *text)
{
	fputs("  ", o->f);
	hue_on(o, HUE_BOLD);
	fputs(text, o->f);
	hue_off(o, HUE_BOLD);
	fputc('\n', o->f);
}

static const char *
stage_label(enum sk_doctor_stage s)
{
	static const char *const labels[SK_DOCTOR__COUNT] = {
		[SK_DOCTOR_LOCAL] = N_("local"),
		[SK_DOCTOR_DNS] = N_("dns"),
		[SK_DOCTOR_TCP] = N_("tcp"),
		[SK_DOCTOR_GREETING] = N_("greeting"),
		[SK_DOCTOR_TLS] = N_("tls"),
		[SK_DOCTOR_EHLO] = N_("ehlo"),
		[SK_DOCTOR_AUTH] = N_("auth"),
		[SK_DOCTOR_MAIL] = N_("mail"),
		[SK_DOCTOR_DATA] = N_("data"),
	};

	if ((unsigned)s < SK_DOCTOR__COUNT && labels[s] != NULL)
		return _(labels[s]);
	return sk_doctor_stage_name(s);
}

static const char *
port_mode_label(const struct sk_doctor_port *p)
{
	switch (p->mode) {
	case SK_PMODE_UNKNOWN:
		return "-";
	case SK_PMODE_PLAIN:
		return p->starttls ? _("plain, STARTTLS") : _("plain");
	case SK_PMODE_IMPLICIT:
		return _("implicit TLS");
	case SK_PMODE_SILENT:
		return _("silent");
	}
	return sk_port_mode_name(p->mode);
}

static void
check_mark(const struct out *o, enum sk_check c)
{
	switch (c) {
	case SK_CHECK_OK:
		hue_on(o, HUE_GREEN);
		fputs("\u2713", o->f);
		hue_off(o, HUE_GREEN);
		break;
	case SK_CHECK_FAIL:
		hue_on(o, HUE_RED);
		fputs("\u2717", o->f);
		hue_off(o, HUE_RED);
		break;
	case SK_CHECK_WARN:
		hue_on(o, HUE_YELLOW);
		fputs("!", o->f);
		hue_off(o, HUE_YELLOW);
		break;
	case SK_CHECK_SKIP:
		hue_on(o, HUE_DIM);
		fputs("-", o->f);
		hue_off(o, HUE_DIM);
		break;
	}
}

static void
print_stages(const struct out *o, const struct sk_doctor_report *r,
    int verbose)
{
	const struct sk_doctor_stage_result *s;
	char ms[32];
	int lw = 0, w, i;
	size_t j;

	for (i = 0; i < SK_DOCTOR__COUNT; i++) {
		const char *l = stage_label((enum sk_doctor_stage)i);

		if ((w = text_width(l, strlen(l))) > lw)
			lw = w;
	}
	for (i = 0; i < SK_DOCTOR__COUNT; i++) {
		s = &r->stages[i];
		fputs("  ", o->f);
		check_mark(o, s->status);
		fputc(' ', o->f);
		put_padded(o->f, stage_label((enum sk_doctor_stage)i), lw,
		    false);
		if (s->status == SK_CHECK_SKIP && s->ms == 0)
			(void)snprintf(ms, sizeof(ms), "-");
		else
			(void)snprintf(ms, sizeof(ms), _("%lld ms"),
			    (long long)s->ms);
		fputc(' ', o->f);
		hue_on(o, HUE_DIM);
		put_padded(o->f, ms, 9, true);
		hue_off(o, HUE_DIM);
		if (s->detail[0] != '\0') {
			fputs("  ", o->f);
			put_wrapped(o, s->detail, lw + 16, lw + 16);
		} else {
			fputc('\n', o->f);
		}
		if (verbose < 1)
			continue;
		for (j = 0; j < s->nevidence; j++) {
			hue_on(o, HUE_DIM);
			fprintf(o->f, "%*s| %s", lw + 6, "", s->evidence[j]);
			hue_off(o, HUE_DIM);
			fputc('\n', o->f);
		}
	}
}

static void
print_ports(const struct out *o, const struct sk_doctor_report *r)
{
	const char *head[5];
	char port[16], ms[32];
	int w[5], x, c;
	size_t i;

	if (r->nports == 0)
		return;
	head[0] = _("address");
	head[1] = _("port");
	head[2] = _("state");
	head[3] = _("mode");
	head[4] = _("ms");
	for (c = 0; c < 5; c++)
		w[c] = text_width(head[c], strlen(head[c]));
	for (i = 0; i < r->nports; i++) {
		const struct sk_doctor_port *p = &r->ports[i];
		const char *cell[3];

		(void)snprintf(port, sizeof(port), "%u", p->port);
		(void)snprintf(ms, sizeof(ms), "%lld", (long long)p->ms);
		cell[0] = p->address;
		cell[1] = port;
		cell[2] = sk_port_state_words(p->state);
		for (c = 0; c < 3; c++)
			if ((x = text_width(cell[c], strlen(cell[c]))) > w[c])
				w[c] = x;
		if ((x = text_width(port_mode_label(p),
		    strlen(port_mode_label(p)))) > w[3])
			w[3] = x;
		if ((x = (int)strlen(ms)) > w[4])
			w[4] = x;
	}
	fputc('\n', o->f);
	heading(o, _("Ports:"));
	fputs("    ", o->f);
	hue_on(o, HUE_DIM);
	for (c = 0; c < 5; c++) {
		put_padded(o->f, head[c], w[c], c == 1 || c == 4);
		if (c < 4)
			fputs("  ", o->f);
	}
	hue_off(o, HUE_DIM);
	fputc('\n', o->f);
	for (i = 0; i < r->nports; i++) {
		const struct sk_doctor_port *p = &r->ports[i];
		enum hue h = p->state == SK_PORT_CONNECTED ? HUE_GREEN :
		    p->state == SK_PORT_UNTRIED ? HUE_DIM : HUE_RED;

		(void)snprintf(port, sizeof(port), "%u", p->port);
		if (p->state == SK_PORT_UNTRIED)
			(void)snprintf(ms, sizeof(ms), "-");
		else
			(void)snprintf(ms, sizeof(ms), "%lld",
			    (long long)p->ms);
		fputs("    ", o->f);
		put_padded(o->f, p->address, w[0], false);
		fputs("  ", o->f);
		put_padded(o->f, port, w[1], true);
		fputs("  ", o->f);
		hue_on(o, h);
		put_padded(o->f, sk_port_state_words(p->state), w[2], false);
		hue_off(o, h);
		fputs("  ", o->f);
		put_padded(o->f, port_mode_label(p), w[3], false);
		fputs("  ", o->f);
		put_padded(o->f, ms, w[4], true);
		fputc('\n', o->f);
	}
}

static void
print_fact(const struct out *o, const char *label, int width,
    const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	fputs("    ", o->f);
	put_padded(o->f, label, width, false);
	fprintf(o->f, "  %s\n", value);
}

static void
print_tls_facts(const struct out *o, const struct sk_doctor_report *r)
{
	const struct sk_tls_info *t = &r->tls;
	const char *label[6];
	char proto[sizeof(t->version) + sizeof(t->cipher) + 2];
	char valid[sizeof(t->not_before) + sizeof(t->not_after) + 8];
	int w = 0, x, i;

	if (!r->tls_seen)
		return;
	label[0] = _("protocol");
	label[1] = _("subject");
	label[2] = _("names");
	label[3] = _("issuer");
	label[4] = _("valid");
	label[5] = _("verification");
	for (i = 0; i < 6; i++)
		if ((x = text_width(label[i], strlen(label[i]))) > w)
			w = x;
	(void)snprintf(proto, sizeof(proto), "%s%s%s", t->version,
	    t->version[0] != '\0' && t->cipher[0] != '\0' ? ", " : "",
	    t->cipher);
	valid[0] = '\0';
	if (t->not_before[0] != '\0' || t->not_after[0] != '\0')
		(void)snprintf(valid, sizeof(valid), "%s .. %s", t->not_before,
		    t->not_after);
	fputc('\n', o->f);
	heading(o, _("TLS certificate:"));
	print_fact(o, label[0], w, proto);
	print_fact(o, label[1], w, t->subject);
	print_fact(o, label[2], w, t->sans);
	print_fact(o, label[3], w, t->issuer);
	print_fact(o, label[4], w, valid);
	print_fact(o, label[5], w, t->verify_text[0] != '\0' ? t->verify_text :
	    t->verify_result == 0 ? "ok" : "?");
}

static void
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Append to buf, cutting what does not fit. */
static void
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= cap - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static const struct { unsigned bit; const char *name; } cap_names[] = {
	{ SK_CAP_STARTTLS, "STARTTLS" },
	{ SK_CAP_PIPELINING, "PIPELINING" },
	{ SK_CAP_SIZE, "SIZE" },
	{ SK_CAP_AUTH, "AUTH" },
	{ SK_CAP_8BITMIME, "8BITMIME" },
	{ SK_CAP_SMTPUTF8, "SMTPUTF8" },
	{ SK_CAP_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES" },
	{ SK_CAP_DSN, "DSN" },
	{ SK_CAP_CHUNKING, "CHUNKING" },
};

static void
caps_line(char *buf, size_t cap, const struct sk_caps *c)
{
	size_t i, len = 0;
	int m;

	buf[0] = '\0';
	for (i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
		if (!(c->flags & cap_names[i].bit))
			continue;
		append(buf, cap, &len, "%s%s", len > 0 ? " " : "",
		    cap_names[i].name);
		if (cap_names[i].bit == SK_CAP_SIZE && c->size_max > 0)
			append(buf, cap, &len, "=%llu",
			    (unsigned long long)c->size_max);
		if (cap_names[i].bit == SK_CAP_AUTH)
			for (m = SK_AUTH_NONE + 1; m < SK_AUTH__COUNT; m++)
				if (c->auth & SK_AUTH_BIT(m))
					append(buf, cap, &len, " %s",
					    sk_auth_mech_name(
					    (enum sk_auth_mech)m));
	}
	if (!c->esmtp)
		append(buf, cap, &len, "%s(HELO)", len > 0 ? " " : "");
}

static void
print_caps(const struct out *o, const struct sk_doctor_report *r)
{
	char line[512];

	if (r->stages[SK_DOCTOR_EHLO].status == SK_CHECK_SKIP)
		return;
	fputc('\n', o->f);
	heading(o, _("Capabilities:"));
	if (r->caps_before_tls.flags != 0 || r->caps_before_tls.esmtp) {
		caps_line(line, sizeof(line), &r->caps_before_tls);
		fputs("    ", o->f);
		fprintf(o->f, _("before TLS: %s\n"), line);
		caps_line(line, sizeof(line), &r->caps);
		fputs("    ", o->f);
		fprintf(o->f, _("after TLS: %s\n"), line);
	} else {
		caps_line(line, sizeof(line), &r->caps);
		fprintf(o->f, "    %s\n", line);
	}
}

static void
print_verdict(const struct out *o, const struct sk_doctor_report *r)
{
	const struct sk_doctor_suggestion *sg = &r->suggested;
	char num[24], code[64];
	size_t i;

	(void)snprintf(code, sizeof(code), "%s%s%s", o->color ?
	    (r->verdict == SK_VERDICT_OK ? "\033[1;32m" : "\033[1;31m") : "",
	    sk_verdict_name(r->verdict), o->color ? "\033[0m" : "");
	fputc('\n', o->f);
	/* TRANSLATORS: %s is the verdict code, e.g. AUTH_CREDENTIALS. */
	fprintf(o->f, _("Verdict: %s\n"), code);
	if (r->summary[0] != '\0') {
		fputs("  ", o->f);
		put_wrapped(o, r->summary, 2, 2);
	}
	if (r->nfix > 0) {
		fputc('\n', o->f);
		heading(o, _("How to fix it:"));
		for (i = 0; i < r->nfix; i++) {
			(void)snprintf(num, sizeof(num), "%zu. ", i + 1);
			fprintf(o->f, "    %s", num);
			put_wrapped(o, r->fix[i], 4 + (int)strlen(num),
			    4 + (int)strlen(num));
		}
	}
	if (sg->valid) {
		fputc('\n', o->f);
		heading(o, _("Settings that work:"));
		if (sg->command[0] != '\0')
			fprintf(o->f, "    %s\n", sg->command);
		if (sg->config[0] != '\0') {
			fprintf(o->f, "\n    %s\n",
			    _("In the configuration file:"));
			fputs("      ", o->f);
			put_wrapped(&(struct out){ o->f, false, 0 }, sg->config,
			    6, 6);
		}
	}
}

static int
terminal_columns(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col < WRAP_MAX ? ws.ws_col - 1 : WRAP_MAX;
	return 79;
}

void
cli_doctor_print(const struct sk_doctor_report *r, const char *title,
    int verbose)
{
	struct out o;

	o.f = stdout;
	o.color = cli_color_ok(STDOUT_FILENO);
	/* Prose is wrapped on a terminal only: in a file or a pipe, one line
	 * per sentence is what grep wants. */
	o.wrap = isatty(STDOUT_FILENO) ? terminal_columns(STDOUT_FILENO) : 0;
	if (title != NULL) {
		hue_on(&o, HUE_BOLD);
		fputs(title, o.f);
		hue_off(&o, HUE_BOLD);
		fputc('\n', o.f);
	}
	print_stages(&o, r, verbose);
	print_ports(&o, r);
	if (verbose > 0) {
		print_tls_facts(&o, r);
		print_caps(&o, r);
	}
	print_verdict(&o, r);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* The report, as JSON */

static cJSON *
json_strings(char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

static cJSON *
json_caps(const struct sk_caps *c)
{
	cJSON *o = cJSON_CreateObject(), *a;
	size_t i;
	int m;

	cJSON_AddBoolToObject(o, "esmtp", c->esmtp);
	a = cJSON_AddArrayToObject(o, "extensions");
	for (i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (c->flags & cap_names[i].bit)
			cJSON_AddItemToArray(a,
			    cJSON_CreateString(cap_names[i].name));
	cJSON_AddNumberToObject(o, "size", (double)c->size_max);
	a = cJSON_AddArrayToObject(o, "auth");
	for (m = SK_AUTH_NONE + 1; m < SK_AUTH__COUNT; m++)
		if (c->auth & SK_AUTH_BIT(m))
			cJSON_AddItemToArray(a, cJSON_CreateString(
			    sk_auth_mech_name((enum sk_auth_mech)m)));
	return o;
}

static cJSON *
json_tls(const struct sk_tls_info *t)
{
	cJSON *o = cJSON_CreateObject(), *a;
	char sans[sizeof(t->sans)], *tok, *save = NULL;

	cJSON_AddStringToObject(o, "version", t->version);
	cJSON_AddStringToObject(o, "cipher", t->cipher);
	cJSON_AddStringToObject(o, "subject", t->subject);
	cJSON_AddStringToObject(o, "issuer", t->issuer);
	a = cJSON_AddArrayToObject(o, "sans");
	memcpy(sans, t->sans, sizeof(sans));
	sans[sizeof(sans) - 1] = '\0';
	for (tok = strtok_r(sans, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save))
		cJSON_AddItemToArray(a, cJSON_CreateString(tok));
	cJSON_AddStringToObject(o, "not_before", t->not_before);
	cJSON_AddStringToObject(o, "not_after", t->not_after);
	cJSON_AddNumberToObject(o, "verify_result", (double)t->verify_result);
	cJSON_AddStringToObject(o, "verify_text", t->verify_text);
	return o;
}

static cJSON *
doctor_json(const struct sk_doctor_report *r)
{
	const struct sk_doctor_suggestion *sg = &r->suggested;
	cJSON *root, *v, *a, *s, *caps;
	size_t i;
	int k;

	root = cJSON_CreateObject();
	v = cJSON_AddObjectToObject(root, "verdict");
	cJSON_AddStringToObject(v, "code", sk_verdict_name(r->verdict));
	cJSON_AddStringToObject(v, "summary", r->summary);
	cJSON_AddItemToObject(v, "fix", json_strings(r->fix, r->nfix));

	a = cJSON_AddArrayToObject(root, "stages");
	for (k = 0; k < SK_DOCTOR__COUNT; k++) {
		const struct sk_doctor_stage_result *st = &r->stages[k];

		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "name",
		    sk_doctor_stage_name((enum sk_doctor_stage)k));
		cJSON_AddStringToObject(s, "status", sk_check_name(st->status));
		cJSON_AddNumberToObject(s, "ms", (double)st->ms);
		cJSON_AddStringToObject(s, "detail", st->detail);
		cJSON_AddItemToObject(s, "evidence",
		    json_strings(st->evidence, st->nevidence));
		cJSON_AddItemToArray(a, s);
	}

	a = cJSON_AddArrayToObject(root, "ports");
	for (i = 0; i < r->nports; i++) {
		const struct sk_doctor_port *p = &r->ports[i];

		s = cJSON_CreateObject();
		cJSON_AddNumberToObject(s, "port", p->port);
		cJSON_AddStringToObject(s, "address", p->address);
		cJSON_AddStringToObject(s, "mode", sk_port_mode_name(p->mode));
		cJSON_AddStringToObject(s, "status",
		    sk_port_state_name(p->state));
		cJSON_AddNumberToObject(s, "ms", (double)p->ms);
		cJSON_AddItemToArray(a, s);
	}

	s = cJSON_AddObjectToObject(root, "suggested");
	if (sg->valid) {
		cJSON_AddStringToObject(s, "host", sg->host);
		cJSON_AddNumberToObject(s, "port", sg->port);
		cJSON_AddStringToObject(s, "tls", sk_tls_mode_name(sg->tls));
		cJSON_AddStringToObject(s, "command", sg->command);
		cJSON_AddStringToObject(s, "config", sg->config);
	}

	if (r->tls_seen)
		cJSON_AddItemToObject(root, "tls", json_tls(&r->tls));
	if (r->stages[SK_DOCTOR_EHLO].status != SK_CHECK_SKIP) {
		caps = json_caps(&r->caps);
		if (r->caps_before_tls.flags != 0 || r->caps_before_tls.esmtp)
			cJSON_AddItemToObject(caps, "before_tls",
			    json_caps(&r->caps_before_tls));
		cJSON_AddItemToObject(root, "capabilities", caps);
	}
	return root;
}

/* ------------------------------------------------------------------ */
/* smtpkit doctor */

struct doctor_opts {
	const char *account;
	const char *provider;
	const char *host;
	unsigned port;
	bool tls_given;
	bool tls_auto;
	enum sk_tls_mode tls;
	const char *user;
	struct password_src pw;
	enum sk_auth_mech auth;
	const char *from;
	const char *to;
	bool send;
	int timeout_s;		/* 0: the account's, else 10 */
	const char *ca_file;
	bool insecure;
	bool allow_plaintext_auth;
	bool json;
	const char *lang;
	const char *config;
	int verbose;
};

enum {
	OPT_ACCOUNT = 256, OPT_PROVIDER, OPT_HOST, OPT_PORT, OPT_TLS, OPT_USER,
	OPT_PWFILE, OPT_PWENV, OPT_PWCMD, OPT_AUTH, OPT_FROM, OPT_TO, OPT_SEND,
	OPT_TIMEOUT, OPT_CAFILE, OPT_INSECURE, OPT_PLAINAUTH, OPT_JSON, OPT_LANG,
	OPT_CONFIG, OPT_HELP
};

static const struct option long_opts[] = {
	{ "account", required_argument, NULL, OPT_ACCOUNT },
	{ "provider", required_argument, NULL, OPT_PROVIDER },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "user", required_argument, NULL, OPT_USER },
	{ "password-file", required_argument, NULL, OPT_PWFILE },
	{ "password-env", required_argument, NULL, OPT_PWENV },
	{ "password-cmd", required_argument, NULL, OPT_PWCMD },
	{ "auth", required_argument, NULL, OPT_AUTH },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "send", no_argument, NULL, OPT_SEND },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "ca-file", required_argument, NULL, OPT_CAFILE },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "allow-plaintext-auth", no_argument, NULL, OPT_PLAINAUTH },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "lang", required_argument, NULL, OPT_LANG },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static void
doctor_usage(FILE *f)
{
	fputs(_("usage: smtpkit doctor [--account NAME | --provider ID | --host HOST] [--port PORT]\n"
	    "           [--tls auto|implicit|starttls|none]\n"
	    "           [--user USER (--password-file F | --password-env VAR | --password-cmd CMD)]\n"
	    "           [--auth MECH] [--allow-plaintext-auth]\n"
	    "           [--from ADDR] [--to ADDR [--send]]\n"
	    "           [--timeout SECS] [--ca-file FILE] [--insecure]\n"
	    "           [--json] [--lang en|zh] [--config FILE] [-v]\n"
	    "\n"
	    "Walks the chain to the mail server stage by stage (local, dns, tcp,\n"
	    "greeting, tls, ehlo, auth, mail, data) and names the fault and its fix.\n"
	    "Exit status 0 when the verdict is OK.  --provider with --host/--port\n"
	    "keeps the preset's knowledge but connects where told.\n"), f);
}

/* "auto" or a mode; for doctor and setup alike. */
int
cli_tls_arg(const char *s, enum sk_tls_mode *mode, bool *tls_auto)
{
	if (strcasecmp(s, "auto") == 0) {
		*tls_auto = true;
		*mode = SK_TLS_MODE_STARTTLS;
		return 0;
	}
	*tls_auto = false;
	return sk_tls_mode_parse(s, mode);
}

static int
parse_opts(int argc, char **argv, struct doctor_opts *o)
{
	int rc;
	int c;

	o->tls_auto = true;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ACCOUNT:
			o->account = optarg;
			break;
		case OPT_PROVIDER:
			o->provider = optarg;
			break;
		case OPT_HOST:
			o->host = optarg;
			break;
		case OPT_PORT:
			if ((rc = cli_opt_port("doctor", optarg, &o->port)) != 0)
				return rc;
			break;
		case OPT_TLS:
			if (cli_tls_arg(optarg, &o->tls, &o->tls_auto) == -1)
				return cli_usage_error("doctor", _("--tls %s: use "
				    "auto, implicit, starttls or none"), optarg);
			o->tls_given = true;
			break;
		case OPT_USER:
			o->user = optarg;
			break;
		case OPT_PWFILE:
			o->pw.file = optarg;
			break;
		case OPT_PWENV:
			o->pw.env = optarg;
			break;
		case OPT_PWCMD:
			o->pw.cmd = optarg;
			break;
		case OPT_AUTH:
			if ((rc = cli_opt_auth("doctor", optarg, &o->auth)) != 0)
				return rc;
			break;
		case OPT_FROM:
			o->from = optarg;
			break;
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_SEND:
			o->send = true;
			break;
		case OPT_TIMEOUT:
			if ((rc = cli_opt_timeout("doctor", optarg,
			    &o->timeout_s)) != 0)
				return rc;
			break;
		case OPT_CAFILE:
			o->ca_file = optarg;
			break;
		case OPT_INSECURE:
			o->insecure = true;
			break;
		case OPT_PLAINAUTH:
			o->allow_plaintext_auth = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_LANG:
			if (strcmp(optarg, "en") != 0 &&
			    strcmp(optarg, "zh") != 0)
				return cli_usage_error("doctor", _("--lang %s: use en "
				    "or zh"), optarg);
			o->lang = optarg;
			break;
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_HELP:
			doctor_usage(stdout);
			return -2;
		default:
			if (optopt != 0 && optopt < 256)
				return cli_usage_error("doctor", _("unknown option "
				    "-%c"), optopt);
			return cli_usage_error("doctor", _("unknown or incomplete "
			    "option %s"), argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("doctor", _("unexpected argument %s"),
		    argv[optind]);
	if (o->account != NULL && (o->provider != NULL || o->host != NULL))
		return cli_usage_error("doctor", _("--account names the server "
		    "already: give --account, or --provider and/or --host"));
	if ((o->pw.file != NULL) + (o->pw.env != NULL) + (o->pw.cmd != NULL) > 1)
		return cli_usage_error("doctor", _("give one of --password-file, "
		    "--password-env, --password-cmd"));
	if (o->send && o->to == NULL)
		return cli_usage_error("doctor", _("--send needs --to (and --from): "
		    "the test message goes there"));
	if (o->insecure && o->ca_file != NULL)
		return cli_usage_error("doctor", _("--insecure does not check the "
		    "certificate, so --ca-file would not be used: give one"));
	return 0;
}

/* Everything the configuration is made of, and who owns it. */
struct doctor_run {
	struct sk_doctor_config cfg;
	struct sk_providers *db;
	struct sk_config conf;
	bool conf_loaded;
	const struct sk_account *acct;
	char *secret;
	char title[512];
	char pwfile[PATH_MAX];	/* the account's paths, "~/" expanded */
	char cafile[PATH_MAX];
	struct cli_oauth oauth;	/* an account whose OAuth2 token we keep */
	char oauth_detail[SK_ERROR_MESSAGE_MAX];
};

/*
 * An account whose OAuth2 token smtpkit keeps (no password source given,
 * no password mechanism asked for): the token as the secret, renewed when
 * due.  When there is none to use, the doctor runs without a login and
 * the verdict says why (cfg.oauth_error); only a setting that makes no
 * sense at all (no flow, no endpoint) stops it.
 */
static int
doctor_oauth(struct doctor_run *d, struct doctor_opts *o,
    const struct password_src *pw, const char **user, struct sk_error *err)
{
	struct sk_error e;
	int timeout = (o->timeout_s > 0 ? o->timeout_s : DOCTOR_TIMEOUT_S) *
	    1000;

	if (d->acct == NULL || d->secret != NULL || pw->file != NULL ||
	    pw->env != NULL || pw->cmd != NULL ||
	    (o->auth != SK_AUTH_NONE && !sk_auth_mech_is_token(o->auth)) ||
	    !sk_oauth_account_managed(d->acct, d->cfg.provider))
		return 0;
	d->cfg.oauth = true;
	if (*user == NULL)
		*user = o->from;
	if (cli_oauth_init(&d->oauth, d->acct, d->cfg.provider, NULL,
	    timeout, &e) == -1) {
		if (e.oauth_error != SK_OAUTH_ERR_NO_CLIENT) {
			*err = e;
			return -1;
		}
	} else {
		if (o->auth == SK_AUTH_NONE)
			o->auth = d->oauth.client.mech;
		if (cli_oauth_get(&d->oauth, NULL, &e) == 0) {
			if ((d->secret = strdup(
			    d->oauth.token.access_token)) == NULL)
				return sk_error_set(err, SK_STAGE_LOCAL,
				    SK_ERR_LOCAL, _("out of memory"));
			d->cfg.oauth_expires_at = d->oauth.token.expires_at;
			d->cfg.oauth_scope = d->oauth.token.scope;
			return 0;
		}
	}
	d->cfg.oauth_error = e.oauth_error != SK_OAUTH_ERR_NONE ?
	    e.oauth_error : SK_OAUTH_ERR_OTHER;
	(void)snprintf(d->oauth_detail, sizeof(d->oauth_detail), "%s",
	    e.message);
	d->cfg.oauth_detail = d->oauth_detail;
	*user = NULL;
	return 0;
}

/*
 * The server refused the token as a bad one: renew it (unless that was
 * just done) and run the doctor once more; when renewing fails, judge
 * again with why.  Returns -1 only when the doctor could not run.
 */
static int
doctor_oauth_retry(struct doctor_run *d, struct sk_doctor_report *report,
    struct sk_error *err)
{
	struct sk_error e;
	char *old;

	if (!d->cfg.oauth || d->cfg.oauth_error != SK_OAUTH_ERR_NONE ||
	    d->oauth.refreshed || !d->oauth.ready ||
	    report->verdict != SK_VERDICT_OAUTH_TOKEN_EXPIRED ||
	    !sk_oauth_token_refused(&report->err))
		return 0;
	if (cli_oauth_get(&d->oauth, d->oauth.token.access_token, &e) == -1) {
		d->cfg.oauth_error = e.oauth_error != SK_OAUTH_ERR_NONE ?
		    e.oauth_error : SK_OAUTH_ERR_OTHER;
		(void)snprintf(d->oauth_detail, sizeof(d->oauth_detail), "%s",
		    e.message);
		d->cfg.oauth_detail = d->oauth_detail;
		return sk_doctor_judge(&d->cfg, report) == -1 ?
		    sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    _("out of memory")) : 0;
	}
	old = d->secret;
	if ((d->secret = strdup(d->oauth.token.access_token)) == NULL) {
		d->secret = old;
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    _("out of memory"));
	}
	cli_secret_free(old);
	d->cfg.secret = d->secret;
	d->cfg.oauth_expires_at = d->oauth.token.expires_at;
	d->cfg.oauth_scope = d->oauth.token.scope;
	sk_doctor_report_fini(report);
	return sk_doctor_run(&d->cfg, report, err);
}

static int
load_config(struct doctor_run *d, const char *path, struct sk_error *err)
{
	if (d->conf_loaded)
		return 0;
	if (sk_config_load(&d->conf, path, err) == -1)
		return -1;
	d->conf_loaded = true;
	return 0;
}

/* The account, preset or host that -- in this order -- the options name. */
static int
choose_target(struct doctor_run *d, struct doctor_opts *o,
    struct sk_error *err)
{
	const struct sk_provider *p = NULL;
	const struct sk_provider_region *region = NULL;
	const char *addr;

	if (o->account != NULL) {
		if (load_config(d, o->config, err) == -1)
			return -1;
		if ((d->acct = sk_config_find(&d->conf, o->account)) == NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    _("no account named '%s' in the configuration "
			    "(smtpkit setup makes one)"), o->account);
		return 0;
	}
	if (o->provider != NULL) {
		if ((p = sk_providers_find(d->db, o->provider, &region)) ==
		    NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    _("unknown provider '%s' ('smtpkit providers' "
			    "lists them)"), o->provider);
		d->cfg.provider = p;
		d->cfg.region = region;
		d->cfg.host = o->host;
		return 0;
	}
	if (o->host != NULL) {
		/* A preset's own host keeps the preset's knowledge. */
		d->cfg.provider = cli_provider_by_host(d->db, o->host, &region);
		d->cfg.region = region;
		d->cfg.host = o->host;
		return 0;
	}
	/* Nothing named: the account of this sender, the default account,
	 * or the preset of the address's domain. */
	if (load_config(d, o->config, err) == -1)
		return -1;
	addr = o->from != NULL ? o->from : o->user;
	if (addr != NULL && (d->acct = sk_config_by_from(&d->conf, addr)) !=
	    NULL)
		return 0;
	if (addr == NULL && (d->acct = sk_config_default(&d->conf)) != NULL)
		return 0;
	if (addr != NULL && (p = sk_providers_by_domain(d->db, addr)) != NULL) {
		d->cfg.provider = p;
		d->cfg.region = sk_provider_region_by_domain(p, addr);
		return 0;
	}
	return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
	    _("doctor: which server? Give --account NAME, --provider ID or "
	    "--host HOST (or --from an address of a known provider)"));
}

/* Apply the account's settings under what the command line says. */
static int
apply_account(struct doctor_run *d, struct doctor_opts *o,
    struct password_src *pw, const char **user, struct sk_error *err)
{
	const struct sk_account *a = d->acct;
	const struct sk_provider_region *region = NULL;

	if (a->provider != NULL) {
		if ((d->cfg.provider = sk_providers_find(d->db, a->provider,
		    &region)) == NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    _("%s: account '%s': unknown provider '%s'"),
			    a->origin != NULL ? a->origin : "config", a->name,
			    a->provider);
		d->cfg.region = region;
	}
	d->cfg.host = a->host;
	if (d->cfg.host == NULL && d->cfg.provider == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    _("%s: account '%s' has neither provider nor host"),
		    a->origin != NULL ? a->origin : "config", a->name);
	if (o->port == 0)
		o->port = a->port;
	if (!o->tls_given && a->tls_set) {
		o->tls = a->tls;
		o->tls_auto = false;
	}
	if (d->cfg.host != NULL && d->cfg.provider == NULL)
		d->cfg.provider = cli_provider_by_host(d->db, d->cfg.host,
		    &d->cfg.region);
	if (*user == NULL)
		*user = a->user;
	if (o->from == NULL)
		o->from = a->from;
	if (o->auth == SK_AUTH_NONE)
		o->auth = a->auth;
	if (o->ca_file == NULL && !o->insecure && a->ca_file != NULL) {
		if (sk_config_expand_path(a->ca_file, d->cafile,
		    sizeof(d->cafile)) == -1)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    _("%s: account '%s': cannot expand ca-file %s"),
			    a->origin != NULL ? a->origin : "config", a->name,
			    a->ca_file);
		o->ca_file = d->cafile;
	}
	if (o->timeout_s == 0)
		o->timeout_s = a->timeout;
	if (d->cfg.tls_min == SK_TLS_ANY)
		d->cfg.tls_min = a->tls_min;
	if (pw->file == NULL && pw->env == NULL && pw->cmd == NULL) {
		if (a->password != NULL) {
			if ((d->secret = strdup(a->password)) == NULL)
				return sk_error_set(err, SK_STAGE_LOCAL,
				    SK_ERR_LOCAL, _("out of memory"));
			return 0;
		}
		if (a->password_file != NULL) {
			if (sk_config_expand_path(a->password_file, d->pwfile,
			    sizeof(d->pwfile)) == -1)
				return sk_error_set(err, SK_STAGE_LOCAL,
				    SK_ERR_CONFIG, _("%s: account '%s': cannot "
				    "expand password-file %s"),
				    a->origin != NULL ? a->origin : "config",
				    a->name, a->password_file);
			pw->file = d->pwfile;
		}
		pw->env = a->password_env;
		pw->cmd = a->password_cmd;
	}
	return 0;
}

static void
make_title(struct doctor_run *d, const char *lang)
{
	const struct sk_provider *p = d->cfg.provider;
	const char *host = d->cfg.host;
	const char *name;
	char port[16] = "";

	if (host == NULL && d->cfg.region != NULL)
		host = d->cfg.region->host;
	if (host == NULL && p != NULL)
		host = p->host;
	if (d->cfg.port != 0)
		(void)snprintf(port, sizeof(port), ":%u", d->cfg.port);
	if (p != NULL) {
		name = strcmp(lang, "zh") == 0 && p->name_zh != NULL ?
		    p->name_zh : p->name != NULL ? p->name : p->id;
		(void)snprintf(d->title, sizeof(d->title),
		    _("smtpkit doctor: %s%s (%s)"), host != NULL ? host : "?",
		    port, name);
	} else {
		(void)snprintf(d->title, sizeof(d->title),
		    _("smtpkit doctor: %s%s"), host != NULL ? host : "?", port);
	}
}

static void
doctor_failed(const struct doctor_opts *o, const struct sk_error *e)
{
	cJSON *j, *x;
	char *s;

	cli_print_error(e);
	if (!o->json)
		return;
	j = cJSON_CreateObject();
	x = cJSON_AddObjectToObject(j, "error");
	cJSON_AddStringToObject(x, "stage", sk_stage_name(e->stage));
	cJSON_AddStringToObject(x, "kind", sk_error_kind_name(e->kind));
	cJSON_AddStringToObject(x, "message", e->message);
	cJSON_AddNumberToObject(x, "exit", cli_exit_code(e));
	if ((s = cJSON_PrintUnformatted(j)) != NULL) {
		puts(s);
		free(s);
	}
	cJSON_Delete(j);
}

int
cmd_doctor(int argc, char **argv)
{
	struct doctor_opts o;
	struct doctor_run d;
	struct sk_doctor_report report;
	struct sk_error err;
	struct cli_trace tr;
	struct password_src pw;
	const char *user, *lang;
	bool have_report = false;
	cJSON *j;
	char *s;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&d, 0, sizeof(d));
	memset(&report, 0, sizeof(report));
	sk_error_clear(&err);

	lang = cli_i18n_init(cli_lang_arg(argc, argv));
	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc == -2 ? EXIT_OK : rc;

	if ((d.db = cli_providers_load(&err)) == NULL)
		goto fail;
	if (choose_target(&d, &o, &err) == -1)
		goto fail;
	pw = o.pw;
	user = o.user;
	if (d.acct != NULL && apply_account(&d, &o, &pw, &user, &err) == -1)
		goto fail;
	if (o.to != NULL && o.from == NULL) {
		sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    _("doctor: --to needs --from (the sender to try)"));
		goto fail;
	}
	if (user == NULL && (pw.file != NULL || pw.env != NULL ||
	    pw.cmd != NULL) && d.acct == NULL) {
		sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    _("doctor: a password was given without --user"));
		goto fail;
	}
	if (o.ca_file != NULL && access(o.ca_file, R_OK) == -1) {
		sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    _("--ca-file %s: %s"), o.ca_file, strerror(errno));
		err.sys_errno = errno;
		goto fail;
	}
	if (doctor_oauth(&d, &o, &pw, &user, &err) == -1)
		goto fail;
	if (user != NULL && d.secret == NULL &&
	    cli_password(&pw, &d.secret, &err) == -1)
		goto fail;

	d.cfg.db = d.db;
	d.cfg.port = o.port;
	d.cfg.tls = o.tls;
	d.cfg.tls_auto = o.tls_auto;
	d.cfg.user = user;
	d.cfg.secret = d.secret;
	d.cfg.auth = o.auth;
	d.cfg.from = o.from;
	d.cfg.to = o.to;
	d.cfg.send = o.send;
	d.cfg.timeout_ms = (o.timeout_s > 0 ? o.timeout_s : DOCTOR_TIMEOUT_S) *
	    1000;
	d.cfg.ca_file = o.ca_file;
	d.cfg.insecure = o.insecure;
	d.cfg.allow_plaintext_auth = o.allow_plaintext_auth;
	d.cfg.account = d.acct != NULL ? d.acct->name : NULL;
	d.cfg.lang = lang;
	if (o.verbose > 1) {
		cli_trace_init(&tr, o.verbose - 1);
		d.cfg.trace.fn = cli_trace_fn;
		d.cfg.trace.arg = &tr;
	}
	if (o.insecure)
		fprintf(stderr, _("%s: warning: --insecure: the server's "
		    "certificate is not checked\n"), cli_progname);
	make_title(&d, lang);

	if (sk_doctor_run(&d.cfg, &report, &err) == -1)
		goto fail;
	have_report = true;
	if (doctor_oauth_retry(&d, &report, &err) == -1) {
		have_report = false;
		goto fail;
	}
	cli_secret_free(d.secret);
	d.secret = NULL;

	if (o.json) {
		j = doctor_json(&report);
		if (j == NULL || (s = cJSON_PrintUnformatted(j)) == NULL) {
			cJSON_Delete(j);
			sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    _("out of memory"));
			goto fail;
		}
		puts(s);
		free(s);
		cJSON_Delete(j);
	} else {
		cli_doctor_print(&report, d.title, o.verbose);
	}
	rc = cli_verdict_exit_code(report.verdict);
	goto out;
fail:
	doctor_failed(&o, &err);
	rc = cli_exit_code(&err);
out:
	fflush(stdout);
	if (have_report)
		sk_doctor_report_fini(&report);
	cli_secret_free(d.secret);
	cli_oauth_fini(&d.oauth);
	sk_config_fini(&d.conf);	/* zeroed when never loaded */
	sk_providers_free(d.db);
	return rc;
}
