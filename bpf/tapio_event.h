/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record Tapio's programs send to user space, and the state they keep between events. Fixed
 * size and explicitly padded: user space decodes the record by offset, and a Go test checks every
 * offset against this object's BTF.
 */
#ifndef __TAPIO_EVENT_H__
#define __TAPIO_EVENT_H__

#define TASK_COMM_LEN 16
#define CGROUP_NAME_LEN 128
/* Leaf first: enough to hold a container scope, its pod slice and their parents, or a systemd
 * unit and the slices above it, up to the root on most hosts. */
#define CGROUP_DEPTH 6

enum event_kind {
	EVENT_PROCESS_EXEC = 1,
	EVENT_PROCESS_EXIT = 2,
	EVENT_OOM_KILL = 3,
	EVENT_FATAL_SIGNAL = 4,
	EVENT_CONNECTION_REFUSED = 5,
	EVENT_CONNECTION_TIMEOUT = 6,
	EVENT_CONNECTION_RESET = 7,
	EVENT_LISTEN = 8,
	EVENT_IO_ERROR = 9,
	EVENT_IO_LATENCY = 10,
	EVENT_KIND_MAX = 11,
};

/* Who an event is about, read from the task at event time: the process may be gone by the time
 * user space reads the record. The cgroup's path is captured too, once per cgroup, into the
 * cgroup_paths map keyed by cgroup_id: records stay small, and the names survive the cgroup. */
struct identity {
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u64 cgroup_id;
	__u64 start_ns; /* the process's (thread group leader's) start, CLOCK_MONOTONIC */
	char comm[TASK_COMM_LEN];
	/* The process whose tree this one serves in: the nearest of itself and its ancestors that
	 * listens on a TCP socket, across forks that kept their parent's program. 0: none. */
	__u32 workload_tgid;
	__u32 _pad;
};

/* The names of a cgroup and its ancestors, leaf first. */
struct cgroup_path {
	char name[CGROUP_DEPTH][CGROUP_NAME_LEN];
};

enum exit_flags {
	EXIT_LISTENER = 1,  /* the process listened on a TCP socket: a server's end */
	EXIT_SIGNALLED = 2, /* signo, signal_code and sender name the last ending signal it was sent */
};

struct exit_payload {
	__s32 exit_code; /* the status as wait(2) would see it */
	__u32 flags;     /* enum exit_flags */
	__u32 signo;
	__s32 signal_code; /* si_code: SI_USER (0) from kill(2), SI_KERNEL (0x80), … */
	struct identity sender;
};

struct exec_payload {
	char filename[64];
};

struct oom_payload {
	__u64 memcg_limit_bytes;
	__u64 memcg_usage_bytes;
	__u64 total_vm_pages;
	__u64 anon_rss_pages;
	__u64 memcg_id;
};

struct signal_payload {
	__u32 signo;
	__s32 code;
	__s32 result;
	__u32 _pad;
	struct identity sender;
};

/* Which end of a connection the socket is. */
enum sock_role {
	ROLE_UNKNOWN = 0,
	ROLE_CLIENT = 1,   /* it connected */
	ROLE_SERVER = 2,   /* a listener accepted it */
	ROLE_LISTENER = 3, /* it listens */
};

struct sock_payload {
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 direction; /* resets: 1 received, 2 sent */
	__s32 err;
	__u32 netns; /* inode number of the socket's network namespace */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 role; /* enum sock_role */
	/* Repeat runs (see failure_run): a record that starts a run on its CPU says which run
	 * (run, 0 on every other record) and how the CPU's run before it ended: how many events it
	 * counted, the first one included, and when its last one happened. */
	__u16 cpu;
	__u32 run;
	__u32 ended_run_events;
	__u32 _pad;
	__u64 ended_run_last_ns;
};

