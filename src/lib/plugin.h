/*
 * plugin.h - the parts of posuto built as shared modules and loaded on
 * first use: the SQL drivers (libpq, libmariadb) and the web admin's
 * parsers (GMime, libxml2).
 *
 * Why: those libraries and what they pull in (Kerberos, LDAP, GnuTLS,
 * glib, ICU) are 40 of the binary's 53 shared objects.  Linked into the
 * executable, every `posuto deliver` an MTA runs, every --inetd session
 * and every CLI command paid for loading them (31 ms an exec against
 * 8 ms without), whether or not the configuration uses SQL or the admin.
 *
 * A module is looked for next to the executable (the build tree), in
 * ../lib/posuto/ from it (an installed tree, wherever its prefix), then
 * in POSUTO_PLUGIN_DIR; it must carry this binary's version
 * (POSUTO_PLUGIN_ABI), so a stale module from another install is
 * refused rather than called.  Its undefined symbols are the
 * executable's own (linked with -rdynamic).
 */
#ifndef POSUTO_LIB_PLUGIN_H
#define POSUTO_LIB_PLUGIN_H

#include <stddef.h>

/* In one source file of each module. */
#define POSUTO_PLUGIN_ABI \
	const char posuto_plugin_version[] = POSUTO_VERSION

/*
 * The address of symbol in module name ("posuto_sql": posuto_sql.so),
 * loading the module on the first call (thread-safe; a module stays
 * loaded).  NULL with a reason in err.
 */
void *plugin_symbol(const char *name, const char *symbol, char *err,
    size_t errsz);

#endif
