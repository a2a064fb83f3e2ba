/* test_pop3_state.c - the session's transition table (pop3_session.c)
 * keeps the promises the protocol rests on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pop3/pop3_int.h"

#define N POP3_STATE_COUNT
#define ST(x) POP3_STATE_##x

static void
test_names(void **state)
{
	(void)state;
	for (unsigned i = 0; i < N; i++) {
		const char *n = pop3_state_name((enum pop3_state)i);
		assert_non_null(n);
		assert_string_not_equal(n, "?");
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(n,
			    pop3_state_name((enum pop3_state)j));
	}
	assert_string_equal(pop3_state_name(N), "?");
}

/* A connection can drop, a server shut down, in any live state; CLOSED
 * is the end; nothing "changes" to itself. */
static void
test_every_state_can_end(void **state)
{
	(void)state;
	for (unsigned i = 0; i < N; i++) {
		enum pop3_state s = (enum pop3_state)i;
		assert_false(pop3_state_change_ok(s, s));
		if (s != ST(CLOSED))
			assert_true(pop3_state_change_ok(s, ST(CLOSED)));
		assert_false(pop3_state_change_ok(ST(CLOSED), s));
	}
	assert_false(pop3_state_change_ok(N, ST(CLOSED)));
	assert_false(pop3_state_change_ok(ST(AUTHORIZATION), N));
}

/* Only the states listed may lead to to. */
static void
only_from(enum pop3_state to, unsigned from_mask)
{
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(pop3_state_change_ok((enum pop3_state)i, to),
		    (from_mask >> i) & 1u);
}

static void
test_guarded_states(void **state)
{
	(void)state;
	/* Logged in only after the worker checked credentials. */
	only_from(ST(TRANSACTION), POP3_IN(ST(LOGIN_PENDING)));
	/* Mail is removed only after QUIT in TRANSACTION (RFC 1939 §6, I2). */
	only_from(ST(UPDATE), POP3_IN(ST(TRANSACTION)));
	/* STLS only before login (RFC 2595 §4). */
	only_from(ST(STLS_HANDSHAKE), POP3_IN(ST(AUTHORIZATION)));
	/* The penalty follows a checked login; a challenge, a step. */
	only_from(ST(LOGIN_DELAY), POP3_IN(ST(LOGIN_PENDING)));
	only_from(ST(AUTH_SASL), POP3_IN(ST(LOGIN_PENDING)));
	only_from(ST(LOGIN_PENDING),
	    POP3_IN(ST(AUTHORIZATION)) | POP3_IN(ST(AUTH_SASL)));
	/* No way back to before login once logged in. */
	for (unsigned i = ST(TRANSACTION); i < N; i++)
		for (unsigned j = 0; j < ST(TRANSACTION); j++)
			assert_false(pop3_state_change_ok((enum pop3_state)i,
			    (enum pop3_state)j));
}

/* Every state is reachable from the first, and each can reach CLOSED. */
static void
test_reachable(void **state)
{
	unsigned seen = POP3_IN(ST(AUTHORIZATION)), before = 0;

	(void)state;
	while (seen != before) {
		before = seen;
		for (unsigned i = 0; i < N; i++) {
			if (!((seen >> i) & 1u))
				continue;
			for (unsigned j = 0; j < N; j++)
				if (pop3_state_change_ok((enum pop3_state)i,
				    (enum pop3_state)j))
					seen |= 1u << j;
		}
	}
	assert_int_equal(seen, (1u << N) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_every_state_can_end),
		cmocka_unit_test(test_guarded_states),
		cmocka_unit_test(test_reachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
