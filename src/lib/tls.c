/*
 * smtpkit: the OpenSSL side of a connection: the client context (minimum
 * version, trust store, host name verification), the handshake against a
 * deadline, and the facts a person needs when it fails.
 *
 * Each connection gets its own SSL_CTX; nothing is cached here beyond what
 * OpenSSL keeps itself, and the one BIO_METHOD below.  The trust store is
 * the hashed directory when there is one: OpenSSL then reads only the
 * certificates a chain needs, instead of parsing the whole bundle (a
 * few hundred certificates) at every start.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpkit/clock.h"
#include "smtpkit/conn.h"
#include "conn_internal.h"

#define TLS_TIME_MAX	32

/*
 * A socket BIO of our own.  OpenSSL's writes with write(2), which raises
 * SIGPIPE when the peer has gone; a library must not depend on every
 * application ignoring that signal, so this one uses send(2) with
 * MSG_NOSIGNAL.  It also keeps the first octets of the handshake, so that
 * a failure can say what the server sent instead of TLS.
 */
static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

static int
tls_bio_write(BIO *b, const char *buf, size_t len, size_t *written)
{
	struct sk_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	*written = 0;
	do
		r = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (r == -1 && errno == EINTR);
	if (r >= 0) {
		*written = (size_t)r;
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_write(b);
	return 0;
}

static int
tls_bio_read(BIO *b, char *buf, size_t len, size_t *got)
{
	struct sk_conn *c = BIO_get_data(b);
	size_t keep;
	ssize_t r;

	BIO_clear_retry_flags(b);
	*got = 0;
	do
		r = recv(c->fd, buf, len, 0);
	while (r == -1 && errno == EINTR);
	if (r > 0) {
		if (!c->tls_up && c->npeek < sizeof(c->peek)) {
			keep = sizeof(c->peek) - c->npeek;
			if (keep > (size_t)r)
				keep = (size_t)r;
			memcpy(c->peek + c->npeek, buf, keep);
			c->npeek += keep;
		}
		*got = (size_t)r;
		return 1;
	}
	if (r == 0)
		c->bio_eof = true;	/* BIO_eof(): "unexpected EOF" */
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_read(b);
	return 0;
}

static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct sk_conn *c = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return c != NULL && c->bio_eof;
	case BIO_C_GET_FD:
		if (c == NULL)
			return -1;
		if (ptr != NULL)
			*(int *)ptr = c->fd;
		return c->fd;
	default:
		return 0;
	}
}

static void
tls_bio_init(void)
{
	BIO_METHOD *m;
	int idx;

	if ((idx = BIO_get_new_index()) == -1)
		return;
	m = BIO_meth_new(idx | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
	    "smtpkit socket");
	if (m == NULL)
		return;
	if (!BIO_meth_set_write_ex(m, tls_bio_write) ||
	    !BIO_meth_set_read_ex(m, tls_bio_read) ||
	    !BIO_meth_set_ctrl(m, tls_bio_ctrl)) {
		BIO_meth_free(m);
		return;
	}
	tls_bio_method = m;	/* lives as long as the process */
}

static BIO *
tls_bio_new(struct sk_conn *c)
{
	BIO *b;

	(void)pthread_once(&tls_bio_once, tls_bio_init);
	if (tls_bio_method == NULL || (b = BIO_new(tls_bio_method)) == NULL)
		return NULL;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	return b;
}

static const char *const tls_version_names[] = {
	[SK_TLS_ANY] = "TLSv1.2",	/* what "any" means: the default */
	[SK_TLS_1_0] = "TLSv1.0",
	[SK_TLS_1_1] = "TLSv1.1",
	[SK_TLS_1_2] = "TLSv1.2",
	[SK_TLS_1_3] = "TLSv1.3",
};

const char *
sk_tls_version_name(enum sk_tls_version v)
{
	if ((unsigned)v >= sizeof(tls_version_names) /
	    sizeof(tls_version_names[0]))
		return "unknown";
	return tls_version_names[v];
}

int
sk_tls_version_parse(const char *s, enum sk_tls_version *v)
{
	static const struct {
		const char *num;
		enum sk_tls_version v;
	} nums[] = {
		{ "1", SK_TLS_1_0 },
		{ "1.0", SK_TLS_1_0 }, { "1_0", SK_TLS_1_0 },
		{ "1.1", SK_TLS_1_1 }, { "1_1", SK_TLS_1_1 },
		{ "1.2", SK_TLS_1_2 }, { "1_2", SK_TLS_1_2 },
		{ "1.3", SK_TLS_1_3 }, { "1_3", SK_TLS_1_3 },
	};
	size_t i;

	if (s == NULL || v == NULL)
		return -1;
	if (strcasecmp(s, "any") == 0 || strcasecmp(s, "default") == 0) {
		*v = SK_TLS_ANY;
		return 0;
	}
	if (strncasecmp(s, "tls", 3) == 0) {
		s += 3;
		if (*s == 'v' || *s == 'V')
			s++;
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(s, nums[i].num) == 0) {
			*v = nums[i].v;
			return 0;
		}
	}
	return -1;
}

