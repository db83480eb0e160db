/*
 * smtpkit: address lists in message headers (RFC 5322 §3.4).
 *
 * Two passes over a header value: a tokenizer that removes CFWS (white
 * space, line folds and nested comments, §3.2.2) and yields atoms, quoted
 * strings, domain literals and specials; then a recursive descent over the
 * tokens for address-list, group, name-addr and addr-spec.  The obsolete
 * syntax of §4.4 (empty list elements, routes, CFWS around the dots of a
 * local part or domain, dots in phrases) is read as well, because old
 * mailers still write it and a recipient must not be lost over it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/addrlist.h"

enum tok_type {
	T_ATOM,		/* 1*atext, UTF-8 octets included (RFC 6532 §3.2) */
	T_QSTR,		/* quoted-string, quotes included */
	T_DLIT,		/* domain-literal, brackets included */
	T_SPECIAL,	/* one of < > @ , ; : . */
	T_END
};

struct tok {
	enum tok_type type;
	size_t start, end;	/* octets of the token in the text */
};

struct parser {
	const char *s;
	size_t len;
	struct tok *t;
	size_t n, i;
	char *addr, *name, *group, *local;
	sk_addrlist_fn *fn;
	void *arg;
	struct sk_error *err;
	int count;
	bool stopped;
	bool group_ended;	/* the last address was a group */
};

/* RFC 5322 §3.2.3 atext; octets above 127 are UTF-8 (RFC 6532). */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_special(unsigned char c)
{
	return c != '\0' && strchr("<>@,;:.", c) != NULL;
}

/* FWS: white space and the CR LF of a fold (§3.2.2). */
static bool
is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
syntax(struct parser *p, size_t at, const char *what)
{
	if (at < p->len)
		return sk_error_set(p->err, SK_STAGE_LOCAL, SK_ERR_DATA,
		    "%s at octet %zu", what, at + 1);
	return sk_error_set(p->err, SK_STAGE_LOCAL, SK_ERR_DATA,
	    "%s at the end", what);
}

/* A comment, nested comments and quoted-pairs included (§3.2.2). */
static int
skip_comment(struct parser *p, size_t *i)
{
	size_t open = *i, depth = 0;

	for (; *i < p->len; (*i)++) {
		switch (p->s[*i]) {
		case '\\':
			if (*i + 1 < p->len)
				(*i)++;
			break;
		case '(':
			depth++;
			break;
		case ')':
			if (--depth == 0) {
				(*i)++;
				return 0;
			}
			break;
		default:
			break;
		}
	}
	return syntax(p, open, "a comment is not closed (the '(')");
}

/* Up to the closing quote or bracket, stepping over quoted-pairs. */
static int
skip_quoted(struct parser *p, size_t *i, char close, const char *what)
{
	size_t open = *i;

	for ((*i)++; *i < p->len; (*i)++) {
		if (p->s[*i] == '\\' && *i + 1 < p->len) {
			(*i)++;
			continue;
		}
		if (close == ']' && p->s[*i] == '[')
			return syntax(p, *i, "'[' inside a domain literal");
		if (p->s[*i] == close) {
			(*i)++;
			return 0;
		}
	}
	return syntax(p, open, what);
}

