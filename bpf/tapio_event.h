/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record Tapio's programs send to user space. Fixed size and explicitly padded: user space
 * decodes it by offset, and a Go test checks every offset against this object's BTF.
 */
#ifndef __TAPIO_EVENT_H__
#define __TAPIO_EVENT_H__

#define TASK_COMM_LEN 16
#define CGROUP_NAME_LEN 128
/* Leaf first: enough to hold a container scope, its pod slice and their parents. */
#define CGROUP_DEPTH 4

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
	__u64 start_ns;
	char comm[TASK_COMM_LEN];
};

/* The names of a cgroup and its ancestors, leaf first. */
struct cgroup_path {
	char name[CGROUP_DEPTH][CGROUP_NAME_LEN];
};

struct exit_payload {
	__s32 exit_code; /* the status as wait(2) would see it */
	__u32 _pad;
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
	__u32 sender_pid;
	__u32 sender_tgid;
	__u32 _pad;
	char sender_comm[TASK_COMM_LEN];
};

struct sock_payload {
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 direction; /* resets: 1 received, 2 sent */
	__s32 err;
	__u32 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
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

/* A connection's retransmits, summed in the kernel so that a storm is one record. */
struct retransmit_key {
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
};

#endif /* __TAPIO_EVENT_H__ */
