/* The device filter of cgroup v2: what the v1 devices controller's
 * devices.deny/devices.allow do, as a BPF program on the container's cgroup2
 * dir (spec directives device-filter and device-allow, container.h). */
#ifndef PEAPOD_DEVICES_H
#define PEAPOD_DEVICES_H

#include <stddef.h>

struct spec;

/*
 * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program that allows what the spec's
 * "device-allow" rules allow and denies every other device access, and
 * attaches it to the spec's "device-filter" dir (BPF_F_ALLOW_MULTI: the
 * filters of the dirs above still apply). It confines every process in that
 * cgroup and below, the ones already there too. 0, or -1 with a message in err.
 */
int devices_filter_attach(const struct spec *s, char *err, size_t errlen);

#endif
