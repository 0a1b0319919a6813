/*
 * cmp_bpf.c - the XDP program that feeds an AF_XDP socket, assembled here
 * instruction by instruction and loaded with the bpf() syscall: no clang, no
 * libbpf, no BTF, no bpffs at build or run time (reference/machine.md).
 *
 * The program passes everything to the kernel stack except IPv4/UDP (no IP
 * options, not a fragment) to the endpoint's port, which it redirects to the
 * XSKMAP entry of the receiving queue (falling back to XDP_PASS if no socket
 * sits there). It is attached through a bpf_link, so it detaches when the
 * link fd closes, including when the process dies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmp_int.h"

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));
	return r < 0 ? -errno : (int)r;
}

int cmp_bpf_xskmap_create(unsigned entries)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_XSKMAP;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = entries;
	strncpy(a.map_name, "rsx_cmp_xsks", sizeof(a.map_name) - 1);
	return sys_bpf(BPF_MAP_CREATE, &a);
}

int cmp_bpf_map_update(int map_fd, uint32_t key, uint32_t value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map_fd;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)&value;
	a.flags = BPF_ANY;
	int rc = sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
	return rc < 0 ? rc : 0;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ALU64_IMM(op, d, i) INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define LDX(sz, d, s, o) INSN(BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define JMP_REG(op, d, s, o) INSN(BPF_JMP | (op) | BPF_X, d, s, o, 0)
#define JMP_IMM(op, d, i, o) INSN(BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define TO_PASS 0x7fff	/* placeholder offset, patched to the "pass" label below */

/* Byte pairs as a little-endian u16 load sees them: network 0x0800 reads as 0x0008. */
static int32_t be16_as_le_load(uint16_t v)
{
	return (int32_t)(uint16_t)((v >> 8) | (v << 8));
}

int cmp_bpf_prog_load(int xskmap_fd, uint16_t port, char *log, size_t log_size)
{
	struct bpf_insn prog[] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, data)),
		LDX(BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct xdp_md, data_end)),
		MOV64_REG(BPF_REG_4, BPF_REG_2),
		ALU64_IMM(BPF_ADD, BPF_REG_4, 42),		/* Ethernet 14 + IPv4 20 + UDP 8 */
		JMP_REG(BPF_JGT, BPF_REG_4, BPF_REG_3, TO_PASS),
		LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12),		/* ethertype */
		JMP_IMM(BPF_JNE, BPF_REG_5, be16_as_le_load(0x0800), TO_PASS),
		LDX(BPF_B, BPF_REG_5, BPF_REG_2, 14),		/* version 4, IHL 5: no options */
		JMP_IMM(BPF_JNE, BPF_REG_5, 0x45, TO_PASS),
		LDX(BPF_B, BPF_REG_5, BPF_REG_2, 23),		/* protocol */
		JMP_IMM(BPF_JNE, BPF_REG_5, 17, TO_PASS),
		LDX(BPF_H, BPF_REG_5, BPF_REG_2, 20),		/* flags + fragment offset */
		ALU64_IMM(BPF_AND, BPF_REG_5, be16_as_le_load(0x3fff)),	/* MF or an offset: a fragment */
		JMP_IMM(BPF_JNE, BPF_REG_5, 0, TO_PASS),
		LDX(BPF_H, BPF_REG_5, BPF_REG_2, 36),		/* UDP destination port */
		JMP_IMM(BPF_JNE, BPF_REG_5, be16_as_le_load(port), TO_PASS),
		LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct xdp_md, rx_queue_index)),
		LD_MAP_FD(BPF_REG_1, xskmap_fd),
		MOV64_IMM(BPF_REG_3, XDP_PASS),			/* no socket on this queue: to the kernel */
		CALL(BPF_FUNC_redirect_map),
		EXIT(),
		/* pass: */
		MOV64_IMM(BPF_REG_0, XDP_PASS),
		EXIT(),
	};
	const int n = (int)(sizeof(prog) / sizeof(prog[0]));
	const int pass = n - 2;
	for (int i = 0; i < n; i++)
		if (BPF_CLASS(prog[i].code) == BPF_JMP && prog[i].off == TO_PASS)
			prog[i].off = (int16_t)(pass - (i + 1));

	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_XDP;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.expected_attach_type = BPF_XDP;
	strncpy(a.prog_name, "rsx_cmp_filter", sizeof(a.prog_name) - 1);
	int fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0 && log && log_size) {
		/* Load again with the verifier's log, for the caller's diagnostics. */
		log[0] = 0;
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = (uint32_t)log_size;
		a.log_level = 1;
		int fd2 = sys_bpf(BPF_PROG_LOAD, &a);
		if (fd2 >= 0)
			return fd2;
	}
	return fd;
}

int cmp_bpf_xdp_attach(int prog_fd, int ifindex, uint32_t xdp_flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = (uint32_t)prog_fd;
	a.link_create.target_ifindex = (uint32_t)ifindex;
	a.link_create.attach_type = BPF_XDP;
	a.link_create.flags = xdp_flags;
	return sys_bpf(BPF_LINK_CREATE, &a);
}
