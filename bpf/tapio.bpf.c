// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tapio's kernel probes. BTF raw tracepoints (tp_btf) only — no kprobes, no fentry, no tracefs:
 * they hand over the kernel objects themselves (task_struct, sock), typed, so fields are read
 * with plain loads (CO-RE-relocated against the running kernel's BTF) instead of a helper call
 * per field, and identity is read from the task at event time.
 *
 * Besides the events, the programs keep the process tree (procs: forks, execs) and the listener
 * directory (listeners: who listens on which address, per network namespace), so that every
 * event can name the workload it belongs to even when the processes are gone by the time user
 * space reads it.
 */
#include "tapio_vmlinux.h"
#include "tapio_event.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define ECONNREFUSED 111
#define ECONNRESET 104
#define EPIPE 32
#define ETIMEDOUT 110
#define EHOSTUNREACH 113
#define ENETUNREACH 101

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

#define PAGE_SHIFT 12
#define CGROUP_SUBSYS_MAX 16

/* How far the workload walk climbs the process tree: a pre-fork worker is one level below its
 * server (nginx, PostgreSQL, gunicorn), two in a few (Apache's MPMs with a starter process). */
#define WORKLOAD_DEPTH 4

/* Keeps the record type in the object's BTF, where a Go test checks the decoder's offsets. */
const struct event *unused_event __attribute__((unused));

/* Set by user space before load. */
volatile const bool exit_abnormal_only = true;
/* Probes that share a program: each one's events are emitted only when its probe is enabled. */
volatile const bool emit_process_exec = false;
volatile const bool emit_fatal_signal = true;
volatile const bool emit_connections = true;
volatile const bool emit_received_resets = true;
volatile const bool track_exit_signals = true;
/* An ending signal names the cause of an exit only when the exit follows it within this time. */
volatile const __u64 signal_window_ns = 60ULL * 1000 * 1000 * 1000;
/* A connect closed in SYN_SENT with no socket error after at least this long (half a second: an application's own connect timeout, not the
 * quarter second after which happy eyeballs drops its losing attempt) — the application
 * gave up waiting for an answer — is reported as connection_timeout (error 0). A connect given up
 * sooner (happy eyeballs, a cancelled request) is not a timeout. In jiffies, set by user space
 * from the kernel's tick length: a connect's start is read from jiffies, a plain load, where a
 * clock read costs tens of nanoseconds per connect on a virtual machine. */
volatile const __u32 connect_abandon_jiffies = 500;
/* Connection failures that repeat their CPU's run are counted, not written (emit_failure); off
 * with the receiver's merge_repeats. */
volatile const bool count_repeats = true;
/* Records wake the reader each time this much more is pending (see submit). */
volatile const __u64 wakeup_bytes = 1 << 18;
/* Completed block requests slower than this become io_latency events; 0 turns them off. */
volatile const __u64 io_latency_threshold_ns = 0;

/* Bumped whenever a process listens for the first time: every cached workload walk is then
 * stale. Listens are rare, so the cache almost always holds. Starts at 1 so that a zeroed cache
 * entry is never current. */
volatile __u32 listen_generation = 1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Each CPU's current run of one repeated connection failure (emit_failure). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct failure_run);
} failure_runs SEC(".maps");

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

/* The process tree: tgid → what the process is and where it came from. An LRU map, so that an
 * exited process stays known while its children live on, and the map never fills. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct proc_info);
} procs SEC(".maps");

/* Who owns a socket, captured in process context at connect(): resets and refusals arrive in
 * softirq context, where the current task is unrelated. An accepted connection's owner is its
 * listener's, found in the listener directory when needed. Entries leave on the socket's move to
 * CLOSE (every TCP socket passes through it before it is freed, so an address is never taken for
 * the socket that had it before).
 *
 * A set-associative table indexed by a hash of the socket's address, not a hash map: a hash map's
 * update and delete (bucket lock, free list) cost more than the rest of a refused connect, and
 * socket storage's allocation per connect more still. Array lookups are inlined and take no lock.
 * A connect that finds its set full takes the slot of the set's oldest connect; that and a connect
 * that loses its slot to another CPU's are counted (owners_evicted): the socket whose owner was
 * not kept has its later events attributed to its listener, to the current task where the event
 * runs in process context, or to no process. */
#define OWNER_WAYS 4
#define OWNER_SETS (1 << 13) /* × 4 ways: 32768 sockets, as many as a hash map of that size */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OWNER_SETS);
	__type(key, __u32);
	__type(value, struct owner_set);
} sock_owners SEC(".maps");

/* Connecting sockets whose owner the table could not keep, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} owners_evicted SEC(".maps");

/* One number per CPU, for sock_id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pointer_scratch SEC(".maps");

/* (network namespace, address, port) → the process that listens there. On a Kubernetes node many
 * pods listen on :8080, each in its own namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct listener_key);
	__type(value, struct listener);
} listeners SEC(".maps");

/* tgid → the last signal that could end the process, so that its exit names its cause and sender. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct signal_record);
} exit_signals SEC(".maps");

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

/* The last task this CPU identified, with what was looked up for it: a storm comes from few
 * processes, and neither the process tree nor the cgroup paths need be asked again per event. */
