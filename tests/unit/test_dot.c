/* smtpkit: DATA encoder unit tests (RFC 5321 §4.5.2, §2.3.8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/dot.h"

/*
 * The rules written the slow, obvious way, one octet at a time, to hold
 * the real encoder to.  out needs 2 * n + 5 octets.
 */
static size_t
ref_encode(const char *in, size_t n, char *out)
{
	size_t i, o = 0;
	int bol = 1;

	for (i = 0; i < n; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
				i++;
			out[o++] = '\r';
			out[o++] = '\n';
			bol = 1;
			continue;
		}
		if (bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		bol = 0;
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/*
 * Encode the chunks (lengths in cuts, 0-terminated; NULL: all at once)
 * with an output buffer of outcap octets; return the whole DATA stream,
 * which the caller frees, and its length.
 */
static char *
encode(const char *in, size_t n, const size_t *cuts, size_t outcap,
    size_t *outlen)
{
	struct sk_dot d;
	char *res, *buf;
	size_t pos = 0, end, got, used, total = 0, k = 0;

	res = malloc(2 * n + SK_DOT_FINISH_MAX);
	buf = malloc(outcap > SK_DOT_FINISH_MAX ? outcap : SK_DOT_FINISH_MAX);
	assert_non_null(res);
	assert_non_null(buf);
	sk_dot_init(&d);
	while (pos < n || (cuts != NULL && cuts[k] != 0)) {
		end = n;
		if (cuts != NULL && cuts[k] != 0) {
			end = pos + cuts[k++];
			if (end > n)
				end = n;
		}
		/* Drain this chunk through the (maybe tiny) output buffer. */
		do {
			got = sk_dot_encode(&d, in + pos, end - pos, &used, buf,
			    outcap);
			assert_true(got <= outcap);
			assert_true(used <= end - pos);
			/* Progress, unless the chunk is used up. */
			assert_true(got > 0 || used > 0 || pos == end);
			memcpy(res + total, buf, got);
			total += got;
			pos += used;
		} while (pos < end);
		if (pos >= n)
			break;
	}
	got = sk_dot_finish(&d, buf, SK_DOT_FINISH_MAX);
	memcpy(res + total, buf, got);
	total += got;
	assert_int_equal(d.out_total, total);
	free(buf);
	*outlen = total;
	return res;
}

static void
expect(const char *in, const char *want)
{
	size_t n, len = strlen(in);
	char *got;

	got = encode(in, len, NULL, 4096, &n);
	if (n != strlen(want) || memcmp(got, want, n) != 0)
		fail_msg("\"%s\" gave \"%.*s\"", in, (int)n, got);
	free(got);
	/* and through the smallest useful output buffer */
	got = encode(in, len, NULL, 3, &n);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(got, want, n);
	free(got);
}

static void
test_plain_crlf_unchanged(void **state)
{
	expect("Subject: hi\r\n\r\nbody\r\n",
	    "Subject: hi\r\n\r\nbody\r\n.\r\n");
}

static void
test_dot_stuffing(void **state)
{
	expect(".hello\r\n", "..hello\r\n.\r\n");
	expect("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
	expect("a\r\n..x\r\n", "a\r\n...x\r\n.\r\n");
	expect(".", "..\r\n.\r\n");
	expect("a.b\r\n. x\r\n", "a.b\r\n.. x\r\n.\r\n");
	expect("\n.\n.\n", "\r\n..\r\n..\r\n.\r\n");
	expect("\r.", "\r\n..\r\n.\r\n");
}

static void
test_bare_lf(void **state)
{
	expect("a\nb\n", "a\r\nb\r\n.\r\n");
	expect("\n\n", "\r\n\r\n.\r\n");
	expect("a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n.\r\n");
}

static void
test_bare_cr(void **state)
{
	expect("a\rb\r", "a\r\nb\r\n.\r\n");
	expect("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n");
	expect("\n\r", "\r\n\r\n.\r\n");
	expect("\r\r\r", "\r\n\r\n\r\n.\r\n");
}

static void
test_no_final_newline(void **state)
{
	expect("abc", "abc\r\n.\r\n");
	expect("abc\r\ndef", "abc\r\ndef\r\n.\r\n");
}

static void
test_empty(void **state)
{
	expect("", ".\r\n");
}

static void
test_cr_split_across_chunks(void **state)
{
	static const struct {
		const char *in;
		size_t cuts[4];
		const char *want;
	} cases[] = {
		{ "a\r\nb\r\n", { 2, 0 }, "a\r\nb\r\n.\r\n" },
		{ "a\r\nb\r\n", { 2, 3, 0 }, "a\r\nb\r\n.\r\n" },
		{ "a\r\n.b", { 2, 0 }, "a\r\n..b\r\n.\r\n" },
		{ "a\r\n.b", { 2, 1, 0 }, "a\r\n..b\r\n.\r\n" },
		{ "a\r.b", { 2, 0 }, "a\r\n..b\r\n.\r\n" },
		{ "a\rb", { 2, 0 }, "a\r\nb\r\n.\r\n" },
		{ "a\r", { 2, 0 }, "a\r\n.\r\n" },
		{ "a\r\r\n", { 2, 1, 0 }, "a\r\n\r\n.\r\n" },
		{ "\r\n", { 1, 0 }, "\r\n.\r\n" },
	};
	size_t i, n;
	char *got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = encode(cases[i].in, strlen(cases[i].in), cases[i].cuts,
		    64, &n);
		if (n != strlen(cases[i].want) ||
		    memcmp(got, cases[i].want, n) != 0)
			fail_msg("case %zu gave \"%.*s\"", i, (int)n, got);
		free(got);
	}
}

/* With a CR at the end of a chunk its CRLF is out already: nothing waits. */
static void
test_cr_is_answered_at_once(void **state)
{
	struct sk_dot d;
	char out[16];
	size_t used, n;

	sk_dot_init(&d);
	n = sk_dot_encode(&d, "a\r", 2, &used, out, sizeof(out));
	assert_int_equal(used, 2);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "a\r\n", 3);
	n = sk_dot_encode(&d, "\n", 1, &used, out, sizeof(out));
	assert_int_equal(used, 1);
	assert_int_equal(n, 0);
	assert_int_equal(sk_dot_finish(&d, out, sizeof(out)), 3);
	assert_memory_equal(out, ".\r\n", 3);
	assert_int_equal(d.out_total, 6);
}

static void
test_tiny_output_buffer(void **state)
{
	const char *in = "ab\r\n.c\n..\rd";
	const char *want = "ab\r\n..c\r\n...\r\nd\r\n.\r\n";
	struct sk_dot d;
	char out[3], res[64];
	size_t pos = 0, len = strlen(in), used, n, total = 0, calls = 0;

	sk_dot_init(&d);
	while (pos < len) {
		n = sk_dot_encode(&d, in + pos, len - pos, &used, out, 3);
		assert_true(n <= 3);
		assert_true(n > 0 || used > 0);
		memcpy(res + total, out, n);
		total += n;
		pos += used;
		calls++;
	}
	assert_true(calls > 5);
	/* finish needs its room: nothing is written without it */
	assert_int_equal(sk_dot_finish(&d, out, 3), 0);
	{
		char fin[SK_DOT_FINISH_MAX];

		n = sk_dot_finish(&d, fin, sizeof(fin));
		assert_int_equal(n, 5);
		memcpy(res + total, fin, n);
		total += n;
	}
	assert_int_equal(total, strlen(want));
	assert_memory_equal(res, want, total);
}

/* An output buffer too small for the next unit: no progress, no harm. */
static void
test_no_room(void **state)
{
	struct sk_dot d;
	char out[2];
	size_t used, n;

	sk_dot_init(&d);
	n = sk_dot_encode(&d, ".x", 2, &used, out, 1);
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
	n = sk_dot_encode(&d, ".x", 2, &used, out, 0);
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
	n = sk_dot_encode(&d, ".x", 2, &used, out, 2);
	assert_int_equal(n, 2);
	assert_int_equal(used, 1);
	n = sk_dot_encode(&d, "x\n", 2, &used, out, 2);
	assert_int_equal(n, 1);
	assert_int_equal(used, 1);
	n = sk_dot_encode(&d, "\n", 1, &used, out, 1);
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
	n = sk_dot_encode(&d, "", 0, &used, out, 2);
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
	n = sk_dot_encode(&d, NULL, 0, &used, out, 2);
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
}

static uint64_t
rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible, good enough to pick cut points */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Random messages in random chunks and buffer sizes vs. the reference. */
static void
test_random_chunks_equivalence(void **state)
{
	static const char alphabet[] = "\r\n.\r\n.ab \x00\xff";
	uint64_t seed = 0x5eedf00dULL;
	size_t round, len, i, n, m, ncuts, outcap;
	size_t cuts[64];
	char *in, *want, *got;

	for (round = 0; round < 2000; round++) {
		len = rng_next(&seed) % (round < 1000 ? 40 : 3000);
		in = malloc(len + 1);
		want = malloc(2 * len + 5);
		assert_non_null(in);
		assert_non_null(want);
		for (i = 0; i < len; i++) {
			if (rng_next(&seed) % 4 == 0)
				in[i] = (char)(rng_next(&seed) & 0xff);
			else
				in[i] = alphabet[rng_next(&seed) %
				    (sizeof(alphabet) - 1)];
		}
		n = ref_encode(in, len, want);

		got = encode(in, len, NULL, 2 * len + 5, &m);
		assert_int_equal(m, n);
		assert_memory_equal(got, want, n);
		free(got);

		ncuts = rng_next(&seed) % 63;
		for (i = 0; i < ncuts; i++)
			cuts[i] = 1 + rng_next(&seed) % (len / 4 + 2);
		cuts[ncuts] = 0;
		outcap = 2 + rng_next(&seed) % 100;
		got = encode(in, len, cuts, outcap, &m);
		assert_int_equal(m, n);
		assert_memory_equal(got, want, n);
		free(got);

		free(in);
		free(want);
	}
}

/* sk_dot_size agrees with what the encoder produces. */
static void
test_size(void **state)
{
	static const char *const msgs[] = {
		"", "a\r\n", "a\nb\n", ".a\r\n..b\n", "a\rb\r\n", "\r\r\n.\n",
		".\r\n", "x\r\n.\r\n.y\r\n",
	};
	size_t i, j, len, nbare, ndot, n;
	int bol;
	char *got;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		len = strlen(msgs[i]);
		nbare = ndot = 0;
		bol = 1;
		for (j = 0; j < len; j++) {
			if (msgs[i][j] == '\r' && j + 1 < len &&
			    msgs[i][j + 1] == '\n') {
				j++;
				bol = 1;
			} else if (msgs[i][j] == '\r' || msgs[i][j] == '\n') {
				nbare++;
				bol = 1;
			} else {
				if (bol && msgs[i][j] == '.')
					ndot++;
				bol = 0;
			}
		}
		got = encode(msgs[i], len, NULL, 64, &n);
		assert_int_equal(sk_dot_size(len, nbare, ndot), n);
		free(got);
	}
	/* without a final line end, the CRLF finish adds is 2 more */
	got = encode("ab", 2, NULL, 64, &n);
	assert_int_equal(sk_dot_size(2, 0, 0) + 2, n);
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_crlf_unchanged),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_bare_cr),
		cmocka_unit_test(test_no_final_newline),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_cr_split_across_chunks),
		cmocka_unit_test(test_cr_is_answered_at_once),
		cmocka_unit_test(test_tiny_output_buffer),
		cmocka_unit_test(test_no_room),
		cmocka_unit_test(test_random_chunks_equivalence),
		cmocka_unit_test(test_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
