/*
 * smtpkit: a connection: TCP socket, optional TLS (OpenSSL 3), deadlines.
 *
 * The socket is non-blocking.  sk_conn_try_read/try_write never wait and
 * say what they need (for an event loop); sk_conn_read/write wait with
 * poll() until an absolute deadline on sk_clock_ms().  No protocol here.
 * Nothing here raises SIGPIPE (send(2) with MSG_NOSIGNAL, for TLS too),
 * whatever the application's signal disposition.
 */
#ifndef SMTPKIT_CONN_H
#define SMTPKIT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dns.h"
#include "error.h"
#include "trace.h"

struct sk_conn;

enum sk_tls_version {
	SK_TLS_ANY = 0,		/* the default minimum: TLS 1.2 */
	SK_TLS_1_0,
	SK_TLS_1_1,
	SK_TLS_1_2,
	SK_TLS_1_3
};

struct sk_tls_config {
	const char *servername;	/* SNI and verification name; NULL for none */
	const char *ca_file;	/* PEM bundle to trust instead of the system store */
	bool insecure;		/* do not verify the peer (the caller warns) */
	enum sk_tls_version min_version;
};

/* What the TLS handshake established, for traces and diagnosis. */
struct sk_tls_info {
	char version[16];		/* "TLSv1.3" */
	char cipher[64];
	char subject[256];		/* one-line RFC 2253 form */
	char issuer[256];
	char sans[512];			/* DNS names, comma-separated */
	char not_before[32];		/* "2026-01-01 00:00:00 UTC" */
	char not_after[32];
	long verify_result;		/* X509_V_OK or X509_V_ERR_* */
	char verify_text[128];		/* X509_verify_cert_error_string() */
};

enum sk_io {
	SK_IO_OK = 0,
	SK_IO_WANT_READ,
	SK_IO_WANT_WRITE,
	SK_IO_EOF,
	SK_IO_ERR
};

/*
 * Connect to one of addrs (in order of preference, as sk_dns_resolve gives
 * them), racing them as RFC 8305 §5 describes: the first address starts
 * first; the next starts when the one before it fails, or 250 ms after it
 * started without an answer (the Connection Attempt Delay), whichever
 * comes first.  So a silently dropped address, typically a broken IPv6
 * path, costs a quarter of a second, not a timeout.  Started attempts go on
 * in parallel, at most 8 at once (the next waits for a free place); the
 * first to complete its TCP handshake wins and the others are closed at
 * once.  Each attempt ends after attempt_ms (<= 0: no limit of its own),
 * all of them at deadline.  With one address this is one connect bounded
 * by both.  Each attempt's start and outcome is traced (SK_TRACE_INFO).
 * Returns the connection (owned; free with sk_conn_free) or NULL with err:
 * stage SK_STAGE_CONNECT; kind SK_ERR_REFUSED, SK_ERR_TIMEOUT,
 * SK_ERR_UNREACHABLE, ... and sys_errno of the last address in the list,
 * as if they had been tried in turn; a message naming every address in
 * order with its result ("not tried" when the deadline came first).
 * SK_ERR_USAGE without addresses, SK_ERR_LOCAL when out of memory.
 * TCP_NODELAY is set: the engine coalesces writes itself.
 */
struct sk_conn *sk_conn_connect(const struct sk_addrlist *addrs,
    int attempt_ms, int64_t deadline, const struct sk_trace *trace,
    struct sk_error *err);

/* Wrap an already connected socket (takes ownership of fd). */
struct sk_conn *sk_conn_from_fd(int fd, const struct sk_trace *trace);

void sk_conn_free(struct sk_conn *c);

int sk_conn_fd(const struct sk_conn *c);

/* "127.0.0.1:25": the address connected to (borrowed). */
const char *sk_conn_peer(const struct sk_conn *c);

/*
 * TLS handshake as a client, waiting until deadline: for implicit TLS right
 * after connecting, or after the STARTTLS 220.  Verifies the certificate
 * chain against cfg->ca_file or the system store (hashed directory first,
 * which is cheaper to load than the whole bundle; SSL_CERT_FILE and
 * SSL_CERT_DIR honoured) and the host name against cfg->servername, unless
 * cfg->insecure.  Errors: stage SK_STAGE_TLS, kind SK_ERR_TLS_VERIFY
 * (verify_result set, message naming the reason: expired, not yet valid,
 * self-signed, unknown issuer, host name mismatch with the names the
 * certificate has) or SK_ERR_TLS_HANDSHAKE (ssl_error set: protocol
 * version, wrong version number, alert), SK_ERR_TIMEOUT, SK_ERR_EOF,
 * SK_ERR_RESET; SK_ERR_CONFIG when the CA file or the system CA store
 * cannot be used (nothing was sent then).  After a failed handshake the
 * connection is unusable: free it.
 * This layer buffers no plaintext; after STARTTLS the caller must drop
 * whatever it had read past the 220 (RFC 3207 §4).  Plaintext that
 * arrives before the server's first TLS record fails the handshake.
 */
int sk_conn_tls(struct sk_conn *c, const struct sk_tls_config *cfg,
    int64_t deadline, struct sk_error *err);

bool sk_conn_is_tls(const struct sk_conn *c);

/*
 * Details of the TLS session, or NULL before a handshake (borrowed).
 * After a failed handshake in which the server sent a certificate, what
 * could be learnt of it (version and cipher then empty).
 */
const struct sk_tls_info *sk_conn_tls_info(const struct sk_conn *c);

/*
 * True when TLS already holds decrypted octets: read before poll().
 * (Without read-ahead, nothing else can wait inside OpenSSL unseen.)
 */
bool sk_conn_pending(const struct sk_conn *c);

/*
 * Non-blocking read of at most cap octets: SK_IO_OK with *n > 0, SK_IO_EOF,
 * SK_IO_WANT_READ / SK_IO_WANT_WRITE (TLS may need either), or SK_IO_ERR
 * with err filled (stage SK_STAGE_NONE: the caller sets it).  The write
 * is the same with *n octets of buf written; after SK_IO_WANT_* on TLS,
 * call it again with the same octets, at least as many (SSL_write(3)).
 */
enum sk_io sk_conn_try_read(struct sk_conn *c, char *buf, size_t cap,
    size_t *n, struct sk_error *err);
enum sk_io sk_conn_try_write(struct sk_conn *c, const char *buf, size_t len,
    size_t *n, struct sk_error *err);

/*
 * Read what is available, waiting for at least one octet until deadline.
 * Returns the count (> 0), 0 at end of stream, or -1 with err (kind
 * SK_ERR_TIMEOUT, SK_ERR_RESET, SK_ERR_TLS_HANDSHAKE ...; stage
 * SK_STAGE_NONE, for the caller to set).
 */
ssize_t sk_conn_read(struct sk_conn *c, char *buf, size_t cap,
    int64_t deadline, struct sk_error *err);

/* Write all of buf, waiting until deadline.  0, or -1 with err as above. */
int sk_conn_write(struct sk_conn *c, const char *buf, size_t len,
    int64_t deadline, struct sk_error *err);

/*
 * Human name of a TLS version: "TLSv1.2" (SK_TLS_ANY names the default
 * minimum, "TLSv1.2"); parse "1.2" / "tls1.2" / "TLSv1.2" / "any",
 * case-insensitively: 0, or -1 for anything else.
 */
const char *sk_tls_version_name(enum sk_tls_version v);
int sk_tls_version_parse(const char *s, enum sk_tls_version *v);

#endif