static int
tls_proto(enum sk_tls_version v)
{
	switch (v) {
	case SK_TLS_1_0:
		return TLS1_VERSION;
	case SK_TLS_1_1:
		return TLS1_1_VERSION;
	case SK_TLS_ANY:
	case SK_TLS_1_2:
		return TLS1_2_VERSION;
	case SK_TLS_1_3:
		return TLS1_3_VERSION;
	default:
		return -1;
	}
}

/* "2026-01-01 00:00:00 UTC", or "" when t is missing or malformed. */
static void
tls_time(const ASN1_TIME *t, char *buf, size_t cap)
{
	struct tm tm;

	buf[0] = '\0';
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return;
	if (strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		buf[0] = '\0';
}

static void
tls_now(char *buf, size_t cap)
{
	struct tm tm;
	time_t now = time(NULL);

	buf[0] = '\0';
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		buf[0] = '\0';
}

/* Copy len octets of a certificate string, printable ASCII only. */
static void
tls_append_str(char *buf, size_t cap, size_t *off, const unsigned char *s,
    int len)
{
	int i;

	for (i = 0; i < len && *off + 1 < cap; i++)
		buf[(*off)++] = isprint(s[i]) ? (char)s[i] : '?';
	if (*off < cap)
		buf[*off] = '\0';
}

static void
tls_append(char *buf, size_t cap, size_t *off, const char *s)
{
	tls_append_str(buf, cap, off, (const unsigned char *)s,
	    (int)strlen(s));
}

/* An X509_NAME in its one-line RFC 2253 form. */
static void
tls_name(const X509_NAME *name, char *buf, size_t cap)
{
	BIO *mem;
	char *p;
	long n;
	size_t off = 0;

	buf[0] = '\0';
	if (name == NULL || (mem = BIO_new(BIO_s_mem())) == NULL)
		return;
	if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(mem, &p)) > 0)
		tls_append_str(buf, cap, &off, (const unsigned char *)p,
		    n > INT32_MAX ? INT32_MAX : (int)n);
	BIO_free(mem);
}

/*
 * The names a certificate is valid for, comma-separated: its DNS
 * subjectAltNames, its IP ones when with_ip, or its CN when it has no
 * DNS name (which OpenSSL then checks, as RFC 6125 §6.4.4 allows).
 */
static void
tls_names(X509 *x, bool with_ip, char *buf, size_t cap)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	const X509_NAME *subj;
	char ip[INET6_ADDRSTRLEN];
	size_t off = 0;
	int i, idx, ndns = 0;

	buf[0] = '\0';
	if (x == NULL)
		return;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			if (off > 0)
				tls_append(buf, cap, &off, ", ");
			tls_append_str(buf, cap, &off,
			    ASN1_STRING_get0_data(g->d.dNSName),
			    ASN1_STRING_length(g->d.dNSName));
			ndns++;
		} else if (g->type == GEN_IPADD && with_ip) {
			int len = ASN1_STRING_length(g->d.iPAddress);

			if (inet_ntop(len == 4 ? AF_INET : AF_INET6,
			    ASN1_STRING_get0_data(g->d.iPAddress), ip,
			    sizeof(ip)) == NULL || (len != 4 && len != 16))
				continue;
			if (off > 0)
				tls_append(buf, cap, &off, ", ");
			tls_append(buf, cap, &off, "IP ");
			tls_append(buf, cap, &off, ip);
		}
	}
	GENERAL_NAMES_free(gens);
	if (ndns > 0)
		return;

	subj = X509_get_subject_name(x);
	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx >= 0) {
		const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(
		    X509_NAME_get_entry(subj, idx));

		if (off > 0)
			tls_append(buf, cap, &off, ", ");
		tls_append(buf, cap, &off, "CN ");
		tls_append_str(buf, cap, &off, ASN1_STRING_get0_data(cn),
		    ASN1_STRING_length(cn));
	}
}

static void
tls_cert_info(X509 *x, struct sk_tls_info *info)
{
	if (x == NULL)
		return;
	tls_name(X509_get_subject_name(x), info->subject,
	    sizeof(info->subject));
	tls_name(X509_get_issuer_name(x), info->issuer, sizeof(info->issuer));
	tls_names(x, false, info->sans, sizeof(info->sans));
	/* Only real DNS names belong in sans; drop the CN fallback. */
	if (strncmp(info->sans, "CN ", 3) == 0)
		info->sans[0] = '\0';
	tls_time(X509_get0_notBefore(x), info->not_before,
	    sizeof(info->not_before));
	tls_time(X509_get0_notAfter(x), info->not_after,
	    sizeof(info->not_after));
}