struct identity_cache {
	__u64 task;     /* the task_struct's address, */
	__u32 tgid;     /* its process (a freed task's address is soon reused), */
	__u32 gen;      /* the listen_generation the workload was computed at, */
	__u64 comm[2];  /* and its name: an exec of another program changes the workload */
	__u32 workload_tgid;
	__u32 _pad;
	__u64 cgroup_id; /* the cgroup whose path was captured last */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct identity_cache);
} identity_cache SEC(".maps");

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

/* A record's size in the ring buffer: the record and its 8-byte header, 8-byte aligned. */
#define RECORD_BYTES ((sizeof(struct event) + 8 + 7) / 8 * 8)

/* submit never wakes the reader for the record alone: a wake-up (an irq_work raised by an
 * inter-processor interrupt) costs more than the event — tens of microseconds on a virtual
 * machine — and a storm would pay it per event. The reader drains the buffer on its own schedule
 * (at least every batch timeout, which bounds every event's latency, rare ones included) and is
 * woken only when a record takes the pending data across a multiple of wakeup_bytes, so that a
 * burst cannot fill the buffer between two of its reads. */
static __always_inline void submit(struct event *e)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 before = pending > RECORD_BYTES ? pending - RECORD_BYTES : 0;
	bool crossed = pending / wakeup_bytes != before / wakeup_bytes;
	bpf_ringbuf_submit(e, crossed ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return kn->__parent;
	struct kernfs_node___pre615 *old = (void *)kn;
	return old->parent;
}

/* The memory controller's cgroup carries the container layout on cgroup v1. On cgroup v2 it is
 * the nearest ancestor with the controller enabled, so the default hierarchy's own cgroup — the
 * task's real one — is taken instead. */
static __always_inline struct cgroup *task_cgroup(struct task_struct *task)
{
	struct css_set *cset = task->cgroups;
	struct cgroup *dfl = cset->dfl_cgrp;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int i = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (i >= 0 && i < CGROUP_SUBSYS_MAX) {
			struct cgroup_subsys_state *css = cset->subsys[i];
			struct cgroup *memory = css ? css->cgroup : 0;
			if (memory && (!dfl || memory->root != dfl->root))
				return memory;
		}
	}
	return dfl;
}

/* Captures a cgroup's path the first time it is seen. */
static __always_inline void capture_cgroup(struct kernfs_node *kn, __u64 id)
{
	__u32 zero = 0;
	if (bpf_map_lookup_elem(&cgroup_paths, &id))
		return;
	struct cgroup_path *path = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!path)
		return;
#pragma unroll
	for (int i = 0; i < CGROUP_DEPTH; i++) {
		path->name[i][0] = 0;
		if (!kn)
			continue;
		const char *name = kn->name;
		if (name)
			bpf_probe_read_kernel_str(path->name[i], CGROUP_NAME_LEN, name);
		kn = kernfs_parent(kn);
	}
	bpf_map_update_elem(&cgroup_paths, &id, path, BPF_NOEXIST);
}

static __always_inline bool same_program(struct task_struct *a, struct task_struct *b)
{
	/* The kernel names a process after the program it executed (comm): a child that executed
	 * its parent's program again (a re-executed worker) keeps its name. */
	__u64 *x = (__u64 *)a->comm;
	__u64 *y = (__u64 *)b->comm;
	return x[0] == y[0] && x[1] == y[1];
}

/* track_process records a process the kernel did not see start: it existed before the
 * collector, or its entry was evicted. */
