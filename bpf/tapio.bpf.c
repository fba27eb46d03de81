// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tapio's kernel probes. Raw tracepoints only: they hand over the kernel objects themselves
 * (task_struct, sock), so identity is read from the task at event time, and they need neither
 * tracefs nor kprobes.
 */
#include "tapio_vmlinux.h"
#include "tapio_event.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define ECONNREFUSED 111
#define ETIMEDOUT 110
#define EHOSTUNREACH 113
#define ENETUNREACH 101

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define TCP_LISTEN 10

#define PAGE_SHIFT 12

/* Keeps the record type in the object's BTF, where a Go test checks the decoder's offsets. */
const struct event *unused_event __attribute__((unused));

/* Set by user space before load. */
volatile const bool exit_abnormal_only = true;
/* High-volume records wake the reader only once this much is pending; it also drains the buffer
 * on its own schedule. A wake-up per record would cost more than the event itself. */
volatile const __u64 wakeup_bytes = 1 << 18;
/* Completed block requests slower than this become io_latency events; 0 turns them off. */
volatile const __u64 io_latency_threshold_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Ring-buffer reserve failures, per event kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EVENT_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Events the programs filtered out by rule (normal exits, non-fatal signals), per event kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EVENT_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} filtered SEC(".maps");

/* Who opened a socket, captured in process context at connect()/listen(): resets and refusals
 * arrive in softirq context, where the current task is unrelated. Entries leave on the socket's
 * move to CLOSE, so a plain (preallocated, cheaper than LRU) hash is enough. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct identity);
} sock_owner SEC(".maps");

/* Listening port → the process that listens, for the server side of accepted connections. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct identity);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct retransmit_key);
	__type(value, struct retransmit_value);
} retransmits SEC(".maps");

/* In-flight block requests: when and by whom they were issued. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct io_start);
} io_inflight SEC(".maps");

/* Processes already reported as OOM victims (tgid → start time). The kernel marks a victim's
 * threads one by one as they allocate while dying; that is one OOM kill, not several. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} oom_reported SEC(".maps");

/* cgroup id → the cgroup's path, captured the first time a cgroup is seen. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct cgroup_path);
} cgroup_paths SEC(".maps");

/* Scratch space for values too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgroup_path);
} path_scratch SEC(".maps");

static __always_inline void count_drop(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&dropped, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void count_filtered(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&filtered, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline struct event *reserve(__u32 kind)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(kind);
		return 0;
	}
	e->ktime_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->_pad = 0;
	return e;
}

/* submit_rare wakes the reader at once: these events are few and each matters. */
static __always_inline void submit_rare(struct event *e)
{
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

static __always_inline void submit_frequent(struct event *e)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(e, pending >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	struct kernfs_node___pre615 *old = (void *)kn;
	return BPF_CORE_READ(old, parent);
}

/* The memory controller's cgroup carries the container layout on cgroup v1 and is the unified
 * cgroup on v2; the default hierarchy is the fallback. */
static __always_inline struct cgroup *task_cgroup(struct task_struct *task)
{
	struct cgroup *cg = 0;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (id >= 0 && id < 12) {
			struct cgroup_subsys_state *css = BPF_CORE_READ(task, cgroups, subsys[id]);
			if (css)
				cg = BPF_CORE_READ(css, cgroup);
		}
	}
	if (!cg)
		cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	return cg;
}

static __always_inline void fill_identity(struct identity *id, struct task_struct *task)
{
	id->pid = BPF_CORE_READ(task, pid);
	id->tgid = BPF_CORE_READ(task, tgid);
	id->ppid = BPF_CORE_READ(task, real_parent, tgid);
	id->uid = BPF_CORE_READ(task, cred, uid.val);
	id->start_ns = BPF_CORE_READ(task, start_time);
	bpf_probe_read_kernel_str(id->comm, sizeof(id->comm), BPF_CORE_READ(task, comm));

	struct cgroup *cg = task_cgroup(task);
	struct kernfs_node *kn = cg ? BPF_CORE_READ(cg, kn) : 0;
	id->cgroup_id = kn ? BPF_CORE_READ(kn, id) : 0;
	if (!kn || bpf_map_lookup_elem(&cgroup_paths, &id->cgroup_id))
		return;
	__u32 zero = 0;
	struct cgroup_path *path = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!path)
		return;