/* The peer's certificate, during or after a handshake, even a failed one. */
static X509 *
tls_leaf(struct sk_conn *c)
{
	STACK_OF(X509) *chain;
	X509 *x;

	if ((x = SSL_get0_peer_certificate(c->ssl)) != NULL)
		return x;
	if (c->vfy_leaf != NULL)
		return c->vfy_leaf;
	/* A client's chain includes the leaf (SSL_get_peer_cert_chain(3)). */
	if ((chain = SSL_get_peer_cert_chain(c->ssl)) != NULL &&
	    sk_X509_num(chain) > 0)
		return sk_X509_value(chain, 0);
	return NULL;
}

static void
tls_fill_info(struct sk_conn *c)
{
	const SSL_CIPHER *cipher;
	struct sk_tls_info *info = &c->info;
	long vr;

	memset(info, 0, sizeof(*info));
	if (SSL_is_init_finished(c->ssl)) {
		(void)snprintf(info->version, sizeof(info->version), "%s",
		    SSL_get_version(c->ssl));
		if ((cipher = SSL_get_current_cipher(c->ssl)) != NULL)
			(void)snprintf(info->cipher, sizeof(info->cipher),
			    "%s", SSL_CIPHER_get_name(cipher));
	}
	tls_cert_info(tls_leaf(c), info);
	vr = SSL_get_verify_result(c->ssl);
	info->verify_result = vr;
	(void)snprintf(info->verify_text, sizeof(info->verify_text), "%s",
	    X509_verify_cert_error_string(vr));
	c->have_info = true;
}

/*
 * Record the peer's certificate and the first failure, with the
 * certificate it concerns, for the message: after a failed handshake
 * OpenSSL no longer says which certificate was at fault.
 */
static int
tls_verify_cb(int ok, X509_STORE_CTX *store)
{
	struct sk_conn *c;
	X509 *x;
	SSL *ssl;

	ssl = X509_STORE_CTX_get_ex_data(store,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (c = SSL_get_app_data(ssl)) == NULL)
		return ok;
	if (c->vfy_leaf == NULL && (x = X509_STORE_CTX_get0_cert(store)) !=
	    NULL && X509_up_ref(x))
		c->vfy_leaf = x;
	if (!ok && c->vfy_err == 0) {
		c->vfy_err = X509_STORE_CTX_get_error(store);
		c->vfy_depth = X509_STORE_CTX_get_error_depth(store);
		if ((x = X509_STORE_CTX_get_current_cert(store)) != NULL &&
		    X509_up_ref(x))
			c->vfy_cert = x;
	}
	return ok;
}

/* True when dir holds at least one "hhhhhhhh.N" link (c_rehash(1)). */
static bool
tls_dir_hashed(const char *dir)
{
	struct dirent *de;
	DIR *d;
	bool found = false;
	size_t i;

	if ((d = opendir(dir)) == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		for (i = 0; i < 8 && isxdigit((unsigned char)de->d_name[i]);
		    i++)
			;
		found = i == 8 && de->d_name[8] == '.' &&
		    isdigit((unsigned char)de->d_name[9]);
	}
	(void)closedir(d);
	return found;
}

static bool
tls_is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Load a PEM file of trust anchors; label says whose it is ("the CA file "). */
static int
tls_load_file(SSL_CTX *ctx, const char *path, const char *label,
    struct sk_error *err)
{
	char ebuf[128];
	unsigned long e;

	if (access(path, R_OK) == -1)
		return sk_error_set(err, SK_STAGE_TLS, SK_ERR_CONFIG,
		    "cannot read %s%s: %s", label, path,
		    sk__errno_text(errno, ebuf, sizeof(ebuf)));
	if (SSL_CTX_load_verify_file(ctx, path) != 1) {
		e = ERR_peek_last_error();
		ERR_clear_error();
		(void)sk_error_set(err, SK_STAGE_TLS, SK_ERR_CONFIG,
		    "%s%s holds no usable PEM certificate (%s)", label, path,
		    e ? ERR_reason_error_string(e) : "unknown error");
		if (err != NULL)
			err->ssl_error = e;
		return -1;
	}
	return 0;
}

/*
 * True when file sits in dir itself: then it is the bundle that
 * update-ca-certificates(8) builds from the same certificates as the
 * hashed links (/etc/ssl/certs/ca-certificates.crt), and reading the
 * directory lazily finds all it holds, without parsing it all.
 */
