/* The device filter of cgroup v2 (devices.h): the spec's device rules as a
 * BPF_PROG_TYPE_CGROUP_DEVICE program, built as runc's devicefilter builds
 * one, attached to the container's cgroup2 dir by the monitor. */
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spec.h"

_Static_assert(SPEC_DEV_MKNOD == BPF_DEVCG_ACC_MKNOD && SPEC_DEV_READ == BPF_DEVCG_ACC_READ &&
		       SPEC_DEV_WRITE == BPF_DEVCG_ACC_WRITE,
	       "spec access bits are the kernel's");

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
/* dst = *(u32 *)(src + off) */
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define ALU32_K(op, dst, imm) INSN(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_X(dst, src) INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_K(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
/* if dst != imm: skip the rest of the rule (the offset is patched) */
#define JNE_K(dst, imm) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm)
#define EXIT INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* The most a rule takes: type, access (3), major, minor, result (2). */
#define RULE_MAX 8

/*
 * r2 = device type, r3 = requested access, r4 = major, r5 = minor (from
 * struct bpf_cgroup_dev_ctx); then per rule "every field matches: return 1"
 * (an access matches when the rule has all its bits); last "return 0".
 */
static size_t build(const struct spec *s, struct bpf_insn *p)
{
	size_t n = 0;

	p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	p[n++] = MOV32_X(BPF_REG_3, BPF_REG_2);
	p[n++] = ALU32_K(BPF_AND, BPF_REG_2, 0xffff);
	p[n++] = ALU32_K(BPF_RSH, BPF_REG_3, 16);
	p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
	p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
	for (size_t i = 0; i < s->ndevice_rules; i++) {
		const struct spec_device_rule *r = &s->device_rules[i];
		const unsigned all = SPEC_DEV_MKNOD | SPEC_DEV_READ | SPEC_DEV_WRITE;
		size_t start = n;

		if (r->type != 'a')
			p[n++] = JNE_K(BPF_REG_2, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
		if ((r->access & all) != all) {
			p[n++] = MOV32_X(BPF_REG_1, BPF_REG_3);
			p[n++] = ALU32_K(BPF_AND, BPF_REG_1, (int32_t)(~r->access & all));
			p[n++] = JNE_K(BPF_REG_1, 0);
		}
		if (r->major != SPEC_DEV_ANY)
			p[n++] = JNE_K(BPF_REG_4, (int32_t)r->major);
		if (r->minor != SPEC_DEV_ANY)
			p[n++] = JNE_K(BPF_REG_5, (int32_t)r->minor);
		p[n++] = MOV64_K(BPF_REG_0, 1);
		p[n++] = EXIT;
		/* Every jump of the rule goes to the next one. */
		for (size_t j = start; j < n; j++)
			if (p[j].code == (BPF_JMP | BPF_JNE | BPF_K))
				p[j].off = (int16_t)(n - j - 1);
	}
	p[n++] = MOV64_K(BPF_REG_0, 0);
	p[n++] = EXIT;
	return n;
}

static int bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int devices_filter_attach(const struct spec *s, char *err, size_t errlen)
{
	const char *dir = s->device_filter;
	struct bpf_insn *prog;
	union bpf_attr attr;
	int prog_fd, dir_fd, r = 0;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return spec_err(err, errlen, "device filter: open %s: %s", dir, strerror(errno));
	prog = calloc(8 + RULE_MAX * s->ndevice_rules, sizeof(*prog));
	if (prog == NULL) {
		close(dir_fd);
		return spec_err(err, errlen, "device filter: out of memory");
	}
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insn_cnt = (uint32_t)build(s, prog);
	attr.insns = (uint64_t)(uintptr_t)prog;
	attr.license = (uint64_t)(uintptr_t) "Apache";
	prog_fd = bpf(BPF_PROG_LOAD, &attr);
	free(prog);
	if (prog_fd < 0) {
		r = spec_err(err, errlen, "load the device filter (bpf BPF_PROG_LOAD): %s", strerror(errno));
	} else {
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)dir_fd;
		attr.attach_bpf_fd = (uint32_t)prog_fd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		attr.attach_flags = BPF_F_ALLOW_MULTI;
		/* The cgroup holds the program from now on, until it is removed. */
		if (bpf(BPF_PROG_ATTACH, &attr) < 0)
			r = spec_err(err, errlen, "attach the device filter to %s: %s", dir, strerror(errno));
		close(prog_fd);
	}
	close(dir_fd);
	return r;
}
