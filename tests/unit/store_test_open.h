/*
 * store_test_open.h - the store tests' mailbox_open() by format name and
 * path ("auto", "maildir", "emldir"), as a location.
 */
#ifndef POSUTO_STORE_TEST_OPEN_H
#define POSUTO_STORE_TEST_OPEN_H

#include <limits.h>
#include <stdio.h>

#include "store/store.h"

static inline enum store_status
open_fmt(const char *path, const char *fmt, struct mailbox **mb_r,
    char *err, size_t errsz)
{
	char loc[PATH_MAX + 16];

	(void)snprintf(loc, sizeof(loc), "%s:%s", fmt, path);
	return mailbox_open(loc, "test", mb_r, err, errsz);
}

#endif