static bool
tls_bundle_of(const char *file, const char *dir)
{
	char *rf, *rd, *slash;
	bool same = false;

	if ((rf = realpath(file, NULL)) == NULL)
		return false;
	if ((rd = realpath(dir, NULL)) != NULL &&
	    (slash = strrchr(rf, '/')) != NULL) {
		*slash = '\0';
		same = strcmp(rf, rd) == 0;
	}
	free(rf);
	free(rd);
	return same;
}

/*
 * Choose the trust anchors as OpenSSL's default paths would, but
 * cheaper: cfg->ca_file; else SSL_CERT_FILE / SSL_CERT_DIR; else the
 * hashed directory (certificates are read lazily, as a chain needs
 * them), and only when it is missing or unhashed, the bundle file, which
 * costs some 30 ms to parse.  With insecure set, a missing store is no
 * error: the result only feeds the diagnosis.
 */
static int
tls_trust(struct sk_conn *c, SSL_CTX *ctx, const struct sk_tls_config *cfg,
    struct sk_error *err)
{
	const char *file, *dir, *fenv, *denv;
	struct stat st;
	bool hashed;
	size_t len;

	if (cfg->ca_file != NULL) {
		(void)snprintf(c->trust, sizeof(c->trust), "%s", cfg->ca_file);
		return tls_load_file(ctx, cfg->ca_file, "the CA file ", err);
	}

	/* secure_getenv, as OpenSSL: not for set-user-ID programs. */
	fenv = X509_get_default_cert_file_env();
	denv = X509_get_default_cert_dir_env();
	if ((file = secure_getenv(fenv)) != NULL && *file == '\0')
		file = NULL;
	if ((dir = secure_getenv(denv)) != NULL && *dir == '\0')
		dir = NULL;
	if (file != NULL || dir != NULL) {
		/* A list ("a:b") is OpenSSL's to check; so is its file. */
		hashed = dir != NULL && strchr(dir, ':') == NULL &&
		    tls_dir_hashed(dir);
		if (file != NULL && hashed && tls_bundle_of(file, dir))
			file = NULL;
		c->trust[0] = '\0';
		if (file != NULL)
			(void)snprintf(c->trust, sizeof(c->trust), "%s=%s",
			    fenv, file);
		if (dir != NULL) {
			len = strlen(c->trust);
			(void)snprintf(c->trust + len, sizeof(c->trust) - len,
			    "%s%s=%s", len ? ", " : "", denv, dir);
		}
		if (file != NULL) {
			char label[32];

			(void)snprintf(label, sizeof(label), "%s=", fenv);
			if (tls_load_file(ctx, file, label, err) == -1 &&
			    !cfg->insecure)
				return -1;
			sk_error_clear(err);
		}
		if (dir != NULL) {
			if (strchr(dir, ':') == NULL && !cfg->insecure &&
			    (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)))
				return sk_error_set(err, SK_STAGE_TLS,
				    SK_ERR_CONFIG, "%s=%s is not a directory",
				    denv, dir);
			if (SSL_CTX_load_verify_dir(ctx, dir) != 1 &&
			    !cfg->insecure) {
				ERR_clear_error();
				return sk_error_set(err, SK_STAGE_TLS,
				    SK_ERR_CONFIG, "cannot use %s=%s", denv,
				    dir);
			}
		}
		ERR_clear_error();
		return 0;
	}

	dir = X509_get_default_cert_dir();
	file = X509_get_default_cert_file();
	if (tls_dir_hashed(dir)) {
		(void)snprintf(c->trust, sizeof(c->trust), "%s", dir);
		if (SSL_CTX_load_verify_dir(ctx, dir) == 1)
			return 0;
		ERR_clear_error();
	}
	if (tls_is_file(file)) {
		(void)snprintf(c->trust, sizeof(c->trust), "%s", file);
		if (tls_load_file(ctx, file, "the CA bundle ", err) == 0 ||
		    cfg->insecure) {
			sk_error_clear(err);
			return 0;
		}
		return -1;
	}
	(void)snprintf(c->trust, sizeof(c->trust), "none");
	if (cfg->insecure)
		return 0;
	return sk_error_set(err, SK_STAGE_TLS, SK_ERR_CONFIG,
	    "the system CA store is missing: no hashed certificates in %s "
	    "and no bundle %s (install the ca-certificates package, set "
	    "%s or %s, or give a CA file)", dir, file, fenv, denv);
}

/* Drop the TLS state after a failure; the connection is then unusable. */
static void
tls_abort(struct sk_conn *c)
{
	c->dead = true;		/* no close_notify after a fatal error */
	sk__tls_close(c);
}

