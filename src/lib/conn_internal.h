/*
 * smtpkit: what conn.c (sockets, deadlines, I/O) and tls.c (OpenSSL set-up,
 * handshake, certificate facts) share.  Not installed.
 */
#ifndef SMTPKIT_CONN_INTERNAL_H
#define SMTPKIT_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtpkit/conn.h"
#include "smtpkit/error.h"
#include "smtpkit/trace.h"

#define SK__TLS_PEEK_MAX 64	/* raw octets kept from the handshake */

struct sk_conn {
	int fd;
	struct sk_trace trace;
	char peer[SK_ADDR_STR_MAX];
	size_t plain_in;		/* octets read before TLS, if any */

	/* TLS: ssl != NULL once sk_conn_tls() started, tls_up once done. */
	SSL_CTX *ctx;
	SSL *ssl;
	bool tls_up;
	bool dead;			/* a fatal TLS error: no more I/O */
	bool eof;			/* the peer ended the TLS stream */
	bool bio_eof;			/* the socket BIO read end of stream */

	/* Facts gathered during the handshake, for the error message. */
	unsigned char peek[SK__TLS_PEEK_MAX];
	size_t npeek;
	X509 *vfy_leaf;			/* the peer's certificate */
	X509 *vfy_cert;			/* the one that failed verification */
	int vfy_err;			/* its X509_V_ERR_*, 0 if none */
	int vfy_depth;
	char trust[160];		/* where trusted CAs come from */

	bool have_info;
	struct sk_tls_info info;
};

/*
 * Wait until fd is ready for events (POLLIN / POLLOUT) or deadline.
 * Returns 1 when ready (or in error: the next call says which), 0 on
 * timeout, -1 with errno when poll(2) itself failed.
 */
int sk__conn_wait(int fd, short events, int64_t deadline);

/* The error kind for an errno from connect/recv/send. */
enum sk_error_kind sk__errno_kind(int e);

/* A short description of errno e for messages ("connection refused"). */
const char *sk__errno_text(int e, char *buf, size_t cap);

/* Send close_notify if that cannot block, then free the TLS state. */
void sk__tls_close(struct sk_conn *c);

#endif
