/* The container spec parser (format in container.h). Everything is validated
 * here, at load time, so a bad spec fails before anything is forked or
 * mounted, with a message naming the line and the directive. */
#include "spec.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#define MAX_FIELDS (3 + SPEC_SECCOMP_MAX_ARGS) /* the longest line: seccomp-rule */

int spec_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static char warnings[512];

void spec_warn(const char *fmt, ...)
{
	size_t len = strlen(warnings);
	va_list ap;

	if (len > 0 && len + 2 < sizeof(warnings)) {
		memcpy(warnings + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(warnings + len, sizeof(warnings) - len, fmt, ap);
	va_end(ap);
}

const char *spec_warnings(void)
{
	return warnings;
}

/* Parser state; err/line prefix every message. */
struct parser {
	struct spec *s;
	char *err;
	size_t errlen;
	int line;
	const char *directive;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->directive != NULL)
		return spec_err(p->err, p->errlen, "spec line %d: %s: %s", p->line, p->directive, msg);
	return spec_err(p->err, p->errlen, "spec line %d: %s", p->line, msg);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int plain_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("._/:=,+@-", c) != NULL;
}

/* Decodes one field in place. Strict: the writer must encode everything
 * outside the plain set, so stray bytes mean a broken or foreign file. A
 * decoded NUL is refused because every consumer takes C strings. */
static int decode_field(struct parser *p, char *f, int index)
{
	char *out = f;

	if (strcmp(f, "%") == 0) {
		*f = '\0';
		return 0;
	}
	if (*f == '\0')
		return perr(p, "field %d is empty (an empty field is written \"%%\")", index);
	for (char *in = f; *in != '\0'; in++) {
		if (*in == '%') {
			int hi = hexval((unsigned char)in[1]);
			int lo = hi < 0 ? -1 : hexval((unsigned char)in[2]);

			if (hi < 0 || lo < 0)
				return perr(p, "field %d: bad percent escape", index);
			if (hi == 0 && lo == 0)
				return perr(p, "field %d: %%00 (NUL byte) is not allowed", index);
			*out++ = (char)(hi * 16 + lo);
			in += 2;
		} else if (plain_char((unsigned char)*in)) {
			*out++ = *in;
		} else {
			return perr(p, "field %d: byte 0x%02x must be percent-encoded", index,
				    (unsigned char)*in);
		}
	}
	*out = '\0';
	return 0;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL) {
		perror("strdup");
		abort(); /* a tiny spec cannot exhaust memory short of a broken machine */
	}
	return d;
}

/* Grows a dynamic array by one element and returns the new slot, zeroed. */
static void *push(void *arrp, size_t *n, size_t size)
{
	void **arr = arrp;
	char *a = realloc(*arr, (*n + 1) * size);

	if (a == NULL) {
		perror("realloc");
		abort();
	}
	*arr = a;
	memset(a + *n * size, 0, size);
	return a + (*n)++ * size;
}

/* Appends to a NULL-terminated string list. */
static void push_str(char ***list, size_t *n, const char *v)
{
	char **l = realloc(*list, (*n + 2) * sizeof(char *));

	if (l == NULL) {
		perror("realloc");
		abort();
	}
	l[(*n)++] = xstrdup(v);
	l[*n] = NULL;
	*list = l;
}

static int want_abs(struct parser *p, const char *what, const char *v)
{
	if (v[0] != '/')
		return perr(p, "%s must be an absolute path, got '%s'", what, v);
	return 0;
}