void
sk__tls_close(struct sk_conn *c)
{
	if (c->ssl != NULL) {
		if (c->tls_up && !c->dead) {
			/*
			 * One non-blocking try: close_notify goes out if the
			 * socket has room; we never wait for the peer's.
			 */
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);	/* frees the BIO too */
		c->ssl = NULL;
	}
	SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	X509_free(c->vfy_leaf);
	X509_free(c->vfy_cert);
	c->vfy_leaf = c->vfy_cert = NULL;
	ERR_clear_error();
}

/* What the server sent instead of TLS, quoted and cut at the line end. */
static void
tls_quote_peek(const struct sk_conn *c, char *buf, size_t cap)
{
	size_t i, off = 0;

	for (i = 0; i < c->npeek && off + 1 < cap; i++) {
		if (c->peek[i] == '\r' || c->peek[i] == '\n')
			break;
		buf[off++] = isprint(c->peek[i]) ? (char)c->peek[i] : '.';
	}
	buf[off] = '\0';
}

/* A TLS record starts with its content type: 20-23 (RFC 8446 §5.1). */
static bool
tls_peek_plaintext(const struct sk_conn *c)
{
	return c->npeek > 0 && (c->peek[0] < 20 || c->peek[0] > 23);
}

/*
 * OpenSSL stopped at the 5-octet record header; the rest of the line
 * ("220 mx.example.com ESMTP") has usually arrived with it and tells a
 * person far more.  The connection is lost anyway, so take it.
 */
static void
tls_peek_more(struct sk_conn *c)
{
	ssize_t r;

	if (!tls_peek_plaintext(c) || c->npeek >= sizeof(c->peek))
		return;
	r = recv(c->fd, c->peek + c->npeek, sizeof(c->peek) - c->npeek,
	    MSG_DONTWAIT);
	if (r > 0)
		c->npeek += (size_t)r;
}

static int
tls_verify_error(struct sk_conn *c, const struct sk_tls_config *cfg,
    long vr, unsigned long e, struct sk_error *err)
{
	char when[TLS_TIME_MAX], now[TLS_TIME_MAX], names[256], who[256];
	char host[SK_ADDR_STR_MAX + 260];
	const char *what = X509_verify_cert_error_string(vr);
	X509 *x, *leaf = tls_leaf(c);
	int rc;

	/* "mx.example.com (192.0.2.1:465)", or just the address. */
	if (cfg->servername != NULL)
		(void)snprintf(host, sizeof(host), "%s (%s)", cfg->servername,
		    c->peer);
	else
		(void)snprintf(host, sizeof(host), "%s", c->peer);

	/* The certificate the failure concerns; the leaf if unknown. */
	x = c->vfy_err == vr && c->vfy_cert != NULL ? c->vfy_cert : leaf;
	who[0] = '\0';
	if (x != NULL && x != leaf && c->vfy_depth > 0)
		tls_name(X509_get_subject_name(x), who, sizeof(who));

	switch (vr) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		tls_time(x ? X509_get0_notAfter(x) : NULL, when, sizeof(when));
		tls_now(now, sizeof(now));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: certificate has expired "
		    "(notAfter %s; local clock %s)%s%s%s", host, when, now,
		    who[0] ? " (chain certificate " : "", who,
		    who[0] ? ")" : "");
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		tls_time(x ? X509_get0_notBefore(x) : NULL, when,
		    sizeof(when));
		tls_now(now, sizeof(now));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: certificate is not yet "
		    "valid (notBefore %s; local clock %s: is the clock "
		    "behind?)%s%s%s", host, when, now,
		    who[0] ? " (chain certificate " : "", who,
		    who[0] ? ")" : "");
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		tls_name(leaf ? X509_get_subject_name(leaf) : NULL, names,
		    sizeof(names));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: self-signed certificate "
		    "(%s); trust it explicitly with a CA file if it is yours",
		    host, names);
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		tls_name(x ? X509_get_subject_name(x) : NULL, names,
		    sizeof(names));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: self-signed certificate "
		    "in certificate chain (root %s is not trusted: a private "
		    "CA, or a TLS-intercepting proxy)", host, names);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		tls_name(x ? X509_get_issuer_name(x) : NULL, names,
		    sizeof(names));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: %s (issuer %s is not in "
		    "the trusted CA store %s: an incomplete chain from the "
		    "server, or an outdated CA store)", host, what, names,
		    c->trust);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		tls_names(leaf, false, names, sizeof(names));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: hostname mismatch: asked "
		    "for %s, certificate names %s", host, cfg->servername,
		    names[0] ? names : "none");
		break;
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		tls_names(leaf, true, names, sizeof(names));
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: IP address mismatch: "
		    "asked for %s, certificate names %s (connect by host "
		    "name instead)", host, cfg->servername,
		    names[0] ? names : "none");
		break;
	default:
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_VERIFY,
		    "certificate of %s not accepted: %s", host, what);
		break;
	}
	if (err != NULL) {
		err->verify_result = vr;
		err->ssl_error = e;
	}
	return rc;
}