static int
tokenize(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->s;
	size_t i = 0, start;
	const char *nul;
	char why[64];
	struct tok *k;

	/* A NUL would cut the strings handed to the callback short. */
	if ((nul = memchr(p->s, '\0', p->len)) != NULL)
		return syntax(p, (size_t)(nul - p->s), "a NUL octet");
	while (i < p->len) {
		if (is_fws(s[i])) {
			i++;
			continue;
		}
		if (s[i] == '(') {
			if (skip_comment(p, &i) == -1)
				return -1;
			continue;
		}
		k = &p->t[p->n];
		k->start = start = i;
		if (s[i] == '"') {
			if (skip_quoted(p, &i, '"', "a quoted string is not "
			    "closed (the '\"')") == -1)
				return -1;
			k->type = T_QSTR;
		} else if (s[i] == '[') {
			if (skip_quoted(p, &i, ']', "a domain literal is not "
			    "closed (the '[')") == -1)
				return -1;
			k->type = T_DLIT;
		} else if (is_special(s[i])) {
			i++;
			k->type = T_SPECIAL;
		} else if (is_atext(s[i])) {
			while (i < p->len && is_atext(s[i]))
				i++;
			k->type = T_ATOM;
		} else {
			if (s[i] == ')' || s[i] == ']' || s[i] == '\\')
				(void)snprintf(why, sizeof(why),
				    "unexpected '%c'", s[i]);
			else
				(void)snprintf(why, sizeof(why),
				    "the octet 0x%02x is not allowed", s[i]);
			return syntax(p, start, why);
		}
		k->end = i;
		p->n++;
	}
	p->t[p->n].type = T_END;
	p->t[p->n].start = p->t[p->n].end = p->len;
	return 0;
}

static const struct tok *
peek(const struct parser *p)
{
	return &p->t[p->i];
}

static bool
peek_special(const struct parser *p, char c)
{
	const struct tok *k = peek(p);

	return k->type == T_SPECIAL && p->s[k->start] == c;
}

static bool
is_word(const struct tok *k)
{
	return k->type == T_ATOM || k->type == T_QSTR;
}

/* Append a token's meaning: atoms as they are, quoted strings undone. */
static size_t
put_token(const struct parser *p, const struct tok *k, char *out, size_t o)
{
	size_t i;

	if (k->type != T_QSTR) {
		memcpy(out + o, p->s + k->start, k->end - k->start);
		return o + k->end - k->start;
	}
	for (i = k->start + 1; i + 1 < k->end; i++) {
		if (p->s[i] == '\\' && i + 2 < k->end)
			i++;
		/* A fold inside the quotes is not part of the text, and a
		 * line break must never reach an envelope, even escaped. */
		if (p->s[i] == '\r' || p->s[i] == '\n')
			continue;
		out[o++] = p->s[i];
	}
	return o;
}

/*
 * A display name from tokens [from, to): words, undone, with one space
 * where the text had white space or a comment between two tokens, so that
 * obs-phrase dots ("J. Doe") and a bare address used as a name keep their
 * look.
 */
static void
phrase(const struct parser *p, size_t from, size_t to, char *out)
{
	size_t k, o = 0;

	for (k = from; k < to; k++) {
		if (o > 0 && p->t[k].start != p->t[k - 1].end)
			out[o++] = ' ';
		o = put_token(p, &p->t[k], out, o);
	}
	out[o] = '\0';
}

/* Is s (len octets) a dot-atom, so that it needs no quotes? */
static bool
is_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

static int
parse_domain(struct parser *p, size_t *o)
{
	const struct tok *k = peek(p);
	size_t i;

	if (k->type == T_DLIT) {
		/*
		 * FWS inside a literal is not part of it (§3.4.1); a
		 * quoted-pair (obs-dtext) is undone and written again only
		 * where dtext needs it, so that the result reads back as
		 * itself.
		 */
		p->addr[(*o)++] = '[';
		for (i = k->start + 1; i + 1 < k->end; i++) {
			if (p->s[i] == '\\' && i + 2 < k->end)
				i++;
			if (is_fws((unsigned char)p->s[i]))
				continue;
			if (p->s[i] == '[' || p->s[i] == ']' || p->s[i] == '\\')
				p->addr[(*o)++] = '\\';
			p->addr[(*o)++] = p->s[i];
		}
		p->addr[(*o)++] = ']';
		p->i++;
		return 0;
	}
	for (;;) {
		k = peek(p);
		if (k->type != T_ATOM)
			return syntax(p, k->start, "a domain name is missing");
		*o = put_token(p, k, p->addr, *o);
		p->i++;
		if (!peek_special(p, '.'))
			return 0;
		p->addr[(*o)++] = '.';
		p->i++;
	}
}