#pragma unroll
	for (int i = 0; i < CGROUP_DEPTH; i++) {
		path->name[i][0] = 0;
		if (!kn)
			continue;
		const char *name = BPF_CORE_READ(kn, name);
		if (name)
			bpf_probe_read_kernel_str(path->name[i], CGROUP_NAME_LEN, name);
		kn = kernfs_parent(kn);
	}
	bpf_map_update_elem(&cgroup_paths, &id->cgroup_id, path, BPF_NOEXIST);
}

SEC("raw_tracepoint/sched_process_exec")
int tapio_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct event *e = reserve(EVENT_PROCESS_EXEC);
	if (!e)
		return 0;
	fill_identity(&e->subject, task);
	bpf_probe_read_kernel_str(e->exec.filename, sizeof(e->exec.filename), BPF_CORE_READ(bprm, filename));
	submit_frequent(e);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int tapio_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	bool group_dead = (bool)ctx->args[1];
	if (!group_dead)
		return 0; /* a thread, not the process */
	/* exit_group() and fatal signals record the status on the signal struct before any thread
	 * exits; the task's own exit_code is the fallback. */
	int code = BPF_CORE_READ(task, signal, group_exit_code);
	if (!code)
		code = BPF_CORE_READ(task, exit_code);
	if (exit_abnormal_only && code == 0) {
		count_filtered(EVENT_PROCESS_EXIT);
		return 0;
	}
	struct event *e = reserve(EVENT_PROCESS_EXIT);
	if (!e)
		return 0;
	fill_identity(&e->subject, task);
	e->exit.exit_code = code;
	e->exit._pad = 0;
	submit_rare(e);
	return 0;
}

SEC("raw_tracepoint/mark_victim")
int tapio_oom_victim(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *victim = (struct task_struct *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(victim, tgid);
	__u64 started = BPF_CORE_READ(victim, group_leader, start_time);
	__u64 *reported = bpf_map_lookup_elem(&oom_reported, &tgid);
	if (reported && *reported == started) {
		count_filtered(EVENT_OOM_KILL);
		return 0;
	}
	bpf_map_update_elem(&oom_reported, &tgid, &started, BPF_ANY);
	struct event *e = reserve(EVENT_OOM_KILL);
	if (!e)
		return 0;
	fill_identity(&e->subject, victim);
	e->oom.memcg_limit_bytes = 0;
	e->oom.memcg_usage_bytes = 0;
	e->oom.memcg_id = 0;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (id >= 0 && id < 12) {
			struct mem_cgroup *memcg = (struct mem_cgroup *)BPF_CORE_READ(victim, cgroups, subsys[id]);
			if (memcg) {
				e->oom.memcg_limit_bytes = BPF_CORE_READ(memcg, memory.max) << PAGE_SHIFT;
				e->oom.memcg_usage_bytes = BPF_CORE_READ(memcg, memory.usage.counter) << PAGE_SHIFT;
				e->oom.memcg_id = BPF_CORE_READ(memcg, css.cgroup, kn, id);
			}
		}
	}
	struct mm_struct *mm = BPF_CORE_READ(victim, mm);
	e->oom.total_vm_pages = mm ? BPF_CORE_READ(mm, total_vm) : 0;
	e->oom.anon_rss_pages = mm ? BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count) : 0;
	submit_rare(e);
	return 0;
}

static __always_inline bool fatal_signal(int sig)
{
	switch (sig) {
	case 3:  /* SIGQUIT */
	case 4:  /* SIGILL */
	case 5:  /* SIGTRAP */
	case 6:  /* SIGABRT */
	case 7:  /* SIGBUS */
	case 8:  /* SIGFPE */
	case 9:  /* SIGKILL */
	case 11: /* SIGSEGV */
	case 31: /* SIGSYS */
		return true;
	}
	return false;
}

