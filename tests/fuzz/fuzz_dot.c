/*
 * smtpkit: libFuzzer target for the DATA encoder.
 *
 * The first input octet seeds where the rest is cut and how small the
 * output buffer is.  Encoding in those pieces must give exactly what
 * encoding all at once gives, and the result must be a well-formed DATA
 * stream: CRLF line ends only, no line that starts with a lone "." but the
 * final one, the size sk_dot_size predicts, and, with the stuffing undone,
 * the message itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/dot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Encode in pieces cut where seed says (0: all at once). */
static size_t
encode(const char *in, size_t len, uint32_t seed, size_t outcap, char *res)
{
	struct sk_dot d;
	char buf[512];
	size_t pos = 0, end, n, used, total = 0;

	sk_dot_init(&d);
	while (pos < len) {
		end = len;
		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			end = pos + (seed >> 16) % 97 + 1;
			if (end > len)
				end = len;
		}
		do {
			n = sk_dot_encode(&d, in + pos, end - pos, &used, buf,
			    outcap);
			if (n > outcap || used > end - pos ||
			    (n == 0 && used == 0))
				abort();
			memcpy(res + total, buf, n);
			total += n;
			pos += used;
		} while (pos < end);
	}
	n = sk_dot_finish(&d, buf, SK_DOT_FINISH_MAX);
	memcpy(res + total, buf, n);
	total += n;
	if (d.out_total != total)
		abort();
	return total;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	char *whole, *split, *plain;
	size_t len, n, m, i, bol, plen, nbare = 0, ndot = 0, k;
	uint32_t seed;
	int at_bol = 1;

	if (size < 1)
		return 0;
	seed = data[0] * 2654435761u + 1;
	in = (const char *)data + 1;
	len = size - 1;

	whole = malloc(2 * len + SK_DOT_FINISH_MAX);
	split = malloc(2 * len + SK_DOT_FINISH_MAX);
	plain = malloc(2 * len + SK_DOT_FINISH_MAX);
	if (whole == NULL || split == NULL || plain == NULL)
		abort();

	n = encode(in, len, 0, 512, whole);
	m = encode(in, len, seed, 2 + data[0] % 7, split);
	if (n != m || memcmp(whole, split, n) != 0)
		abort();

	/* Well-formed: CRLF only, ends in ".\r\n" after a line end. */
	if (n < 3 || memcmp(whole + n - 3, ".\r\n", 3) != 0)
		abort();
	if (n > 3 && (n < 5 || whole[n - 5] != '\r' || whole[n - 4] != '\n'))
		abort();
	for (i = 0; i < n; i++) {
		if (whole[i] == '\r' && (i + 1 == n || whole[i + 1] != '\n'))
			abort();
		if (whole[i] == '\n' && (i == 0 || whole[i - 1] != '\r'))
			abort();
	}
	/* Undo the stuffing line by line; only the last line is a lone ".". */
	plen = 0;
	for (bol = 0; bol < n - 3; bol = k + 2) {
		k = bol;
		while (whole[k] != '\r')
			k++;
		i = bol;
		if (whole[i] == '.') {
			if (k == bol + 1 || whole[i + 1] != '.')
				abort();
			i++;
		}
		memcpy(plain + plen, whole + i, k - i);
		plen += k - i;
		plain[plen++] = '\n';
	}
	/* ...which is the input with every line end made one '\n' */
	for (i = 0, k = 0; i < len; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			else
				nbare++;
			if (k >= plen || plain[k++] != '\n')
				abort();
			at_bol = 1;
			continue;
		}
		if (at_bol && in[i] == '.')
			ndot++;
		at_bol = 0;
		if (k >= plen || plain[k++] != in[i])
			abort();
	}
	if (!at_bol && (k >= plen || plain[k++] != '\n'))
		abort();
	if (k != plen)
		abort();
	if (sk_dot_size(len, nbare, ndot) + (at_bol ? 0 : 2) != n)
		abort();

	free(whole);
	free(split);
	free(plain);
	return 0;
}