static int
tls_handshake_error(struct sk_conn *c, const struct sk_tls_config *cfg,
    unsigned long e, struct sk_error *err)
{
	const char *minv = sk_tls_version_name(cfg->min_version);
	char seen[SK__TLS_PEEK_MAX + 1], code[256];
	const char *reason, *why;
	int rc;

	reason = ERR_reason_error_string(e);
	if (reason == NULL)
		reason = "unknown error";
	ERR_error_string_n(e, code, sizeof(code));
	tls_quote_peek(c, seen, sizeof(seen));

	if (tls_peek_plaintext(c) && c->plain_in > 0) {
		/*
		 * Octets that are not TLS before the server's first
		 * record, after a STARTTLS 220: at best a broken server,
		 * at worst injected commands (RFC 3207 §4, CVE-2011-0411).
		 */
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE,
		    "TLS handshake with %s failed: %s: after accepting "
		    "STARTTLS the server sent plaintext (\"%s\") instead of "
		    "TLS: a broken server or a man in the middle", c->peer,
		    reason, seen);
		goto done;
	}
	if (tls_peek_plaintext(c)) {
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE,
		    "TLS handshake with %s failed: %s: the server answered "
		    "in plaintext (\"%s\"), not TLS: this port speaks %s, "
		    "not implicit TLS; use STARTTLS (usually port 587 or 25) "
		    "or the implicit TLS port (usually 465)", c->peer, reason,
		    seen, strncmp(seen, "220", 3) == 0 ? "plain SMTP" :
		    "plaintext");
		goto done;
	}

	why = NULL;
	if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(e)) {
		case SSL_R_WRONG_VERSION_NUMBER:
			why = "the server does not speak TLS on this port";
			break;
		case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
			why = "the server refused every TLS version we offer: "
			    "it only speaks a version older than the "
			    "configured minimum";
			break;
		case SSL_R_UNSUPPORTED_PROTOCOL:
			why = "the server chose a TLS version older than the "
			    "configured minimum: the two sides share no TLS "
			    "version";
			break;
		case SSL_R_NO_PROTOCOLS_AVAILABLE:
			why = "the local OpenSSL configuration (MinProtocol "
			    "in openssl.cnf) allows no TLS version at or "
			    "above the configured minimum";
			break;
		case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		case SSL_R_NO_SHARED_CIPHER:
		case SSL_R_NO_CIPHERS_AVAILABLE:
			why = "no cipher suite or signature algorithm in "
			    "common (or the server wants a client "
			    "certificate)";
			break;
		case SSL_R_TLSV1_UNRECOGNIZED_NAME:
			why = "the server does not serve the name we asked "
			    "for (SNI)";
			break;
		case SSL_R_DH_KEY_TOO_SMALL:
		case SSL_R_EE_KEY_TOO_SMALL:
		case SSL_R_CA_KEY_TOO_SMALL:
		case SSL_R_CA_MD_TOO_WEAK:
			why = "the server's key or signature is too weak for "
			    "the local OpenSSL security level";
			break;
		default:
			break;
		}
	}
	if (why != NULL && (ERR_GET_REASON(e) ==
	    SSL_R_TLSV1_ALERT_PROTOCOL_VERSION || ERR_GET_REASON(e) ==
	    SSL_R_UNSUPPORTED_PROTOCOL || ERR_GET_REASON(e) ==
	    SSL_R_NO_PROTOCOLS_AVAILABLE))
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE,
		    "TLS handshake with %s failed: %s: %s (%s) [%s]",
		    c->peer, reason, why, minv, code);
	else
		rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE,
		    "TLS handshake with %s failed: %s%s%s [%s]", c->peer,
		    reason, why ? ": " : "", why ? why : "", code);
 done:
	if (err != NULL)
		err->ssl_error = e;
	return rc;
}