/*
 * addr-spec = local-part "@" domain, the local part being words joined
 * by dots (§3.4.1, obs-local-part).  Without "@", a lone local part.
 * Builds p->addr; *has_domain says which it was.
 */
static int
parse_addr_spec(struct parser *p, bool *has_domain)
{
	const struct tok *k;
	size_t o = 0, l = 0, i;

	for (;;) {
		k = peek(p);
		if (!is_word(k))
			return syntax(p, k->start, k->type == T_END ?
			    "an address is missing" : "an address was "
			    "expected");
		l = put_token(p, k, p->local, l);
		p->i++;
		if (!peek_special(p, '.'))
			break;
		p->local[l++] = '.';
		p->i++;
	}
	k = peek(p);
	if (is_word(k))
		return syntax(p, k->start, "a space in an address (put the "
		    "name in quotes and the address in <>)");
	if (is_dot_atom(p->local, l)) {
		memcpy(p->addr, p->local, l);
		o = l;
	} else {
		/* RFC 5321 §4.1.2 Quoted-string: escape only '"' and '\'. */
		p->addr[o++] = '"';
		for (i = 0; i < l; i++) {
			if (p->local[i] == '"' || p->local[i] == '\\')
				p->addr[o++] = '\\';
			p->addr[o++] = p->local[i];
		}
		p->addr[o++] = '"';
	}
	*has_domain = peek_special(p, '@');
	if (*has_domain) {
		p->addr[o++] = '@';
		p->i++;
		if (parse_domain(p, &o) == -1)
			return -1;
	}
	p->addr[o] = '\0';
	return 0;
}

static int
report(struct parser *p, bool has_domain)
{
	struct sk_mailbox mb;

	mb.addr = p->addr;
	mb.name = p->name;
	mb.group = p->group;
	mb.has_domain = has_domain;
	p->count++;
	if (p->fn != NULL && p->fn(p->arg, &mb) != 0) {
		p->stopped = true;
		return -1;
	}
	return 0;
}

/* "<" [obs-route] addr-spec ">" (§3.4, §4.4). */
static int
parse_angle(struct parser *p)
{
	const struct tok *k;
	size_t o;
	bool has_domain;

	p->i++;		/* '<' */
	if (peek_special(p, '@')) {
		/* obs-route: "@a.example,@b.example:" is dropped. */
		while (peek_special(p, '@') || peek_special(p, ',')) {
			if (peek_special(p, ',')) {
				p->i++;
				continue;
			}
			p->i++;
			o = 0;
			if (parse_domain(p, &o) == -1)
				return -1;
		}
		k = peek(p);
		if (!peek_special(p, ':'))
			return syntax(p, k->start, "a route in <> must end "
			    "with ':'");
		p->i++;
	}
	k = peek(p);
	if (peek_special(p, '>'))
		return syntax(p, k->start, "an empty address <>");
	if (parse_addr_spec(p, &has_domain) == -1)
		return -1;
	k = peek(p);
	if (!peek_special(p, '>'))
		return syntax(p, k->start, "'>' was expected");
	p->i++;
	return report(p, has_domain);
}

static int parse_list(struct parser *, bool);

/* A display name holds words and dots, never a domain literal. */
static int
check_phrase(struct parser *p, size_t from, size_t to)
{
	size_t k;

	for (k = from; k < to; k++)
		if (p->t[k].type == T_DLIT)
			return syntax(p, p->t[k].start, "a domain literal "
			    "in a display name");
	return 0;
}

/* display-name angle-addr, the name being tokens [from, lt). */
static int
name_addr(struct parser *p, size_t from, size_t lt)
{
	if (check_phrase(p, from, lt) == -1)
		return -1;
	phrase(p, from, lt, p->name);
	p->i = lt;
	return parse_angle(p);
}

