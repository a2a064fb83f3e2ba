/* xmalloc.h - allocation that never returns NULL (fatal on OOM). */
#ifndef POSUTO_XMALLOC_H
#define POSUTO_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
/* reallocarray semantics: overflow of nmemb*size is fatal, not a wrap. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Allocating printf; fatal on OOM. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Overwrites then frees a secret (password, key). NULL is allowed. */
void free_secret(char *s);

#endif
