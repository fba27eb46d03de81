// Package kernel loads Tapio's eBPF programs (bpf/ at the repository root), attaches them to
// raw tracepoints and hands their records to user space.
package kernel

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target bpfel -go-package kernel -type identity -type failure_run tapio ../../../../bpf/tapio.bpf.c -- -I../../../../bpf/headers