static int
parse_address(struct parser *p, bool in_group)
{
	const struct tok *k;
	size_t from = p->i, at;
	bool has_domain;

	/* What follows the leading words decides what they are. */
	for (at = p->i; is_word(&p->t[at]) || p->t[at].type == T_DLIT ||
	    (p->t[at].type == T_SPECIAL && p->s[p->t[at].start] == '.');
	    at++)
		;
	k = &p->t[at];
	if (k->type == T_SPECIAL && p->s[k->start] == '<')
		return name_addr(p, from, at);
	if (k->type == T_SPECIAL && p->s[k->start] == ':') {
		if (in_group)
			return syntax(p, k->start, "a group inside a group");
		if ((size_t)(k - p->t) == from)
			return syntax(p, k->start, "a group without a name "
			    "before ':'");
		if (check_phrase(p, from, (size_t)(k - p->t)) == -1)
			return -1;
		phrase(p, from, (size_t)(k - p->t), p->group);
		p->i = (size_t)(k - p->t) + 1;
		if (parse_list(p, true) == -1)
			return -1;
		/* A group ends with ';'; at the very end it is forgiven. */
		if (peek_special(p, ';'))
			p->i++;
		else if (peek(p)->type != T_END)
			return syntax(p, peek(p)->start, "';' was expected "
			    "at the end of the group");
		p->group[0] = '\0';
		p->group_ended = true;
		return 0;
	}
	p->name[0] = '\0';
	if (parse_addr_spec(p, &has_domain) == -1)
		return -1;
	/*
	 * "bob@example.org <bob@example.org>": a bare address written as the
	 * display name, as some programs do.  The name is only a name.
	 */
	if (peek_special(p, '<'))
		return name_addr(p, from, p->i);
	return report(p, has_domain);
}

/* address-list, or a group's mailbox-list when in_group. */
static int
parse_list(struct parser *p, bool in_group)
{
	const struct tok *k;

	for (;;) {
		while (peek_special(p, ','))
			p->i++;		/* obs-addr-list: empty elements */
		k = peek(p);
		if (k->type == T_END || (in_group && peek_special(p, ';')))
			return 0;
		p->group_ended = false;
		if (parse_address(p, in_group) == -1)
			return -1;
		k = peek(p);
		/* "A:a@x;B:b@y;" lacks the ',' between groups; read it all
		 * the same, as the ';' ends the first one unambiguously. */
		if (peek_special(p, ',') || (p->group_ended &&
		    k->type != T_END))
			continue;
		if (k->type == T_END || (in_group && peek_special(p, ';')))
			return 0;
		return syntax(p, k->start, peek_special(p, ';') ?
		    "';' outside a group" : "',' was expected between "
		    "addresses");
	}
}

int
sk_addrlist_parse(const char *text, size_t len, sk_addrlist_fn *fn,
    void *arg, struct sk_error *err)
{
	struct parser p;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	p.s = text;
	p.len = len;
	p.fn = fn;
	p.arg = arg;
	p.err = err;
	/* At most one token per octet, plus the end; an escaped local part
	 * takes at most twice its octets and two quotes. */
	p.t = malloc((len + 1) * sizeof(*p.t));
	p.addr = malloc(2 * len + 8);
	p.local = malloc(len + 1);
	p.name = malloc(len + 1);
	p.group = malloc(len + 1);
	if (p.t == NULL || p.addr == NULL || p.local == NULL ||
	    p.name == NULL || p.group == NULL) {
		(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
		goto out;
	}
	p.name[0] = p.group[0] = '\0';
	if (tokenize(&p) == -1 || parse_list(&p, false) == -1)
		goto out;
	rc = p.count;
out:
	free(p.t);
	free(p.addr);
	free(p.local);
	free(p.name);
	free(p.group);
	return rc;
}
