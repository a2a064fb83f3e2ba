/* plugin.c - loading posuto's shared modules (see plugin.h). */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/plugin.h"

#ifndef POSUTO_PLUGIN_DIR
#define POSUTO_PLUGIN_DIR "/usr/local/lib/posuto"
#endif

#define PLUGIN_MAX	4

static pthread_mutex_t plugin_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[32];
	void *handle;
} plugins[PLUGIN_MAX];

/* The directory of the running executable, into buf; false if unknown. */
static int
plugin_exe_dir(char *buf, size_t bufsz)
{
	ssize_t n = readlink("/proc/self/exe", buf, bufsz - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= bufsz - 1)
		return 0;
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) == NULL)
		return 0;
	*slash = '\0';
	return 1;
}

/* Opens name from the first place that has it; err says where it was
 * looked for (and the last reason) when none does. */
static void *
plugin_open(const char *name, char *err, size_t errsz)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	const char *dirs[3];
	size_t nd = 0;
	const char *why = "not found";

	if (plugin_exe_dir(exe, sizeof(exe))) {
		dirs[nd++] = exe;
		dirs[nd++] = NULL;	/* exe/../lib/posuto */
	}
	dirs[nd++] = POSUTO_PLUGIN_DIR;
	for (size_t i = 0; i < nd; i++) {
		const char *v;
		void *h;

		if (dirs[i] == NULL)
			(void)snprintf(path, sizeof(path), "%s/../lib/posuto/%s.so",
			    exe, name);
		else
			(void)snprintf(path, sizeof(path), "%s/%s.so", dirs[i],
			    name);
		if (access(path, R_OK) != 0)
			continue;
		if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
			why = dlerror();
			continue;
		}
		v = dlsym(h, "posuto_plugin_version");
		if (v != NULL && strcmp(v, POSUTO_VERSION) == 0)
			return h;
		why = "built for another posuto version";
		(void)dlclose(h);
	}
	(void)snprintf(err, errsz, "cannot load %s.so (next to the posuto "
	    "binary, in ../lib/posuto/ from it, or in %s): %s", name,
	    POSUTO_PLUGIN_DIR, why);
	return NULL;
}

void *
plugin_symbol(const char *name, const char *symbol, char *err, size_t errsz)
{
	void *h = NULL, *sym;
	size_t i;

	(void)pthread_mutex_lock(&plugin_mu);
	for (i = 0; i < PLUGIN_MAX && plugins[i].handle != NULL; i++)
		if (strcmp(plugins[i].name, name) == 0)
			break;
	if (i < PLUGIN_MAX && plugins[i].handle != NULL) {
		h = plugins[i].handle;
	} else if (i < PLUGIN_MAX && strlen(name) < sizeof(plugins[i].name)) {
		if ((h = plugin_open(name, err, errsz)) != NULL) {
			(void)snprintf(plugins[i].name, sizeof(plugins[i].name),
			    "%s", name);
			plugins[i].handle = h;
		}
	} else {
		(void)snprintf(err, errsz, "too many modules");
	}
	(void)pthread_mutex_unlock(&plugin_mu);
	if (h == NULL)
		return NULL;
	if ((sym = dlsym(h, symbol)) == NULL)
		(void)snprintf(err, errsz, "%s.so has no %s", name, symbol);
	return sym;
}
