/* smtpkit: base64 unit tests (RFC 4648). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/base64.h"

/* RFC 4648 §10 */
static const struct {
	const char *plain;
	const char *coded;
} vectors[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_encode_rfc4648_vectors(void **state)
{
	char out[64];
	size_t i, n;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		n = sk_base64_encode(vectors[i].plain, strlen(vectors[i].plain),
		    out, sizeof(out));
		assert_int_equal(n, strlen(vectors[i].coded));
		assert_string_equal(out, vectors[i].coded);
		assert_int_equal(
		    sk_base64_encoded_size(strlen(vectors[i].plain)),
		    strlen(vectors[i].coded) + 1);
	}
}

static void
test_decode_rfc4648_vectors(void **state)
{
	char out[64];
	size_t i, n;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		n = 99;
		assert_int_equal(sk_base64_decode(vectors[i].coded,
		    strlen(vectors[i].coded), out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(vectors[i].plain));
		assert_memory_equal(out, vectors[i].plain, n);
	}
}

static void
test_decode_without_padding(void **state)
{
	char out[16];
	size_t n;

	assert_int_equal(sk_base64_decode("Zg", 2, out, sizeof(out), &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(sk_base64_decode("Zm9vYmE", 7, out, sizeof(out), &n),
	    0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "fooba", 5);
}

static void
test_decode_rejects_invalid(void **state)
{
	static const char *const bad[] = {
		"Z",		/* one character cannot hold an octet */
		"Zm9vY",	/* ...nor can one after a full group */
		"Zg=",		/* padding short of the group */
		"Zg===",	/* too much padding */
		"Zm9v=",	/* padding after a full group */
		"Zm9v====",
		"=",
		"==",
		"====",
		"Zm=9",		/* '=' in the middle */
		"Z=g=",
		"Zh==",		/* non-zero bits after the last octet (§3.5) */
		"Zm9=",
		"Zm9v\n",	/* no whitespace */
		"Zm 9v",
		" Zm9v",
		"Zm9-",		/* base64url is another alphabet (§5) */
		"Zm9_",
		"Zm9v!A==",
		"Zm\xc3\xa9v",
	};
	char out[64];
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 12345;
		if (sk_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out),
		    &n) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(n, 12345);	/* untouched on failure */
	}
	/* A NUL is not an alphabet character either. */
	assert_int_equal(sk_base64_decode("Zm\0v", 4, out, sizeof(out), &n),
	    -1);
}

static void
test_decode_cap(void **state)
{
	char out[6];
	size_t n;

	assert_int_equal(sk_base64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	assert_int_equal(sk_base64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(sk_base64_decode("Zm9vYg==", 8, out, 3, &n), -1);
	assert_int_equal(sk_base64_decode("Zm9vYg==", 8, out, 4, &n), 0);
	assert_int_equal(sk_base64_decode("", 0, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	/* outlen may be NULL */
	assert_int_equal(sk_base64_decode("Zm8=", 4, out, 2, NULL), 0);
}

static void
test_encode_cap(void **state)
{
	char out[9];

	memset(out, 'x', sizeof(out));
	assert_int_equal(sk_base64_encode("foobar", 6, out, 8), (size_t)-1);
	assert_string_equal(out, "");
	assert_int_equal(sk_base64_encode("foobar", 6, out, 9), 8);
	assert_string_equal(out, "Zm9vYmFy");
	assert_int_equal(sk_base64_encode("", 0, out, 0), (size_t)-1);
	assert_int_equal(sk_base64_encode("", 0, out, 1), 0);
	assert_string_equal(out, "");
}

static void
test_round_trip_all_octets(void **state)
{
	unsigned char in[300], back[300];
	char coded[401];
	size_t len, n, m;

	for (len = 0; len < sizeof(in); len++)
		in[len] = (unsigned char)(len * 7 + 3);
	for (len = 0; len <= sizeof(in); len++) {
		n = sk_base64_encode(in, len, coded, sizeof(coded));
		assert_int_equal(n, sk_base64_encoded_size(len) - 1);
		assert_int_equal(sk_base64_decode(coded, n, back, sizeof(back),
		    &m), 0);
		assert_int_equal(m, len);
		assert_memory_equal(back, in, len);
	}
}

static void
test_encoded_size_saturates(void **state)
{
	assert_int_equal(sk_base64_encoded_size(SIZE_MAX), SIZE_MAX);
	assert_int_equal(sk_base64_encoded_size(3), 5);
	assert_int_equal(sk_base64_encoded_size(4), 9);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_rfc4648_vectors),
		cmocka_unit_test(test_decode_rfc4648_vectors),
		cmocka_unit_test(test_decode_without_padding),
		cmocka_unit_test(test_decode_rejects_invalid),
		cmocka_unit_test(test_decode_cap),
		cmocka_unit_test(test_encode_cap),
		cmocka_unit_test(test_round_trip_all_octets),
		cmocka_unit_test(test_encoded_size_saturates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