static __always_inline struct proc_info *track_process(struct task_struct *task, __u32 tgid)
{
	struct task_struct *leader = task->group_leader;
	struct task_struct *parent = leader->real_parent;
	struct proc_info info = {};
	info.start_ns = leader->start_time;
	info.ppid = parent->tgid;
	info.parent_start_ns = parent->group_leader->start_time;
	info.own_program = !same_program(leader, parent);
	bpf_map_update_elem(&procs, &tgid, &info, BPF_NOEXIST);
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* workload_of walks up the process tree to the nearest process that listens, across forks that
 * kept their parent's program: a PostgreSQL backend to its postmaster, an nginx worker to its
 * master. A process that executed another program (a shell, a tool) left its parent's workload.
 * The result is cached in the process's entry until the next new listener anywhere. */
static __always_inline __u32 workload_of(struct proc_info *self, __u32 tgid)
{
	__u32 gen = listen_generation;
	if (self->workload_gen == gen)
		return self->workload_tgid;
	__u32 found = 0, cur = tgid;
	struct proc_info *p = self;
#pragma unroll
	for (int i = 0; i < WORKLOAD_DEPTH; i++) {
		if (p->listens) {
			found = cur;
			break;
		}
		if (p->own_program)
			break;
		__u32 parent = p->ppid;
		__u64 parent_start = p->parent_start_ns;
		if (parent <= 1) /* init listens on behalf of the services it activates: never a workload */
			break;
		p = bpf_map_lookup_elem(&procs, &parent);
		if (!p || (parent_start && p->start_ns && parent_start != p->start_ns))
			break;
		cur = parent;
	}
	self->workload_tgid = found;
	self->workload_gen = gen;
	return found;
}

/* fill_identity_of fills an identity from a task; proc is the task's process-tree entry when the
 * caller already looked it up (0: looked up here when needed). */
static __always_inline void fill_identity_of(struct identity *id, struct task_struct *task, struct proc_info *proc)
{
	__u32 tgid = task->tgid;
	id->pid = task->pid;
	id->tgid = tgid;
	id->ppid = task->real_parent->tgid;
	id->uid = task->cred->uid.val;
	id->start_ns = task->group_leader->start_time;
	/* The process is named by its thread group leader, never by the thread that happens to run
	 * (a server's last thread to exit is often a helper thread with a name of its own). */
	__builtin_memcpy(id->comm, task->group_leader->comm, TASK_COMM_LEN);
	id->_pad = 0;

	struct cgroup *cg = task_cgroup(task);
	struct kernfs_node *kn = cg ? cg->kn : 0;
	id->cgroup_id = kn ? kn->id : 0;

	__u32 zero = 0, gen = listen_generation;
	struct identity_cache *c = bpf_map_lookup_elem(&identity_cache, &zero);
	__u64 *comm = (__u64 *)id->comm;
	if (c && c->task == (__u64)task && c->tgid == tgid && c->gen == gen && c->comm[0] == comm[0] && c->comm[1] == comm[1]) {
		id->workload_tgid = c->workload_tgid;
	} else {
		struct proc_info *p = proc ? proc : bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			p = track_process(task, tgid);
		id->workload_tgid = p ? workload_of(p, tgid) : 0;
		if (c) {
			c->task = (__u64)task;
			c->tgid = tgid;
			c->comm[0] = comm[0];
			c->comm[1] = comm[1];
			c->gen = gen;
			c->workload_tgid = id->workload_tgid;
		}
	}
	if (kn && (!c || c->cgroup_id != id->cgroup_id)) {
		capture_cgroup(kn, id->cgroup_id);
		if (c)
			c->cgroup_id = id->cgroup_id;
	}
}

static __always_inline void fill_identity(struct identity *id, struct task_struct *task)
{
	fill_identity_of(id, task, 0);
}

/* ---- The process tree ---- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tapio_process_fork, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid != child->tgid)
		return 0; /* a new thread, not a process */
	/* CLONE_PARENT makes the child its parent's sibling: real_parent is who it belongs to. */
	struct task_struct *real_parent = child->real_parent;
	__u32 tgid = child->tgid;
	__u32 ptgid = real_parent->tgid;
	struct proc_info info = {};
	info.start_ns = child->start_time;
	info.ppid = ptgid;
	info.parent_start_ns = real_parent->group_leader->start_time;
	/* A forked child serves where its parent serves, until it executes another program. The
	 * parent's walk is brought up to date first (once per parent and listen generation), so that
	 * the child's first event — often its exit — need not walk through the parent again. */
	struct proc_info *p = bpf_map_lookup_elem(&procs, &ptgid);
	/* (An entry of an earlier process with the parent's pid is not the parent's: the walk
	 * stops at it too.) */
	if (p && (!p->start_ns || p->start_ns == info.parent_start_ns)) {
		info.workload_tgid = workload_of(p, ptgid);
		info.workload_gen = p->workload_gen;
	}
	bpf_map_update_elem(&procs, &tgid, &info, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tapio_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!same_program(task, task->real_parent)) {
		__u32 tgid = task->tgid;
		struct proc_info *p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			p = track_process(task, tgid);
		if (p && !p->own_program) {
			p->own_program = 1;
			p->workload_gen = 0;
		}
	}
	if (!emit_process_exec)
		return 0;
	struct event *e = reserve(EVENT_PROCESS_EXEC);
	if (!e)
		return 0;
	fill_identity(&e->subject, task);
	bpf_probe_read_kernel_str(e->exec.filename, sizeof(e->exec.filename), bprm->filename);
	submit(e);
	return 0;
}