SEC("raw_tracepoint/signal_generate")
int tapio_signal_generate(struct bpf_raw_tracepoint_args *ctx)
{
	int sig = (int)ctx->args[0];
	struct task_struct *target = (struct task_struct *)ctx->args[2];
	int result = (int)ctx->args[4];
	if (!fatal_signal(sig) || result != 0 /* TRACE_SIGNAL_DELIVERED */) {
		count_filtered(EVENT_FATAL_SIGNAL);
		return 0;
	}
	struct event *e = reserve(EVENT_FATAL_SIGNAL);
	if (!e)
		return 0;
	fill_identity(&e->subject, target);
	struct task_struct *sender = (struct task_struct *)bpf_get_current_task();
	e->signal.signo = sig;
	e->signal.code = 0;
	e->signal.result = result;
	e->signal.sender_pid = BPF_CORE_READ(sender, pid);
	e->signal.sender_tgid = BPF_CORE_READ(sender, tgid);
	e->signal._pad = 0;
	bpf_probe_read_kernel_str(e->signal.sender_comm, sizeof(e->signal.sender_comm), BPF_CORE_READ(sender, comm));
	submit_rare(e);
	return 0;
}

static __always_inline void read_addresses(const struct sock *sk, __u16 *family, __u16 *sport, __u16 *dport, __u8 *saddr, __u8 *daddr)
{
	*family = BPF_CORE_READ(sk, __sk_common.skc_family);
	*sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(saddr, 0, 16);
	__builtin_memset(daddr, 0, 16);
	if (*family == AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(saddr, &s, 4);
		__builtin_memcpy(daddr, &d, 4);
	} else if (*family == AF_INET6) {
		BPF_CORE_READ_INTO(saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline void fill_sock(struct event *e, const struct sock *sk, int err, __u16 direction)
{
	read_addresses(sk, &e->sock.family, &e->sock.sport, &e->sock.dport, e->sock.saddr, e->sock.daddr);
	e->sock.err = err;
	e->sock.direction = direction;
	e->sock._pad = 0;
}

/* The socket's owner: who connected, else who listens on its local port. */
static __always_inline struct identity *owner_of(const struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct identity *id = bpf_map_lookup_elem(&sock_owner, &key);
	if (id)
		return id;
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	return bpf_map_lookup_elem(&listeners, &port);
}

static __always_inline void emit_sock(__u32 kind, const struct sock *sk, int err, __u16 direction, bool current_is_owner)
{
	struct event *e = reserve(kind);
	if (!e)
		return;
	struct identity *owner = owner_of(sk);
	if (owner)
		__builtin_memcpy(&e->subject, owner, sizeof(e->subject));
	else if (current_is_owner)
		fill_identity(&e->subject, (struct task_struct *)bpf_get_current_task());
	else
		__builtin_memset(&e->subject, 0, sizeof(e->subject));
	fill_sock(e, sk, err, direction);
	submit_frequent(e);
}

SEC("raw_tracepoint/inet_sock_set_state")
int tapio_sock_state(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	int oldstate = (int)ctx->args[1];
	int newstate = (int)ctx->args[2];
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;

	if (oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN)) {
		/* connect() and listen() run in the owner's context. */
		struct identity owner;
		fill_identity(&owner, (struct task_struct *)bpf_get_current_task());
		bpf_map_update_elem(&sock_owner, &key, &owner, BPF_ANY);
		if (newstate == TCP_LISTEN) {
			__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
			bpf_map_update_elem(&listeners, &port, &owner, BPF_ANY);
			emit_sock(EVENT_LISTEN, sk, 0, 0, true);
		}
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_CLOSE) {
		int err = BPF_CORE_READ(sk, sk_err);
		if (err == ECONNREFUSED)
			emit_sock(EVENT_CONNECTION_REFUSED, sk, err, 0, false);
		else if (err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH)
			emit_sock(EVENT_CONNECTION_TIMEOUT, sk, err, 0, false);
	}
	if (newstate == TCP_CLOSE) {
		bpf_map_delete_elem(&sock_owner, &key);
		if (oldstate == TCP_LISTEN) {
			__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
			bpf_map_delete_elem(&listeners, &port);
		}
	}
	return 0;
}

SEC("raw_tracepoint/tcp_receive_reset")
int tapio_tcp_receive_reset(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	/* In SYN_SENT a reset is a refusal, reported as connection_refused on the state change. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		return 0;
	emit_sock(EVENT_CONNECTION_RESET, sk, 0, 1, false);
	return 0;
}

SEC("raw_tracepoint/tcp_send_reset")
int tapio_tcp_send_reset(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	/* Without a socket the reset answers a segment for a closed port: the refusal is reported on
	 * the connecting side. */
	if (!sk)
		return 0;
	emit_sock(EVENT_CONNECTION_RESET, sk, 0, 2, true);
	return 0;
}

SEC("raw_tracepoint/tcp_retransmit_skb")
int tapio_tcp_retransmit(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	struct retransmit_key key = {};
	read_addresses(sk, &key.family, &key.sport, &key.dport, key.saddr, key.daddr);
	__u64 now = bpf_ktime_get_ns();
	struct retransmit_value *v = bpf_map_lookup_elem(&retransmits, &key);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		v->last_ns = now;
		return 0;
	}
	struct retransmit_value fresh = {.count = 1, .first_ns = now, .last_ns = now};
	struct identity *owner = owner_of(sk);
	if (owner)
		__builtin_memcpy(&fresh.owner, owner, sizeof(fresh.owner));
	bpf_map_update_elem(&retransmits, &key, &fresh, BPF_NOEXIST);
	return 0;
}

#define REQ_OP_MASK 0xff

SEC("raw_tracepoint/block_rq_issue")
int tapio_block_issue(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 key = ctx->args[0];
	struct io_start start = {.ktime_ns = bpf_ktime_get_ns()};
	fill_identity(&start.issuer, (struct task_struct *)bpf_get_current_task());
	bpf_map_update_elem(&io_inflight, &key, &start, BPF_ANY);
	return 0;
}

SEC("raw_tracepoint/block_rq_complete")
int tapio_block_complete(struct bpf_raw_tracepoint_args *ctx)
{
	struct request *rq = (struct request *)ctx->args[0];
	int error = (int)(__u8)ctx->args[1];
	__u32 nr_bytes = (__u32)ctx->args[2];
	__u64 key = ctx->args[0];
	__u64 now = bpf_ktime_get_ns();
	struct io_start *start = bpf_map_lookup_elem(&io_inflight, &key);
	__u64 latency = start ? now - start->ktime_ns : 0;

	__u32 kind;
	if (error)
		kind = EVENT_IO_ERROR;
	else if (io_latency_threshold_ns && start && latency >= io_latency_threshold_ns)
		kind = EVENT_IO_LATENCY;
	else
		goto done;

	struct event *e = reserve(kind);
	if (!e)
		goto done;
	if (start)
		__builtin_memcpy(&e->subject, &start->issuer, sizeof(e->subject));
	else
		__builtin_memset(&e->subject, 0, sizeof(e->subject));
	e->io.sector = BPF_CORE_READ(rq, __sector);
	e->io.latency_ns = latency;
	e->io.bytes = nr_bytes;
	e->io.op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	e->io.error = error;
	e->io._pad = 0;
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	e->io.major = disk ? BPF_CORE_READ(disk, major) : 0;
	e->io.minor = disk ? BPF_CORE_READ(disk, first_minor) : 0;
	e->io.disk[0] = 0;
	if (disk)
		bpf_probe_read_kernel_str(e->io.disk, sizeof(e->io.disk), disk->disk_name);
	if (kind == EVENT_IO_ERROR)
		submit_rare(e);
	else
		submit_frequent(e);
done:
	if (start)
		bpf_map_delete_elem(&io_inflight, &key);
	return 0;
}