/* Why SSL_connect() failed, into err; then the TLS state is dropped. */
static int
tls_fail(struct sk_conn *c, const struct sk_tls_config *cfg, int sslerr,
    int saved_errno, struct sk_error *err)
{
	char seen[SK__TLS_PEEK_MAX + 1], ebuf[128];
	unsigned long e = ERR_peek_error();
	long vr = SSL_get_verify_result(c->ssl);
	int rc;

	tls_peek_more(c);
	/* What the certificate says is worth having even now. */
	if (tls_leaf(c) != NULL)
		tls_fill_info(c);
	if (!cfg->insecure && vr != X509_V_OK)
		rc = tls_verify_error(c, cfg, vr, e, err);
	else if (sslerr == SSL_ERROR_SYSCALL && saved_errno != 0 &&
	    saved_errno != EPIPE) {
		rc = sk_error_set(err, SK_STAGE_TLS,
		    sk__errno_kind(saved_errno),
		    "TLS handshake with %s failed: %s", c->peer,
		    sk__errno_text(saved_errno, ebuf, sizeof(ebuf)));
		if (err != NULL)
			err->sys_errno = saved_errno;
	} else if (sslerr == SSL_ERROR_SYSCALL ||
	    sslerr == SSL_ERROR_ZERO_RETURN || e == 0 ||
	    (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		tls_quote_peek(c, seen, sizeof(seen));
		if (tls_peek_plaintext(c))
			rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_EOF,
			    "TLS handshake with %s failed: the server sent "
			    "plaintext (\"%s\"), not TLS, and closed the "
			    "connection", c->peer, seen);
		else
			rc = sk_error_set(err, SK_STAGE_TLS, SK_ERR_EOF,
			    "TLS handshake with %s failed: the server closed "
			    "the connection%s", c->peer, c->npeek == 0 ?
			    " without answering our TLS hello (it may not "
			    "speak TLS on this port, or dislike our offer)" :
			    "");
		if (err != NULL)
			err->ssl_error = e;
	} else
		rc = tls_handshake_error(c, cfg, e, err);

	sk_trace_printf(&c->trace, SK_TRACE_INFO, "%s",
	    err != NULL ? err->message : "TLS handshake failed");
	tls_abort(c);
	return rc;
}

/* A literal address, for which there is no SNI (RFC 6066 §3). */
static bool
tls_is_ip(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

static SSL_CTX *
tls_context(struct sk_conn *c, const struct sk_tls_config *cfg,
    struct sk_error *err)
{
	SSL_CTX *ctx;
	int proto;

	if ((proto = tls_proto(cfg->min_version)) == -1)
		return (sk_error_set(err, SK_STAGE_TLS, SK_ERR_USAGE,
		    "unknown minimum TLS version %d", (int)cfg->min_version),
		    NULL);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		(void)sk_error_set(err, SK_STAGE_TLS, SK_ERR_LOCAL,
		    "cannot create a TLS context: %s",
		    ERR_reason_error_string(ERR_peek_error()));
		if (err != NULL)
			err->ssl_error = ERR_peek_error();
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, proto))
		goto fail;
	/*
	 * OpenSSL 3 refuses TLS 1.0 and 1.1 at security level 1 and above
	 * (their handshake signatures use SHA-1): asking for them means
	 * asking for level 0, or the setting would be a lie.
	 */
	if (proto < TLS1_2_VERSION)
		SSL_CTX_set_security_level(ctx, 0);
	/*
	 * Partial writes let try_write report what went out; the retry
	 * after WANT_WRITE may come from a moved buffer (same octets).
	 */
	(void)SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, cfg->insecure ? SSL_VERIFY_NONE :
	    SSL_VERIFY_PEER, tls_verify_cb);
	if (tls_trust(c, ctx, cfg, err) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
 fail:
	(void)sk_error_set(err, SK_STAGE_TLS, SK_ERR_LOCAL,
	    "cannot set up the TLS context: %s",
	    ERR_reason_error_string(ERR_peek_error()));
	SSL_CTX_free(ctx);
	return NULL;
}

/* SNI and the name to verify; name is servername without a final dot. */
static int
tls_name_setup(SSL *ssl, const char *name, struct sk_error *err)
{
	if (tls_is_ip(name)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    name) != 1)
			return sk_error_set(err, SK_STAGE_TLS, SK_ERR_USAGE,
			    "cannot verify against the address %s", name);
		return 0;
	}
	if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
	    SSL_set1_host(ssl, name) != 1)
		return sk_error_set(err, SK_STAGE_TLS, SK_ERR_USAGE,
		    "%s is not a valid TLS server name", name);
	/* "*.example.com" matches a whole label, never "w*.example.com". */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return 0;
}