struct io_payload {
	__u64 sector;
	__u64 latency_ns; /* issue → completion; 0 when the issue was not seen */
	__u32 bytes;
	__u32 op;         /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, … */
	__s32 error;      /* blk_status_t */
	__u32 major;
	__u32 minor;
	__u32 _pad;
	char disk[32];
};

/* What block_rq_issue remembers about a request until it completes. */
struct io_start {
	__u64 ktime_ns;
	struct identity issuer;
};

struct event {
	__u64 ktime_ns; /* CLOCK_MONOTONIC */
	__u32 kind;
	__u32 _pad;
	struct identity subject;
	union {
		struct exit_payload exit;
		struct exec_payload exec;
		struct oom_payload oom;
		struct signal_payload signal;
		struct sock_payload sock;
		struct io_payload io;
	};
};

/* What identifies a failed connect's peer, as a record shows it: all of its socket but the
 * local port (a fresh ephemeral one per connect). */
struct sock_peer {
	__u16 family;
	__u16 dport;
	__u32 netns;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* A run of one connection failure repeated on one CPU: the same kind, process, peer and errno,
 * each connect from a fresh port. The run's first event is a record; the others are only counted
 * here, and user space reads the count (see the receiver's repeats.go). */
struct failure_run {
	/* The run's number << 32 | the events it has counted, written with one store: user space
	 * reads it while the CPU counts. */
	__u64 state;
	__u64 last_ns;
	/* What the run's events share: all their records show but their times and local port. */
	struct identity owner;
	struct sock_peer peer;
	__u32 kind;
	__s32 err;
	__u16 role;
	__u16 _pad;
	__u32 _pad2;
};

/* A connection's retransmits, summed in the kernel so that a storm is one record. */
struct retransmit_key {
	__u32 netns;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct retransmit_value {
	__u64 count;
	__u64 first_ns;
	__u64 last_ns;
	struct identity owner;
	__u32 role;
	__u32 _pad;
};

/* What the kernel remembers about a process, from its fork (or from /proc when the collector
 * starts) until the map evicts it — after its exit too: its children's events still walk
 * through it. The u8 flags are separate bytes so that programs on different CPUs set them
 * without a read-modify-write race. */
struct proc_info {
	__u64 start_ns;        /* 0 when user space seeded the entry from /proc */
	__u64 parent_start_ns; /* the parent's, to notice a reused parent pid; 0 unknown */
	__u32 ppid;            /* the parent's tgid at fork */
	__u32 workload_tgid;   /* the last workload walk's result … */
	__u32 workload_gen;    /* … valid while listen_generation equals this */
	__u8 listens;          /* it listened on a TCP socket */
	__u8 own_program;      /* it executed a program other than its parent's */
	__u8 signalled;        /* exit_signals holds the last ending signal sent to it */
	__u8 _pad;
};

/* A listening socket's address: the directory of who serves what, per network namespace. The
 * wildcard address is all zeroes. */
struct listener_key {
	__u32 netns;
	__u16 family;
	__u16 port;
	__u8 addr[16];
};

struct listener {
	struct identity owner;
	__u64 sock; /* the listening socket, so that closing one of two SO_REUSEPORT sockets keeps the other's entry */
};

/* Who owns a socket, and which end of its connection it is: kept in the socket's own storage. */
struct sock_owner {
	struct identity owner;
	__u32 role;
	/* When connect() began, in jiffies (wrapping): a connect the application abandons in
	 * SYN_SENT after a while is a timeout the kernel never reported. */
	__u32 connect_jiffies;
};

/* One slot of the socket-owner table: the socket's cookie (0: free), a sequence count (odd while
 * a writer fills the slot), and the owner. */
struct owner_slot {
	__u64 sock;
	__u64 seq;
	struct sock_owner owner;
};

struct owner_set {
	struct owner_slot way[4];
};

/* The last signal that could end a process, kept until it exits. */
struct signal_record {
	__u64 ktime_ns;
	__u32 signo;
	__s32 code;
	struct identity sender;
};

#endif /* __TAPIO_EVENT_H__ */