/* ---- Exits and signals ---- */

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tapio_process_exit, struct task_struct *task)
{
	/* The last thread to exit ends the process; the others are threads. */
	if (task->signal->live.counter != 0)
		return 0;
	/* exit_group() and fatal signals record the status on the signal struct before any thread
	 * exits; the task's own exit_code is the fallback. */
	int code = task->signal->group_exit_code;
	if (!code)
		code = task->exit_code;
	__u32 tgid = task->tgid;
	struct proc_info *p = bpf_map_lookup_elem(&procs, &tgid);
	struct signal_record *sig = 0;
	if (p && p->signalled) {
		sig = bpf_map_lookup_elem(&exit_signals, &tgid);
		if (sig && bpf_ktime_get_ns() - sig->ktime_ns > signal_window_ns)
			sig = 0;
	}
	bool listens = p && p->listens;
	/* A serving process's end is evidence whatever its code: a process that listened, or a
	 * worker of one stopped by a signal from another process (its server shutting down). */
	bool keep = !exit_abnormal_only || code != 0 || listens ||
		    (sig && sig->sender.tgid != tgid && workload_of(p, tgid) != 0);
	if (!keep) {
		count_filtered(EVENT_PROCESS_EXIT);
	} else {
		struct event *e = reserve(EVENT_PROCESS_EXIT);
		if (e) {
			/* Its exit is its own last event: the process-tree entry looked up above is its. */
			fill_identity_of(&e->subject, task, p);
			e->exit.exit_code = code;
			e->exit.flags = listens ? EXIT_LISTENER : 0;
			if (sig) {
				e->exit.flags |= EXIT_SIGNALLED;
				e->exit.signo = sig->signo;
				e->exit.signal_code = sig->code;
				__builtin_memcpy(&e->exit.sender, &sig->sender, sizeof(e->exit.sender));
			} else {
				e->exit.signo = 0;
				e->exit.signal_code = 0;
				__builtin_memset(&e->exit.sender, 0, sizeof(e->exit.sender));
			}
			submit(e);
		}
	}
	if (p && p->signalled)
		bpf_map_delete_elem(&exit_signals, &tgid);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(tapio_oom_victim, struct task_struct *victim)
{
	__u32 tgid = victim->tgid;
	__u64 started = victim->group_leader->start_time;
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
		int i = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (i >= 0 && i < CGROUP_SUBSYS_MAX) {
			/* The css is embedded in its mem_cgroup; the verifier types the pointer as the css, so
			 * the enclosing struct is read with probe reads. */
			struct mem_cgroup *memcg = (struct mem_cgroup *)victim->cgroups->subsys[i];
			if (memcg) {
				e->oom.memcg_limit_bytes = BPF_CORE_READ(memcg, memory.max) << PAGE_SHIFT;
				e->oom.memcg_usage_bytes = BPF_CORE_READ(memcg, memory.usage.counter) << PAGE_SHIFT;
				e->oom.memcg_id = BPF_CORE_READ(memcg, css.cgroup, kn, id);
			}
		}
	}
	struct mm_struct *mm = victim->mm;
	e->oom.total_vm_pages = mm ? mm->total_vm : 0;
	e->oom.anon_rss_pages = mm ? mm->rss_stat[MM_ANONPAGES].count : 0;
	submit(e);
	return 0;
}

#define SIGBIT(n) (1u << (n))
/* Signals whose default action ends the process, minus the timers and I/O notices that
 * programs handle by the hundred per second (SIGALRM, SIGVTALRM, SIGPROF, SIGIO). */
#define ENDING_SIGNALS                                                                                 \
	(SIGBIT(1) /* HUP */ | SIGBIT(2) /* INT */ | SIGBIT(3) /* QUIT */ | SIGBIT(4) /* ILL */ |           \
	 SIGBIT(5) /* TRAP */ | SIGBIT(6) /* ABRT */ | SIGBIT(7) /* BUS */ | SIGBIT(8) /* FPE */ |          \
	 SIGBIT(9) /* KILL */ | SIGBIT(10) /* USR1 */ | SIGBIT(11) /* SEGV */ | SIGBIT(12) /* USR2 */ |     \
	 SIGBIT(13) /* PIPE */ | SIGBIT(15) /* TERM */ | SIGBIT(16) /* STKFLT */ | SIGBIT(24) /* XCPU */ |  \
	 SIGBIT(25) /* XFSZ */ | SIGBIT(30) /* PWR */ | SIGBIT(31) /* SYS */)
/* The ones reported as fatal_signal events of their own. */
#define FATAL_SIGNALS                                                                                  \
	(SIGBIT(3) | SIGBIT(4) | SIGBIT(5) | SIGBIT(6) | SIGBIT(7) | SIGBIT(8) | SIGBIT(9) | SIGBIT(11) |   \
	 SIGBIT(31))
#define TRACE_SIGNAL_DELIVERED 0

