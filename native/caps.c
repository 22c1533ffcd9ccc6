/* Capabilities by raw syscalls: libcap would be one more static library for
 * four system calls. */
#include "spec.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The running kernel may know more (or fewer) caps than our headers. */
static int cap_last(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = CAP_LAST_CAP;

	if (f != NULL) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	return last;
}

int caps_drop_bounding(uint64_t keep, char *err, size_t errlen)
{
	int last = cap_last();

	for (int c = 0; c <= last; c++) {
		if (keep & (1ULL << c))
			continue;
		/* Already absent (e.g. the host dropped it) is as good as dropped. */
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return spec_err(err, errlen, "drop capability %d from the bounding set: %s", c,
					strerror(errno));
	}
	return 0;
}

static int capget_v3(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

	return (int)syscall(SYS_capget, &h, d);
}

/* Permitted and effective become `caps`, inheritable none: as containerd
 * (CVE-2022-24769), so that no program with inheritable file capabilities
 * gains them across execve. Bits we do not hold
 * ourselves cannot be granted (capset would fail with EPERM); they are
 * dropped with a warning so that, say, a privileged pod still starts on a
 * host that runs peapod with a reduced bounding set. */
int caps_set(uint64_t caps, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	uint64_t have, valid = cap_last() >= 63 ? ~0ULL : (1ULL << (cap_last() + 1)) - 1;

	if (capget_v3(d) < 0)
		return spec_err(err, errlen, "capget: %s", strerror(errno));
	have = (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
	if (caps & valid & ~have)
		spec_warn("capabilities %#llx not held by the runtime, not granted",
			  (unsigned long long)(caps & valid & ~have));
	caps &= have;
	for (int i = 0; i < 2; i++) {
		d[i].permitted = d[i].effective = (uint32_t)(caps >> (32 * i));
		d[i].inheritable = 0;
	}
	/* Ambient caps would survive exec for a non-root user: none wanted. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return spec_err(err, errlen, "clear ambient capabilities: %s", strerror(errno));
	if (syscall(SYS_capset, &h, d) < 0)
		return spec_err(err, errlen, "capset %#llx: %s", (unsigned long long)caps, strerror(errno));
	return 0;
}