/* A name in the tmpfs at /sys/fs/cgroup: one path component. */
static int want_name(struct parser *p, const char *what, const char *v)
{
	if (v[0] == '\0' || strchr(v, '/') != NULL || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return perr(p, "%s must be one path component, got '%s'", what, v);
	return 0;
}

static int set_once(struct parser *p, char **slot, const char *v)
{
	if (*slot != NULL)
		return perr(p, "given more than once");
	*slot = xstrdup(v);
	return 0;
}

static int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int parse_id(const char *s, uint32_t *out)
{
	uint64_t v;

	/* (uid_t)-1 means "unchanged" to set*id(2). */
	if (parse_u64(s, 10, &v) < 0 || v >= UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static const struct {
	const char *name;
	unsigned long flags, propagation;
} mount_flags[] = {
	{ "ro", MS_RDONLY, 0 },
	{ "nosuid", MS_NOSUID, 0 },
	{ "nodev", MS_NODEV, 0 },
	{ "noexec", MS_NOEXEC, 0 },
	{ "relatime", MS_RELATIME, 0 },
	{ "strictatime", MS_STRICTATIME, 0 },
	{ "bind", MS_BIND, 0 },
	{ "rbind", MS_BIND | MS_REC, 0 },
	{ "private", 0, MS_PRIVATE },
	{ "rprivate", 0, MS_PRIVATE | MS_REC },
	{ "slave", 0, MS_SLAVE },
	{ "rslave", 0, MS_SLAVE | MS_REC },
	{ "shared", 0, MS_SHARED },
	{ "rshared", 0, MS_SHARED | MS_REC },
};

static int parse_mount_flags(struct parser *p, char *list, struct spec_mount *m)
{
	if (strcmp(list, "-") == 0)
		return 0;
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(mount_flags) / sizeof(mount_flags[0]); i++)
			if (strcmp(tok, mount_flags[i].name) == 0)
				break;
		if (i == sizeof(mount_flags) / sizeof(mount_flags[0]))
			return perr(p, "unknown mount flag '%s'", tok);
		if (mount_flags[i].propagation != 0 && m->propagation != 0)
			return perr(p, "more than one propagation flag");
		m->flags |= mount_flags[i].flags;
		m->propagation |= mount_flags[i].propagation;
	}
	return 0;
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU },
	{ "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },
	{ "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
	{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_STACK", RLIMIT_STACK },
};

static int parse_rlim(const char *s, rlim_t *out)
{
	uint64_t v;

	if (strcmp(s, "unlimited") == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (parse_u64(s, 10, &v) < 0)
		return -1;
	*out = (rlim_t)v;
	return 0;
}

static int parse_bool(struct parser *p, const char *v, int *out)
{
	if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
		return perr(p, "expected 0 or 1, got '%s'", v);
	*out = v[0] == '1';
	return 0;
}

/* Actions of a profile; those taking an errno carry it in their low 16 bits. */
static const struct {
	const char *name;
	uint32_t action;
	int takes_errno;
} seccomp_actions[] = {
	{ "allow", SCMP_ACT_ALLOW, 0 },
	{ "errno", SCMP_ACT_ERRNO(0), 1 },
	{ "kill-thread", SCMP_ACT_KILL_THREAD, 0 },
	{ "kill-process", SCMP_ACT_KILL_PROCESS, 0 },
	{ "trap", SCMP_ACT_TRAP, 0 },
	{ "trace", SCMP_ACT_TRACE(0), 1 },
	{ "log", SCMP_ACT_LOG, 0 },
};

static const struct {
	const char *name;
	enum scmp_compare op;
} seccomp_ops[] = {
	{ "eq", SCMP_CMP_EQ },
	{ "ne", SCMP_CMP_NE },
	{ "lt", SCMP_CMP_LT },
	{ "le", SCMP_CMP_LE },
	{ "gt", SCMP_CMP_GT },
	{ "ge", SCMP_CMP_GE },
	{ "masked-eq", SCMP_CMP_MASKED_EQ },
};

/* ACTION ERRNO → a libseccomp action (ERRNO ignored by actions without one). */
static int parse_seccomp_action(struct parser *p, const char *name, const char *errno_s, uint32_t *out)
{
	uint64_t e;
	size_t i;

	for (i = 0; i < sizeof(seccomp_actions) / sizeof(seccomp_actions[0]); i++)
		if (strcmp(name, seccomp_actions[i].name) == 0)
			break;
	if (i == sizeof(seccomp_actions) / sizeof(seccomp_actions[0]))
		return perr(p, "unknown action '%s'", name);
	if (parse_u64(errno_s, 10, &e) < 0 || e > 0xffff)
		return perr(p, "bad ERRNO '%s'", errno_s);
	*out = seccomp_actions[i].action | (seccomp_actions[i].takes_errno ? (uint32_t)e : 0);
	return 0;
}

/* INDEX:OP:VALUE:VALUETWO; VALUETWO is the datum of masked-eq (VALUE its mask). */
static int parse_seccomp_arg(struct parser *p, char *field, struct scmp_arg_cmp *c)
{
	char *part[4], *rest = field;
	uint64_t index, v1, v2;
	size_t i;

	for (i = 0; i < 4 && rest != NULL; i++)
		part[i] = strsep(&rest, ":");
	if (i < 4 || rest != NULL)
		return perr(p, "argument '%s' is not INDEX:OP:VALUE:VALUETWO", field);
	if (parse_u64(part[0], 10, &index) < 0 || index >= SPEC_SECCOMP_MAX_ARGS)
		return perr(p, "bad argument INDEX '%s'", part[0]);
	if (parse_u64(part[2], 10, &v1) < 0 || parse_u64(part[3], 10, &v2) < 0)
		return perr(p, "bad argument VALUE '%s' or VALUETWO '%s'", part[2], part[3]);
	for (i = 0; i < sizeof(seccomp_ops) / sizeof(seccomp_ops[0]); i++)
		if (strcmp(part[1], seccomp_ops[i].name) == 0)
			break;
	if (i == sizeof(seccomp_ops) / sizeof(seccomp_ops[0]))
		return perr(p, "unknown argument OP '%s'", part[1]);
	c->arg = (unsigned int)index;
	c->op = seccomp_ops[i].op;
	c->datum_a = v1;
	c->datum_b = c->op == SCMP_CMP_MASKED_EQ ? v2 : 0;
	return 0;
}

/* seccomp-arch, -flag and -rule extend the profile "seccomp-default" started. */
static int want_profile(struct parser *p)
{
	if (p->s->seccomp != SECCOMP_PROFILE)
		return perr(p, "needs a 'seccomp-default' line before it");
	return 0;
}

static int parse_seccomp_rule(struct parser *p, char **f, int nargs)
{
	struct spec_seccomp_profile *prof = &p->s->profile;
	struct spec_seccomp_rule *r;

	if (want_profile(p) < 0)
		return -1;
	if (f[3][0] == '\0')
		return perr(p, "NAME is empty");
	r = push(&prof->rules, &prof->nrules, sizeof(*r));
	r->name = xstrdup(f[3]);
	if (parse_seccomp_action(p, f[1], f[2], &r->action) < 0)
		return -1;
	for (int i = 4; i <= nargs; i++)
		if (parse_seccomp_arg(p, f[i], &r->args[r->nargs++]) < 0)
			return -1;
	return 0;
}

/* A major or minor number, or "*"; the kernel's dev_t has 12 and 20 bits. */
static int parse_dev_number(struct parser *p, const char *what, const char *v, unsigned long max, long *out)
{
	uint64_t n;

	if (strcmp(v, "*") == 0) {
		*out = SPEC_DEV_ANY;
		return 0;
	}
	if (parse_u64(v, 10, &n) < 0 || n > max)
		return perr(p, "bad %s '%s'", what, v);
	*out = (long)n;
	return 0;
}

/* TYPE MAJOR MINOR ACCESS, as a devices.allow line has them. */
static int parse_device_rule(struct parser *p, char **f, struct spec_device_rule *r)
{
	if (strcmp(f[1], "a") != 0 && strcmp(f[1], "b") != 0 && strcmp(f[1], "c") != 0)
		return perr(p, "TYPE must be a, b or c, got '%s'", f[1]);
	r->type = f[1][0];
	if (parse_dev_number(p, "MAJOR", f[2], 0xfff, &r->major) < 0 ||
	    parse_dev_number(p, "MINOR", f[3], 0xfffff, &r->minor) < 0)
		return -1;
	for (const char *c = f[4]; *c != '\0'; c++) {
		unsigned bit = *c == 'r' ? SPEC_DEV_READ : *c == 'w' ? SPEC_DEV_WRITE : *c == 'm' ? SPEC_DEV_MKNOD : 0;

		if (bit == 0)
			return perr(p, "ACCESS must be letters of rwm, got '%s'", f[4]);
		r->access |= bit;
	}
	if (r->access == 0)
		return perr(p, "ACCESS is empty");
	return 0;
}

/* One directive: name, then its fields (already decoded). */
static const char *const pod_ns_directive[3] = { "netns", "ipcns", "utsns" };

static int directive(struct parser *p, char **f, int n)
{
	struct spec *s = p->s;
	const char *d = f[0];
	int nargs = n - 1;

#define ARGS(lo, hi)                                                                         \
	do {                                                                                 \
		if (nargs < (lo) || nargs > (hi)) {                                          \
			if ((lo) == (hi))                                                    \
				return perr(p, "expected %d field(s), got %d", (lo), nargs); \
			return perr(p, "expected %d to %d fields, got %d", (lo), (hi), nargs); \
		}                                                                            \
	} while (0)

	p->directive = d;
	if (strcmp(d, "pidns") == 0) {
		ARGS(1, 1);
		if (strcmp(f[1], "new") != 0 && strcmp(f[1], "host") != 0 && want_abs(p, "PATH", f[1]) < 0)
			return -1;
		return set_once(p, &s->pidns, f[1]);
	}
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(d, pod_ns_directive[i]) == 0) {
			ARGS(1, 1);
			if (want_abs(p, "PATH", f[1]) < 0)
				return -1;
			return set_once(p, &s->podns[i], f[1]);
		}
	}
	if (strcmp(d, "rootfs") == 0) {
		ARGS(1, 1);
		if (want_abs(p, "DIR", f[1]) < 0)
			return -1;
		return set_once(p, &s->rootfs, f[1]);
	}
	if (strcmp(d, "overlay") == 0) {
		ARGS(3, 3);
		if (s->ov_lower != NULL)
			return perr(p, "given more than once");
		for (int i = 1; i <= 3; i++) {
			/* Overlay's option parser splits on ',' and honours '\'. */
			if (strpbrk(f[i], ",\\") != NULL)
				return perr(p, "paths must not contain ',' or '\\': '%s'", f[i]);
			if (f[i][0] != '/')
				return perr(p, "paths must be absolute: '%s'", f[i]);
		}
		for (const char *c = f[1]; (c = strchr(c, ':')) != NULL; c++)
			if (c[1] != '/')
				return perr(p, "LOWERS: every lower directory must be absolute");
		if (strchr(f[2], ':') != NULL || strchr(f[3], ':') != NULL)
			return perr(p, "UPPER and WORK must not contain ':'");
		s->ov_lower = xstrdup(f[1]);
		s->ov_upper = xstrdup(f[2]);
		s->ov_work = xstrdup(f[3]);
		return 0;
	}
	if (strcmp(d, "mount") == 0) {
		struct spec_mount *m;

		ARGS(5, 5);
		if (want_abs(p, "DST", f[3]) < 0)
			return -1;
		if (f[1][0] == '\0')
			return perr(p, "TYPE is empty");
		m = push(&s->mounts, &s->nmounts, sizeof(*m));
		m->line = p->line;
		if (parse_mount_flags(p, f[4], m) < 0)
			return -1;
		m->type = xstrdup(f[1]);
		m->src = xstrdup(f[2]);
		m->dst = xstrdup(f[3]);
		m->data = strcmp(f[5], "-") == 0 ? NULL : xstrdup(f[5]);
		if (((m->flags & MS_BIND) || strcmp(m->type, "device") == 0) && m->src[0] != '/')
			return perr(p, "a %s's SRC must be an absolute host path, got '%s'",
				    m->flags & MS_BIND ? "bind mount" : "device", m->src);
		return 0;
	}
	if (strcmp(d, "symlink") == 0 || strcmp(d, "cgroupfs-link") == 0) {
		int cg = d[0] == 'c';
		struct spec_symlink *l;

		ARGS(2, 2);
		if (f[1][0] == '\0')
			return perr(p, "TARGET is empty");
		if ((cg ? want_name(p, "NAME", f[2]) : want_abs(p, "LINKPATH", f[2])) < 0)
			return -1;
		l = cg ? push(&s->cgroup_links, &s->ncgroup_links, sizeof(*l)) : push(&s->symlinks, &s->nsymlinks, sizeof(*l));
		l->target = xstrdup(f[1]);
		l->linkpath = xstrdup(f[2]);
		l->line = p->line;
		return 0;
	}
	if (strcmp(d, "mask") == 0 || strcmp(d, "readonly") == 0) {
		ARGS(1, 1);
		if (want_abs(p, "PATH", f[1]) < 0)
			return -1;
		if (d[0] == 'm')
			push_str(&s->masks, &s->nmasks, f[1]);
		else
			push_str(&s->readonly, &s->nreadonly, f[1]);
		return 0;
	}
	if (strcmp(d, "readonly-rootfs") == 0) {
		ARGS(0, 0);
		s->readonly_rootfs = 1;
		return 0;
	}
	if (strcmp(d, "cwd") == 0) {
		ARGS(1, 1);
		if (want_abs(p, "PATH", f[1]) < 0)
			return -1;
		return set_once(p, &s->cwd, f[1]);
	}
	if (strcmp(d, "user") == 0) {
		uint32_t u, g;

		ARGS(2, 3);
		if (s->has_user)
			return perr(p, "given more than once");
		if (parse_id(f[1], &u) < 0)
			return perr(p, "bad UID '%s'", f[1]);
		if (parse_id(f[2], &g) < 0)
			return perr(p, "bad GID '%s'", f[2]);
		s->has_user = 1;
		s->uid = u;
		s->gid = g;
		if (nargs == 3 && f[3][0] != '\0') {
			for (char *save = NULL, *tok = strtok_r(f[3], ",", &save); tok != NULL;
			     tok = strtok_r(NULL, ",", &save)) {
				gid_t *slot;

				if (parse_id(tok, &g) < 0)
					return perr(p, "bad supplementary GID '%s'", tok);
				slot = push(&s->groups, &s->ngroups, sizeof(gid_t));
				*slot = g;
			}
		}
		return 0;
	}
	if (strcmp(d, "env") == 0) {
		ARGS(1, 1);
		if (strchr(f[1], '=') == NULL || f[1][0] == '=')
			return perr(p, "expected KEY=VALUE, got '%s'", f[1]);
		push_str(&s->env, &s->nenv, f[1]);
		return 0;
	}
	if (strcmp(d, "arg") == 0) {
		ARGS(1, 1);
		if (s->nargs == 0 && f[1][0] == '\0')
			return perr(p, "the program (first arg) is empty");
		push_str(&s->args, &s->nargs, f[1]);
		return 0;
	}
	if (strcmp(d, "caps") == 0) {
		const char *h = f[1];

		ARGS(1, 1);
		if (s->has_caps)
			return perr(p, "given more than once");
		if (strncmp(h, "0x", 2) == 0 || strncmp(h, "0X", 2) == 0)
			h += 2;
		if (strlen(h) > 16 || parse_u64(h, 16, &s->caps) < 0)
			return perr(p, "bad HEXMASK '%s'", f[1]);
		s->has_caps = 1;
		return 0;
	}
	if (strcmp(d, "no-new-privs") == 0) {
		ARGS(0, 0);
		s->no_new_privs = 1;
		return 0;
	}
	if (strcmp(d, "seccomp") == 0) {
		ARGS(1, 1);
		if (s->seccomp != SECCOMP_UNSET)
			return perr(p, "given more than once");
		if (strcmp(f[1], "default") == 0)
			s->seccomp = SECCOMP_DEFAULT;
		else if (strcmp(f[1], "unconfined") == 0)
			s->seccomp = SECCOMP_UNCONFINED;
		else
			return perr(p, "expected default or unconfined, got '%s'", f[1]);
		return 0;
	}
	if (strcmp(d, "seccomp-default") == 0) {
		ARGS(2, 2);
		if (s->seccomp != SECCOMP_UNSET)
			return perr(p, "a seccomp mode is given already");
		s->seccomp = SECCOMP_PROFILE;
		return parse_seccomp_action(p, f[1], f[2], &s->profile.default_action);
	}
	if (strcmp(d, "seccomp-arch") == 0) {
		ARGS(1, 1);
		if (want_profile(p) < 0)
			return -1;
		push_str(&s->profile.arches, &s->profile.narches, f[1]);
		return 0;
	}
	if (strcmp(d, "seccomp-flag") == 0) {
		ARGS(1, 1);
		if (want_profile(p) < 0)
			return -1;
		if (strcmp(f[1], "log") == 0)
			s->profile.log = 1;
		else if (strcmp(f[1], "spec-allow") == 0)
			s->profile.spec_allow = 1;
		else
			return perr(p, "expected log or spec-allow, got '%s'", f[1]);
		return 0;
	}
	if (strcmp(d, "seccomp-rule") == 0) {
		ARGS(3, 3 + SPEC_SECCOMP_MAX_ARGS);
		return parse_seccomp_rule(p, f, nargs);
	}
	if (strcmp(d, "rlimit") == 0) {
		struct spec_rlimit *r;
		size_t i;

		ARGS(3, 3);
		for (i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
			if (strcmp(f[1], rlimit_names[i].name) == 0)
				break;
		if (i == sizeof(rlimit_names) / sizeof(rlimit_names[0]))
			return perr(p, "unknown limit '%s'", f[1]);
		r = push(&s->rlimits, &s->nrlimits, sizeof(*r));
		r->resource = rlimit_names[i].resource;
		r->name = rlimit_names[i].name;
		if (parse_rlim(f[2], &r->lim.rlim_cur) < 0)
			return perr(p, "bad SOFT '%s'", f[2]);
		if (parse_rlim(f[3], &r->lim.rlim_max) < 0)
			return perr(p, "bad HARD '%s'", f[3]);
		if (r->lim.rlim_cur > r->lim.rlim_max)
			return perr(p, "SOFT is above HARD");
		return 0;
	}
	if (strcmp(d, "oom-score-adj") == 0) {
		char *end;
		long v;

		ARGS(1, 1);
		if (s->has_oom)
			return perr(p, "given more than once");
		errno = 0;
		v = strtol(f[1], &end, 10);
		if (f[1][0] == '\0' || *end != '\0' || errno != 0 || v < -1000 || v > 1000)
			return perr(p, "expected an integer in [-1000, 1000], got '%s'", f[1]);
		s->has_oom = 1;
		s->oom_score_adj = (int)v;
		return 0;
	}
	if (strcmp(d, "cgroup") == 0) {
		ARGS(1, 2);
		if (want_abs(p, "DIR", f[1]) < 0)
			return -1;
		if (nargs == 2) {
			struct spec_cgroup_bind *b;

			if (strcmp(f[2], ".") != 0 && want_name(p, "NAME", f[2]) < 0)
				return -1;
			b = push(&s->cgroup_binds, &s->ncgroup_binds, sizeof(*b));
			b->cgroup = s->ncgroups;
			b->name = xstrdup(f[2]);
		}
		push_str(&s->cgroups, &s->ncgroups, f[1]);
		return 0;
	}
	if (strcmp(d, "cgroupfs") == 0) {
		ARGS(1, 1);
		if (s->cgroupfs != CGROUPFS_NONE)
			return perr(p, "given more than once");
		if (strcmp(f[1], "ro") == 0)
			s->cgroupfs = CGROUPFS_RO;
		else if (strcmp(f[1], "rw") == 0)
			s->cgroupfs = CGROUPFS_RW;
		else
			return perr(p, "expected ro or rw, got '%s'", f[1]);
		return 0;
	}
	if (strcmp(d, "device-filter") == 0) {
		ARGS(1, 1);
		if (want_abs(p, "DIR", f[1]) < 0)
			return -1;
		return set_once(p, &s->device_filter, f[1]);
	}
	if (strcmp(d, "device-allow") == 0) {
		struct spec_device_rule *r;

		ARGS(4, 4);
		r = push(&s->device_rules, &s->ndevice_rules, sizeof(*r));
		return parse_device_rule(p, f, r);
	}
	if (strcmp(d, "log") == 0) {
		ARGS(1, 1);
		if (want_abs(p, "PATH", f[1]) < 0)
			return -1;
		return set_once(p, &s->log, f[1]);
	}
	if (strcmp(d, "stdin") == 0) {
		ARGS(1, 1);
		return parse_bool(p, f[1], &s->stdin_open);
	}
	if (strcmp(d, "tty") == 0) {
		ARGS(1, 1);
		return parse_bool(p, f[1], &s->tty);
	}
	if (strcmp(d, "stdin-once") == 0) {
		ARGS(0, 0);
		s->stdin_once = 1;
		return 0;
	}
#undef ARGS
	p->directive = NULL;
	return perr(p, "unknown directive '%s'", d);
}

static int parse_line(struct parser *p, char *line)
{
	char *f[MAX_FIELDS + 1];
	int n = 0;

	p->directive = NULL;
	/* Single spaces only: a double space would be an empty, unencoded field. */
	for (char *c = line;;) {
		char *sp = strchr(c, ' ');

		if (n == MAX_FIELDS + 1)
			return perr(p, "too many fields");
		f[n++] = c;
		if (sp == NULL)
			break;
		*sp = '\0';
		c = sp + 1;
	}
	if (decode_field(p, f[0], 0) < 0)
		return -1;
	p->directive = f[0]; /* so field errors name it */
	for (int i = 1; i < n; i++)
		if (decode_field(p, f[i], i) < 0)
			return -1;
	return directive(p, f, n);
}

/* "cgroupfs" goes with named "cgroup" dirs, and links with it; a dir at
 * /sys/fs/cgroup itself (".") leaves no tmpfs for others. */
static int check_cgroupfs(const struct spec *s, const char *path, char *err, size_t errlen)
{
	if ((s->cgroupfs != CGROUPFS_NONE) != (s->ncgroup_binds > 0) ||
	    (s->ncgroup_links > 0 && s->cgroupfs == CGROUPFS_NONE))
		return spec_err(err, errlen, "spec %s: 'cgroupfs' and 'cgroup' lines with a NAME go together "
			       "('cgroupfs-link' needs them too)", path);
	for (size_t i = 0; i < s->ncgroup_binds; i++)
		if (strcmp(s->cgroup_binds[i].name, ".") == 0 && (s->ncgroup_binds > 1 || s->ncgroup_links > 0))
			return spec_err(err, errlen, "spec %s: a 'cgroup' named '.' must be the only one "
				       "named, with no 'cgroupfs-link'", path);
	return 0;
}

struct spec *spec_load(const char *path, char *err, size_t errlen)
{
	struct parser p = { .err = err, .errlen = errlen };
	FILE *fp = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (fp == NULL) {
		spec_err(err, errlen, "open spec %s: %s", path, strerror(errno));
		return NULL;
	}
	p.s = calloc(1, sizeof(*p.s));
	if (p.s == NULL) {
		fclose(fp);
		spec_err(err, errlen, "out of memory");
		return NULL;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		p.line++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if ((size_t)len != strlen(line)) {
			perr(&p, "NUL byte in line");
			goto fail;
		}
		if (len == 0)
			continue; /* blank lines carry nothing; tolerate a trailing one */
		if (parse_line(&p, line) < 0)
			goto fail;
	}
	if (ferror(fp)) {
		spec_err(err, errlen, "read spec %s: %s", path, strerror(errno));
		goto fail;
	}
	if (p.s->nargs == 0) {
		spec_err(err, errlen, "spec %s: no 'arg' directive (the program to run)", path);
		goto fail;
	}
	if (p.s->ov_lower != NULL && p.s->rootfs == NULL) {
		spec_err(err, errlen, "spec %s: 'overlay' needs 'rootfs' (the mount point)", path);
		goto fail;
	}
	if (p.s->ndevice_rules > 0 && p.s->device_filter == NULL) {
		spec_err(err, errlen, "spec %s: 'device-allow' needs 'device-filter' (the cgroup2 dir)", path);
		goto fail;
	}
	if (check_cgroupfs(p.s, path, err, errlen) < 0)
		goto fail;
	if (p.s->env == NULL) {
		/* execve wants a list even when it is empty. */
		p.s->env = calloc(1, sizeof(char *));
		if (p.s->env == NULL) {
			spec_err(err, errlen, "out of memory");
			goto fail;
		}
	}
	free(line);
	fclose(fp);
	return p.s;
fail:
	free(line);
	fclose(fp);
	spec_free(p.s);
	return NULL;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static void free_symlinks(struct spec_symlink *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(l[i].target);
		free(l[i].linkpath);
	}
	free(l);
}

void spec_free(struct spec *s)
{
	if (s == NULL)
		return;
	free(s->pidns);
	for (size_t i = 0; i < 3; i++)
		free(s->podns[i]);
	free(s->rootfs);
	free(s->ov_lower);
	free(s->ov_upper);
	free(s->ov_work);
	for (size_t i = 0; i < s->nmounts; i++) {
		free(s->mounts[i].type);
		free(s->mounts[i].src);
		free(s->mounts[i].dst);
		free(s->mounts[i].data);
	}
	free(s->mounts);
	free_symlinks(s->symlinks, s->nsymlinks);
	free_list(s->masks, s->nmasks);
	free_list(s->readonly, s->nreadonly);
	free(s->cwd);
	free(s->groups);
	free_list(s->env, s->nenv);
	free_list(s->args, s->nargs);
	free_list(s->profile.arches, s->profile.narches);
	for (size_t i = 0; i < s->profile.nrules; i++)
		free(s->profile.rules[i].name);
	free(s->profile.rules);
	free(s->rlimits);
	free_list(s->cgroups, s->ncgroups);
	for (size_t i = 0; i < s->ncgroup_binds; i++)
		free(s->cgroup_binds[i].name);
	free(s->cgroup_binds);
	free_symlinks(s->cgroup_links, s->ncgroup_links);
	free(s->device_filter);
	free(s->device_rules);
	free(s->log);
	free(s);
}

const char *spec_pidns(const struct spec *s)
{
	return s->pidns != NULL ? s->pidns : "host";
}

const char *spec_pod_ns(const struct spec *s, size_t i)
{
	return i < 3 ? s->podns[i] : NULL;
}

const char *spec_log_path(const struct spec *s)
{
	return s->log;
}

int spec_stdin(const struct spec *s)
{
	return s->stdin_open;
}

int spec_stdin_once(const struct spec *s)
{
	return s->stdin_once;
}

int spec_tty(const struct spec *s)
{
	return s->tty;
}

size_t spec_cgroup_count(const struct spec *s)
{
	return s->ncgroups;
}

const char *spec_cgroup(const struct spec *s, size_t i)
{
	return i < s->ncgroups ? s->cgroups[i] : NULL;
}

const char *spec_device_filter(const struct spec *s)
{
	return s->device_filter;
}