SEC("tp_btf/signal_generate")
int BPF_PROG(tapio_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *target, int group, int result)
{
	if (result != TRACE_SIGNAL_DELIVERED || sig <= 0 || sig >= 32 || !(SIGBIT(sig) & ENDING_SIGNALS)) {
		count_filtered(EVENT_FATAL_SIGNAL);
		return 0;
	}
	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) stand for kill(2) and the kernel. Because of them
	 * the verifier of newer kernels (6.18 builds seen here) types the argument as a scalar that
	 * may encode an error, not a pointer: it is read with a probe read, never dereferenced. */
	__s32 code = (unsigned long)info > 1 ? BPF_CORE_READ(info, si_code) : ((unsigned long)info == 1 ? 0x80 : 0);
	struct task_struct *sender = bpf_get_current_task_btf();
	if (track_exit_signals) {
		__u32 tgid = target->tgid;
		struct signal_record rec = {};
		rec.ktime_ns = bpf_ktime_get_ns();
		rec.signo = sig;
		rec.code = code;
		fill_identity(&rec.sender, sender);
		bpf_map_update_elem(&exit_signals, &tgid, &rec, BPF_ANY);
		struct proc_info *p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			p = track_process(target, tgid);
		if (p)
			p->signalled = 1;
	}
	if (!emit_fatal_signal || !(SIGBIT(sig) & FATAL_SIGNALS)) {
		count_filtered(EVENT_FATAL_SIGNAL);
		return 0;
	}
	struct event *e = reserve(EVENT_FATAL_SIGNAL);
	if (!e)
		return 0;
	fill_identity(&e->subject, target);
	e->signal.signo = sig;
	e->signal.code = code;
	e->signal.result = result;
	e->signal._pad = 0;
	fill_identity(&e->signal.sender, sender);
	submit(e);
	return 0;
}

/* ---- Sockets ---- */

static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

