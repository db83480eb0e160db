/* smtpkit: base64 (RFC 4648 §4). */
#include <stdint.h>
#include <string.h>

#include "smtpkit/base64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of an alphabet character, -1 for anything else ('=' included). */
static int
b64_decode_char(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t
sk_base64_encoded_size(size_t n)
{
	/* No caller can hold such an input, but never wrap around. */
	if (n / 3 >= (SIZE_MAX - 5) / 4)
		return SIZE_MAX;
	return (n + 2) / 3 * 4 + 1;
}

size_t
sk_base64_encode(const void *in, size_t n, char *out, size_t cap)
{
	const unsigned char *s = in;
	size_t i, o = 0;
	uint32_t v;

	if (cap < sk_base64_encoded_size(n)) {
		if (cap > 0)
			out[0] = '\0';
		return (size_t)-1;
	}
	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = b64_alphabet[(v >> 6) & 0x3f];
		out[o++] = b64_alphabet[v & 0x3f];
	}
	switch (n - i) {
	case 1:
		v = (uint32_t)s[i] << 16;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = '=';
		out[o++] = '=';
		break;
	case 2:
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = b64_alphabet[(v >> 6) & 0x3f];
		out[o++] = '=';
		break;
	}
	out[o] = '\0';
	return o;
}

int
sk_base64_decode(const char *in, size_t n, void *out, size_t cap,
    size_t *outlen)
{
	unsigned char *d = out;
	size_t ndata, npad, need, i, o = 0;
	uint32_t v = 0;
	int c, bits = 0;

	/* Padding, if any, is one or two '=' that complete a 4-octet group. */
	ndata = n;
	while (ndata > 0 && in[ndata - 1] == '=')
		ndata--;
	npad = n - ndata;
	if (npad > 2 || ndata % 4 == 1)
		return -1;
	if (npad > 0 && (n % 4 != 0 || npad != 4 - ndata % 4))
		return -1;

	need = ndata / 4 * 3 + (ndata % 4 == 0 ? 0 : ndata % 4 - 1);
	if (need > cap)
		return -1;

	for (i = 0; i < ndata; i++) {
		if ((c = b64_decode_char((unsigned char)in[i])) == -1)
			return -1;
		v = v << 6 | (uint32_t)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	/*
	 * RFC 4648 §3.5: the bits left over in the last character must be
	 * zero; otherwise two different strings would decode to the same
	 * octets, and such a string came from a broken encoder.
	 */
	if (v != 0)
		return -1;
	if (outlen != NULL)
		*outlen = o;
	return 0;
}
