/*
 * fuzz_pop3_parse.c - the line reader and command parser on arbitrary
 * bytes, delivered in arbitrary chunks.  Oracles: no line over the cap,
 * arguments inside the line, no command from a line with NUL/CR, and the
 * same commands whatever the chunking.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/params.h"
#include "pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
run(const uint8_t *data, size_t size, size_t chunk, uint32_t *sig)
{
	struct evbuffer *b = evbuffer_new();
	static char line[POP3_MAX_LINE];
	bool disc = false;
	size_t off = 0, n_cmds = 0, len;

	*sig = 2166136261u;
	while (off < size) {
		size_t k = size - off < chunk ? size - off : chunk;
		evbuffer_add(b, data + off, k);
		off += k;
		for (;;) {
			enum pop3_line_result r = pop3_read_line(b, POP3_MAX_LINE,
			    &disc, line, &len);
			struct pop3_cmd cmd;
			if (r == POP3_LINE_MORE)
				break;
			*sig = (*sig ^ (uint32_t)r) * 16777619u;
			if (r == POP3_LINE_TOO_LONG)
				continue;
			if (len > POP3_MAX_LINE)
				abort();
			if (pop3_parse(line, len, &cmd) != POP3_PARSE_OK)
				continue;
			if (memchr(line, '\0', len) || memchr(line, '\r', len))
				abort();
			if (cmd.verb >= POP3_VERB_COUNT)
				abort();
			for (unsigned i = 0; i < cmd.nargs && i < POP3_MAX_ARGS; i++) {
				if (cmd.args[i] < line ||
				    cmd.args[i] + cmd.arglens[i] > line + len)
					abort();
			}
			*sig = (*sig ^ (uint32_t)cmd.verb ^ (uint32_t)cmd.restlen) *
			    16777619u;
			n_cmds++;
		}
		/* The reader never holds more than a line's worth. */
		if (evbuffer_get_length(b) > POP3_MAX_LINE + chunk)
			abort();
	}
	evbuffer_free(b);
	return n_cmds;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t s1, s2;
	size_t chunk = size > 0 ? (size_t)data[0] % 17 + 1 : 1;

	if (run(data, size, size + 1, &s1) != run(data, size, chunk, &s2) ||
	    s1 != s2)
		abort();
	return 0;
}
