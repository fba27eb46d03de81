// Command ledger-db is the demo's database: a small TCP service that records charges. It keeps a
// copy of every charge's working buffer in a cache it never evicts — a memory leak under load —
// so inside a memory cgroup with a small limit the kernel OOM-kills it. It is not instrumented:
// like most databases, it is seen by Tapio only through the kernel.
//
// With -lock-memory it locks its pages as they are faulted in, as databases with a memory-lock
// setting do. Without it, a process at its cgroup's limit has its own code reclaimed and faulted
// back in, over and over, and can stall for many seconds before the kernel gives up and kills it;
// locked, nothing of it is reclaimable, and the kill comes when the cache crosses the limit.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	leakMu sync.Mutex
	leak   [][]byte // the "cache": grows by one buffer per charge and is never trimmed
)

func main() {
	addr := flag.String("listen", "127.0.0.1:15432", "address to listen on")
	perCharge := flag.Int("leak-bytes", 1<<20, "bytes retained per charge")
	lockMemory := flag.Bool("lock-memory", false, "lock every page as it is faulted in (mlockall with MCL_ONFAULT)")
	flag.Parse()
	if *lockMemory {
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
			log.Fatalf("ledger-db: locking memory: %v", err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("ledger-db: %v", err)
	}
	fmt.Fprintf(os.Stderr, "ledger-db (pid %d) listening on %s\n", os.Getpid(), ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatalf("ledger-db: accept: %v", err)
		}
		go serve(conn, *perCharge)
	}
}

func serve(conn net.Conn, perCharge int) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[0] != "CHARGE" {
			fmt.Fprintf(conn, "ERR expected: CHARGE <user> <amount>\n")
			continue
		}
		buf := make([]byte, perCharge)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1 // resident, not just reserved
		}
		leakMu.Lock()
		leak = append(leak, buf)
		n := len(leak)
		leakMu.Unlock()
		fmt.Fprintf(conn, "OK %d\n", n)
	}
}