int
sk_conn_tls(struct sk_conn *c, const struct sk_tls_config *cfg,
    int64_t deadline, struct sk_error *err)
{
	static const struct sk_tls_config defaults;
	const char *p;
	char name[256];
	int64_t start = sk_clock_ms();
	size_t len;
	short events;
	int r, ret, saved, sslerr;
	BIO *bio;

	sk_error_clear(err);
	if (cfg == NULL)
		cfg = &defaults;
	if (c->ssl != NULL)
		return sk_error_set(err, SK_STAGE_TLS, SK_ERR_USAGE,
		    "TLS is already active on this connection");
	if (c->dead)
		return sk_error_set(err, SK_STAGE_TLS, SK_ERR_USAGE,
		    "a TLS handshake already failed on this connection");
	ERR_clear_error();

	name[0] = '\0';
	if ((p = cfg->servername) != NULL) {
		len = strlen(p);
		if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
			p++;	/* "[2001:db8::1]" */
			len -= 2;
		} else if (len > 0 && p[len - 1] == '.')
			len--;	/* SNI has no final dot (RFC 6066 §3) */
		if (len == 0 || len >= sizeof(name))
			return sk_error_set(err, SK_STAGE_TLS, SK_ERR_USAGE,
			    "bad TLS server name \"%s\"", cfg->servername);
		memcpy(name, p, len);
		name[len] = '\0';
	}

	c->npeek = 0;
	c->bio_eof = false;
	c->vfy_err = 0;
	c->vfy_depth = 0;
	c->have_info = false;
	if ((c->ctx = tls_context(c, cfg, err)) == NULL)
		return -1;
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    (bio = tls_bio_new(c)) == NULL) {
		(void)sk_error_set(err, SK_STAGE_TLS, SK_ERR_LOCAL,
		    "cannot set up TLS: out of memory");
		sk__tls_close(c);
		return -1;
	}
	SSL_set_bio(c->ssl, bio, bio);
	SSL_set_app_data(c->ssl, c);
	if (name[0] != '\0' && tls_name_setup(c->ssl, name, err) == -1) {
		sk__tls_close(c);
		return -1;
	}
	SSL_set_connect_state(c->ssl);

	sk_trace_printf(&c->trace, SK_TRACE_INFO,
	    "TLS handshake with %s: server name %s, minimum %s, %s%s",
	    c->peer, name[0] ? name : "(none)",
	    sk_tls_version_name(cfg->min_version),
	    cfg->insecure ? "certificate NOT verified" : "trusting ",
	    cfg->insecure ? "" : c->trust);

	for (;;) {
		ERR_clear_error();
		errno = 0;
		ret = SSL_connect(c->ssl);
		saved = errno;
		if (ret == 1)
			break;
		switch ((sslerr = SSL_get_error(c->ssl, ret))) {
		case SSL_ERROR_WANT_READ:
			events = POLLIN;
			break;
		case SSL_ERROR_WANT_WRITE:
			events = POLLOUT;
			break;
		default:
			return tls_fail(c, cfg, sslerr, saved, err);
		}
		/* A server that drips bytes must not outlive the deadline. */
		if (sk_clock_left(deadline) == 0 ||
		    (r = sk__conn_wait(c->fd, events, deadline)) == 0) {
			(void)sk_error_set(err, SK_STAGE_TLS, SK_ERR_TIMEOUT,
			    "TLS handshake with %s timed out after %lld ms%s",
			    c->peer, (long long)(sk_clock_ms() - start),
			    c->npeek == 0 ? " (the server never answered "
			    "our TLS hello)" : "");
			sk_trace_printf(&c->trace, SK_TRACE_INFO, "%s",
			    err != NULL ? err->message : "TLS timeout");
			tls_abort(c);
			return -1;
		}
		if (r == -1) {
			char ebuf[128];

			(void)sk_error_set(err, SK_STAGE_TLS, SK_ERR_LOCAL,
			    "poll: %s", sk__errno_text(errno, ebuf,
			    sizeof(ebuf)));
			tls_abort(c);
			return -1;
		}
	}

	/*
	 * This layer buffers no plaintext of its own, so nothing read
	 * before the handshake can leak into the TLS stream; the caller
	 * must drop whatever it buffered itself (RFC 3207 §4).
	 */
	c->tls_up = true;
	tls_fill_info(c);
	X509_free(c->vfy_leaf);
	X509_free(c->vfy_cert);
	c->vfy_leaf = c->vfy_cert = NULL;
	ERR_clear_error();

	sk_trace_printf(&c->trace, SK_TRACE_INFO,
	    "TLS established with %s in %lld ms: %s, %s", c->peer,
	    (long long)(sk_clock_ms() - start), c->info.version,
	    c->info.cipher);
	sk_trace_printf(&c->trace, SK_TRACE_INFO,
	    "certificate: subject %s; issuer %s; names %s; valid %s to %s",
	    c->info.subject, c->info.issuer,
	    c->info.sans[0] ? c->info.sans : "(none)", c->info.not_before,
	    c->info.not_after);
	sk_trace_printf(&c->trace, SK_TRACE_INFO, "certificate %s: %s%s",
	    cfg->insecure ? "not checked" : "verified", c->info.verify_text,
	    cfg->insecure && c->info.verify_result != X509_V_OK ?
	    " (ignored: insecure)" : "");
	return 0;
}

const struct sk_tls_info *
sk_conn_tls_info(const struct sk_conn *c)
{
	return c->have_info ? &c->info : NULL;
}
