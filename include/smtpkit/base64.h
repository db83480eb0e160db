/* smtpkit: base64 (RFC 4648 §4), used by AUTH and MIME. */
#ifndef SMTPKIT_BASE64_H
#define SMTPKIT_BASE64_H

#include <stddef.h>

/* Octets needed to encode n octets, including the terminating NUL. */
size_t sk_base64_encoded_size(size_t n);

/*
 * Encode n octets from in to out, NUL-terminated, with padding and no line
 * breaks.  Returns the length written (without the NUL), or (size_t)-1 when
 * cap is too small (out then holds "").
 */
size_t sk_base64_encode(const void *in, size_t n, char *out, size_t cap);

/*
 * Decode n characters (padding optional, whitespace not allowed) into out.
 * Returns 0 and sets *outlen, or -1 on an invalid character, bad padding or
 * when cap is too small.
 */
int sk_base64_decode(const char *in, size_t n, void *out, size_t cap,
    size_t *outlen);

#endif
