/* Only linked into musl builds: Debian's libseccomp.a was compiled against
 * glibc with _FORTIFY_SOURCE, and its (debug-output) code calls glibc's
 * checked fprintf. The check only guards buffers that libseccomp owns. */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...);

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
	va_list ap;
	int n;

	(void)flag;
	va_start(ap, fmt);
	n = vfprintf(f, fmt, ap);
	va_end(ap);
	return n;
}