static __always_inline void read_addresses(const struct sock *sk, __u16 *family, __u16 *sport, __u16 *dport, __u8 *saddr, __u8 *daddr)
{
	*family = sk->__sk_common.skc_family;
	*sport = sk->__sk_common.skc_num;
	*dport = __builtin_bswap16(sk->__sk_common.skc_dport);
	__builtin_memset(saddr, 0, 16);
	__builtin_memset(daddr, 0, 16);
	if (*family == AF_INET) {
		__be32 s = sk->__sk_common.skc_rcv_saddr;
		__be32 d = sk->__sk_common.skc_daddr;
		__builtin_memcpy(saddr, &s, 4);
		__builtin_memcpy(daddr, &d, 4);
	} else if (*family == AF_INET6) {
		BPF_CORE_READ_INTO(saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline void listener_key_of(const struct sock *sk, struct listener_key *key)
{
	__u16 dport;
	__u8 daddr[16];
	read_addresses(sk, &key->family, &key->port, &dport, key->addr, daddr);
	key->netns = sock_netns(sk);
}

/* The source port of a socket whose move to CLOSE released its bound port (skc_num is 0 by the
 * time the state changes): the connection's own port, which it kept. */
static __always_inline __u16 closed_sport(const struct sock *sk)
{
	return __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

/* The listener serving a socket's local address: the exact address, else the wildcard. sport,
 * when not 0, is the socket's local port (see closed_sport). */
static __always_inline struct listener *listener_of_port(const struct sock *sk, __u16 sport)
{
	struct listener_key key;
	listener_key_of(sk, &key);
	if (sport)
		key.port = sport;
	struct listener *l = bpf_map_lookup_elem(&listeners, &key);
	if (l)
		return l;
	__builtin_memset(key.addr, 0, sizeof(key.addr));
	return bpf_map_lookup_elem(&listeners, &key);
}

static __always_inline struct listener *listener_of(const struct sock *sk)
{
	return listener_of_port(sk, 0);
}

/* A socket's address as a number, to hash: the verifier refuses arithmetic on a socket pointer,
 * but a pointer stored to map memory reads back as a plain value (stores of pointers to maps are
 * allowed with CAP_PERFMON, which tracing programs need anyway). */
static __always_inline __u64 sock_id(const struct sock *sk)
{
	__u32 zero = 0;
	__u64 *scratch = bpf_map_lookup_elem(&pointer_scratch, &zero);
	if (!scratch)
		return 0;
	*(volatile __u64 *)scratch = (__u64)sk;
	return *(volatile __u64 *)scratch;
}

static __always_inline struct owner_set *owner_set_of(__u64 sock)
{
	/* Fibonacci hashing: sockets are allocated at regular strides, their sets should not be. */
	__u32 i = (__u32)((sock * 0x9E3779B97F4A7C15ULL) >> 51) & (OWNER_SETS - 1);
	return bpf_map_lookup_elem(&sock_owners, &i);
}

/* Slots are written and read under a sequence count: odd while a writer fills the slot; a
 * reader that sees it change took a torn copy and discards it. The atomic reads order the
 * copy between them on every architecture. */
static __always_inline __u64 slot_seq(struct owner_slot *s)
{
	return __sync_fetch_and_add(&s->seq, 0);
}

static __always_inline void count_owner_evicted(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&owners_evicted, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* remember_owner records the current task as the owner of a socket it is connecting (sock is
 * its sock_id). */
static __always_inline void remember_owner(__u64 sock, struct task_struct *task)
{
	struct owner_set *set = owner_set_of(sock);
	if (!sock || !set)
		return;
	__u32 now = (__u32)bpf_jiffies64();
	/* This socket's own slot (a second connect after a failed one), else a free one, else the
	 * oldest connect's. */
	int pick = -1, oldest = 0;
	__u32 oldest_age = 0;
#pragma unroll
	for (int i = 0; i < OWNER_WAYS; i++) {
		__u64 held = set->way[i].sock;
		if (held == sock) {
			pick = i;
			break;
		}
		if (held == 0 && pick < 0)
			pick = i;
		__u32 age = now - set->way[i].owner.connect_jiffies;
		if (held != 0 && age >= oldest_age) {
			oldest_age = age;
			oldest = i;
		}
	}
	if (pick < 0)
		pick = oldest;
	struct owner_slot *s = &set->way[pick & (OWNER_WAYS - 1)];
	__u64 seq = s->seq;
	if ((seq & 1) || __sync_val_compare_and_swap(&s->seq, seq, seq + 1) != seq) {
		/* Another CPU is filling this slot, for a socket of the same set: it keeps it. */
		count_owner_evicted();
		return;
	}
	/* Claimed: only forget_owner (which frees) touches the slot until it is released. */
	__u64 held = s->sock;
	if (held != 0 && held != sock)
		count_owner_evicted();
	s->sock = sock;
	s->owner.role = ROLE_CLIENT;
	s->owner.connect_jiffies = now;
	fill_identity(&s->owner.owner, task);
	/* Released with a full barrier (a compare-and-swap always is), after the writes above. */
	__sync_val_compare_and_swap(&s->seq, seq + 1, seq + 2);
}

/* read_owner copies a socket's owner out of the table; false when it has none. */
static __always_inline bool read_owner(__u64 sock, struct identity *owner, __u32 *role, __u32 *connect_jiffies)
{
	struct owner_set *set = owner_set_of(sock);
	if (!sock || !set)
		return false;
#pragma unroll
	for (int i = 0; i < OWNER_WAYS; i++) {
		struct owner_slot *s = &set->way[i];
		if (s->sock != sock)
			continue;
		__u64 seq = slot_seq(s);
		if (seq & 1)
			return false;
		__builtin_memcpy(owner, &s->owner.owner, sizeof(*owner));
		*role = s->owner.role;
		*connect_jiffies = s->owner.connect_jiffies;
		return s->sock == sock && slot_seq(s) == seq;
	}
	return false;
}

/* forget_owner frees a closing socket's slot. */
static __always_inline void forget_owner(__u64 sock)
{
	struct owner_set *set = owner_set_of(sock);
	if (!sock || !set)
		return;
#pragma unroll
	for (int i = 0; i < OWNER_WAYS; i++) {
		if (set->way[i].sock == sock) {
			/* Only this socket's entry: a writer that took the slot since keeps it. */
			__sync_val_compare_and_swap(&set->way[i].sock, sock, 0);
			return;
		}
	}
}

static __always_inline void fill_sock(struct event *e, const struct sock *sk, int err, __u16 direction, __u16 role)
{
	read_addresses(sk, &e->sock.family, &e->sock.sport, &e->sock.dport, e->sock.saddr, e->sock.daddr);
	e->sock.err = err;
	e->sock.direction = direction;
	e->sock.netns = sock_netns(sk);
	e->sock.role = role;
	e->sock.cpu = 0;
	e->sock.run = 0;
	e->sock.ended_run_events = 0;
	e->sock._pad = 0;
	e->sock.ended_run_last_ns = 0;
}

/* fill_sock_event fills a socket event's subject and socket, as emit_sock_port describes. */
static __always_inline void fill_sock_event(struct event *e, const struct sock *sk, __u64 sock, int err, __u16 direction, bool current_is_owner, __u16 sport)
{
	__u32 role = ROLE_UNKNOWN, connect_jiffies;
	struct listener *l = 0;
	if (read_owner(sock, &e->subject, &role, &connect_jiffies)) {
	} else if ((l = listener_of_port(sk, sport))) {
		__builtin_memcpy(&e->subject, &l->owner, sizeof(e->subject));
		role = ROLE_SERVER;
	} else if (current_is_owner) {
		fill_identity(&e->subject, bpf_get_current_task_btf());
	} else {
		__builtin_memset(&e->subject, 0, sizeof(e->subject));
	}
	fill_sock(e, sk, err, direction, role);
	if (sport)
		e->sock.sport = sport;
}

/* emit_sock_port reports a socket event about the socket's owner: who connected or listens, else
 * — for an accepted connection — who listens on its local address; else, when the event runs in
 * process context, the current task. sport, when not 0, is the socket's local port (a closed
 * socket's, see closed_sport). */
static __always_inline void emit_sock_port(__u32 kind, const struct sock *sk, __u64 sock, int err, __u16 direction, bool current_is_owner, __u16 sport)
{
	struct event *e = reserve(kind);
	if (!e)
		return;
	fill_sock_event(e, sk, sock, err, direction, current_is_owner, sport);
	submit(e);
}

/* emit_sock reports a socket event (see emit_sock_port) about a socket that has its local port. */
static __always_inline void emit_sock(__u32 kind, const struct sock *sk, __u64 sock, int err, __u16 direction, bool current_is_owner)
{
	emit_sock_port(kind, sk, sock, err, direction, current_is_owner, 0);
}

/* peer_of reads the peer of a socket, as struct sock_peer has it. */
static __always_inline void peer_of(const struct sock *sk, struct sock_peer *peer)
{
	__u16 sport;
	read_addresses(sk, &peer->family, &sport, &peer->dport, peer->saddr, peer->daddr);
	peer->netns = sock_netns(sk);
}

/* repeats_run reports whether a connect's failure repeats its CPU's run: the same kind, errno,
 * connecting process and peer — everything a record of it would show but its time and its
 * ephemeral local port (see the receiver's repeatKey). It is read where it lies (the owner
 * table, the socket), not copied: most of a storm is repeats. The owner is compared as it was
 * captured at connect, as the record would show it. A socket without its owner in the
 * table never repeats a run. */
static __always_inline bool repeats_run(const struct failure_run *run, __u32 kind, int err, const struct sock *sk, __u64 sock)
{
	if (run->kind != kind || run->err != err || run->role != ROLE_CLIENT)
		return false;
	struct owner_set *set = owner_set_of(sock);
	if (!sock || !set)
		return false;
	const struct identity *owner = 0;
#pragma unroll
	for (int i = 0; i < OWNER_WAYS; i++) {
		if (set->way[i].sock == sock) {
			owner = &set->way[i].owner.owner;
			break;
		}
	}
	if (!owner)
		return false;
	/* The whole identity, word by word (its padding is always zero): an exec or a move to
	 * another cgroup mid-storm changes what the records show. */
	const __u64 *ro = (const __u64 *)&run->owner, *oo = (const __u64 *)owner;
#pragma unroll
	for (int i = 0; i < sizeof(struct identity) / 8; i++) {
		if (ro[i] != oo[i])
			return false;
	}
	struct sock_peer peer;
	peer_of(sk, &peer);
	const __u64 *rp = (const __u64 *)&run->peer, *p = (const __u64 *)&peer;
#pragma unroll
	for (int i = 0; i < sizeof(struct sock_peer) / 8; i++) {
		if (rp[i] != p[i])
			return false;
	}
	return true;
}

/* emit_failure reports a connect's failure (refused, timed out), as emit_sock does, but counts
 * an event that repeats its CPU's current run instead of writing a record: a refused-connect
 * storm is one process retrying one peer, and a record costs the program most of its time and
 * the reader a decode. The run's first event is written, and the record of the CPU's next run
 * says how the run ended; user space also reads a run's count while it lasts (failure_runs). A
 * run ends when another failure happens on its CPU. */
static __always_inline void emit_failure(__u32 kind, const struct sock *sk, __u64 sock, int err)
{
	__u32 zero = 0;
	struct failure_run *run = count_repeats ? bpf_map_lookup_elem(&failure_runs, &zero) : 0;
	if (!run) {
		emit_sock(kind, sk, sock, err, 0, false);
		return;
	}
	__u64 state = run->state;
	/* A run whose count is about to wrap into its number ends here instead (four billion
	 * repeats: hours of a storm on one CPU). */
	if (state && (__u32)state != 0xffffffff && repeats_run(run, kind, err, sk, sock)) {
		run->last_ns = bpf_ktime_get_ns();
		/* One store of the whole state: only this program writes it, and it does not nest. */
		*(volatile __u64 *)&run->state = state + 1;
		return;
	}
	struct event *e = reserve(kind);
	if (!e)
		return; /* counted; the CPU's run goes on */
	fill_sock_event(e, sk, sock, err, 0, false, 0);
	__u32 number = (__u32)(state >> 32) + 1;
	e->sock.cpu = bpf_get_smp_processor_id();
	e->sock.run = number;
	e->sock.ended_run_events = (__u32)state;
	e->sock.ended_run_last_ns = run->last_ns;
	run->last_ns = e->ktime_ns;
	__builtin_memcpy(&run->owner, &e->subject, sizeof(run->owner));
	run->kind = kind;
	run->err = e->sock.err;
	run->role = e->sock.role;
	peer_of(sk, &run->peer);
	*(volatile __u64 *)&run->state = (__u64)number << 32 | 1;
	submit(e);
}

/* mark_listener records that the current process listens: its workload is now itself, and
 * every cached workload walk is stale (its workers may be waiting for it). */
static __always_inline void mark_listener(struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct proc_info *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		p = track_process(task, tgid);
	if (p && !p->listens) {
		p->listens = 1;
		__sync_fetch_and_add(&listen_generation, 1);
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tapio_sock_state, struct sock *sk, int oldstate, int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	/* Most transitions (a connection's establishment and orderly close) concern no probe. */
	if (newstate != TCP_CLOSE && !(oldstate == TCP_CLOSE && (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN)))
		return 0;

	__u64 sock = sock_id(sk);
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		/* connect() runs in the owner's context. */
		remember_owner(sock, bpf_get_current_task_btf());
		return 0;
	}
	if (oldstate == TCP_CLOSE && newstate == TCP_LISTEN) {
		/* listen() runs in the owner's context. */
		struct task_struct *task = bpf_get_current_task_btf();
		mark_listener(task);
		struct listener l = {};
		fill_identity(&l.owner, task);
		l.sock = sock;
		struct listener_key lkey;
		listener_key_of(sk, &lkey);
		bpf_map_update_elem(&listeners, &lkey, &l, BPF_ANY);
		if (emit_connections)
			emit_sock(EVENT_LISTEN, sk, sock, 0, 0, true);
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && emit_connections) {
		int err = sk->sk_err;
		if (err == ECONNREFUSED)
			emit_failure(EVENT_CONNECTION_REFUSED, sk, sock, err);
		else if (err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH)
			emit_failure(EVENT_CONNECTION_TIMEOUT, sk, sock, err);
		else if (err == 0) {
			struct identity owner;
			__u32 role, connect_jiffies;
			if (read_owner(sock, &owner, &role, &connect_jiffies) &&
			    (__u32)bpf_jiffies64() - connect_jiffies >= connect_abandon_jiffies)
				emit_failure(EVENT_CONNECTION_TIMEOUT, sk, sock, 0);
		}
	}
	/* A reset received by a connection (tcp_reset) sets its error and closes it: ECONNRESET, or
	 * EPIPE in CLOSE_WAIT (in SYN_SENT it is the refusal above). Seen here rather than on the
	 * tcp_receive_reset tracepoint, whose every hit — a refused connect's reset too — costs a
	 * program run. No other path into CLOSE has set these errors by then (tcp_disconnect sets
	 * ECONNRESET after its state change). */
	if (emit_received_resets && oldstate != TCP_SYN_SENT && oldstate != TCP_CLOSE) {
		int err = sk->sk_err;
		if (err == ECONNRESET || err == EPIPE)
			emit_sock_port(EVENT_CONNECTION_RESET, sk, sock, 0, 1, false, closed_sport(sk));
	}
	if (oldstate == TCP_LISTEN) {
		struct listener_key lkey;
		listener_key_of(sk, &lkey);
		struct listener *l = bpf_map_lookup_elem(&listeners, &lkey);
		if (l && l->sock == sock)
			bpf_map_delete_elem(&listeners, &lkey);
	}
	forget_owner(sock);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tapio_tcp_send_reset, struct sock *sk)
{
	/* Without a socket the reset answers a segment for a closed port: the refusal is reported on
	 * the connecting side. */
	if (!sk)
		return 0;
	emit_sock(EVENT_CONNECTION_RESET, sk, sock_id(sk), 0, 2, true);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tapio_tcp_retransmit, struct sock *sk)
{
	struct retransmit_key key = {};
	read_addresses(sk, &key.family, &key.sport, &key.dport, key.saddr, key.daddr);
	key.netns = sock_netns(sk);
	__u64 now = bpf_ktime_get_ns();
	struct retransmit_value *v = bpf_map_lookup_elem(&retransmits, &key);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		v->last_ns = now;
		return 0;
	}
	struct retransmit_value fresh = {.count = 1, .first_ns = now, .last_ns = now};
	__u32 connect_jiffies;
	struct listener *l = 0;
	if (read_owner(sock_id(sk), &fresh.owner, &fresh.role, &connect_jiffies)) {
	} else if ((l = listener_of(sk))) {
		__builtin_memcpy(&fresh.owner, &l->owner, sizeof(fresh.owner));
		fresh.role = ROLE_SERVER;
	}
	bpf_map_update_elem(&retransmits, &key, &fresh, BPF_NOEXIST);
	return 0;
}

/* ---- Block I/O ---- */

#define REQ_OP_MASK 0xff

SEC("tp_btf/block_rq_issue")
int BPF_PROG(tapio_block_issue, struct request *rq)
{
	__u64 key = (__u64)rq;
	struct io_start start = {.ktime_ns = bpf_ktime_get_ns()};
	fill_identity(&start.issuer, bpf_get_current_task_btf());
	bpf_map_update_elem(&io_inflight, &key, &start, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(tapio_block_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	__u64 now = bpf_ktime_get_ns();
	struct io_start *start = bpf_map_lookup_elem(&io_inflight, &key);
	__u64 latency = start ? now - start->ktime_ns : 0;
	error = (__u8)error;

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
	e->io.sector = rq->__sector;
	e->io.latency_ns = latency;
	e->io.bytes = nr_bytes;
	e->io.op = rq->cmd_flags & REQ_OP_MASK;
	e->io.error = error;
	e->io._pad = 0;
	struct gendisk *disk = rq->q->disk;
	e->io.major = disk ? disk->major : 0;
	e->io.minor = disk ? disk->first_minor : 0;
	e->io.disk[0] = 0;
	if (disk)
		bpf_probe_read_kernel_str(e->io.disk, sizeof(e->io.disk), disk->disk_name);
	submit(e);
done:
	if (start)
		bpf_map_delete_elem(&io_inflight, &key);
	return 0;
}
