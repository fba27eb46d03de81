package ebpfreceiver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// perlPreforkServer is a pre-fork server as PostgreSQL, Apache or php-fpm are: it listens, then
// forks workers that accept on its socket — forks that run no other program. A worker told "hog"
// joins the memory cgroup named by its first argument and allocates until the kernel kills it.
const perlPreforkServer = `
use strict; use warnings; use IO::Socket::INET;
my $procs = shift;
my $l = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1:0', Proto => 'tcp') or die "listen: $!";
my @workers;
for (1 .. 2) {
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		while (my $c = $l->accept) {
			my $cmd = <$c> // next;
			$c->autoflush(1);
			if ($cmd =~ /^hog/) {
				print $c "pid $$\n";
				open(my $f, '>', $procs) or die "$procs: $!"; print $f "$$\n"; close $f;
				my @hog; while (1) { push @hog, 'x' x (1 << 20) }
			}
			print $c "pong $$\n"; close $c;
		}
		exit 0;
	}
	push @workers, $pid;
}
$| = 1; print "port ", $l->sockport, "\n";
<STDIN>;
kill 'KILL', @workers; 1 while wait() > 0;
`

func TestPreforkWorkerOOMKillResolvesToTheListener(t *testing.T) {
	host, _ := os.Hostname()
	perl, err := exec.LookPath("perl")
	if err != nil {
		kerneltest.SkipOrFail(t, "perl (Debian's perl-base) plays the pre-fork server: %v", err)
	}
	servers := []struct {
		name string
		// startFirst starts the server before the receiver: its listen and forks predate the
		// programs, and the receiver must learn them from /proc.
		startFirst bool
		command    func(procs string) *exec.Cmd
	}{
		{"forked workers", false, func(procs string) *exec.Cmd { return exec.Command(perl, "-e", perlPreforkServer, procs) }},
		{"forked workers of a server older than the receiver", true, func(procs string) *exec.Cmd {
			return exec.Command(perl, "-e", perlPreforkServer, procs)
		}},
		{"re-executed workers", false, func(procs string) *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run", "^$")
			cmd.Env = append(os.Environ(), preforkServerEnv+"="+procs)
			return cmd
		}},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			_, procs := kerneltest.MemoryCgroup(t, oomLimitBytes)
			var rr *runningReceiver
			if !s.startFirst {
				rr = startReceiver(t, nil)
			}
			server := startHelper(t, s.command(procs))
			if s.startFirst {
				rr = startReceiver(t, nil)
			}
			serverPID := server.cmd.Process.Pid
			port := server.number(t, 1)

			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte("hog\n")); err != nil {
				t.Fatal(err)
			}
			reply, err := bufio.NewReader(conn).ReadString('\n')
			var worker int
			if _, scanErr := fmt.Sscanf(reply, "pid %d", &worker); err != nil || scanErr != nil {
				t.Fatalf("worker reply %q: %v %v", reply, err, scanErr)
			}
			if worker == serverPID {
				t.Fatal("the server itself served the connection; its workers should")
			}

			want := unifiedevent.HostPIDEntityID(host, int64(serverPID))
			e := rr.waitFor(t, unifiedevent.OOMKill, 20*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(worker) })
			assertUnifiedEvent(t, e)
			if got := unifiedevent.Of(e.record.Attributes()).EntityID(); got != want {
				t.Errorf("the OOM-killed worker's entity is %q, want its listener's %q", got, want)
			}
			if e.int("tapio.workload.pid") != int64(serverPID) || e.int("process.parent_pid") != int64(serverPID) {
				t.Errorf("workload facts of the worker: %v", e.attributes())
			}
			mustContain(t, "body", e.record.Body().Str(), fmt.Sprintf("(pid %d)", worker))

			// Its death by SIGKILL is the same workload's.
			e = rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(worker) })
			if got := unifiedevent.Of(e.record.Attributes()).EntityID(); got != want || e.str("tapio.kernel.signal.name") != "SIGKILL" {
				t.Errorf("the worker's exit: entity %q (want %q), attributes %v", got, want, e.attributes())
			}
		})
	}
}

func TestServiceCgroupNamesTheWorkload(t *testing.T) {
	host, _ := os.Hostname()
	unique := time.Now().UnixNano()
	pattern := fmt.Sprintf("tapio-app-%d", unique)
	rr := startReceiver(t, func(c *Config) { c.Workload.CgroupPatterns = []string{"^" + regexp.QuoteMeta(pattern) + "$"} })
	for _, name := range []string{fmt.Sprintf("tapio-web-%d.service", unique), pattern} {
		t.Run(name, func(t *testing.T) {
			procs := childCgroup(t, name)
			// A shell moves itself into the cgroup and fails there.
			cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exit 7`, procs)
			if err := cmd.Run(); err == nil {
				t.Fatal("the shell should exit 7")
			}
			pid := cmd.Process.Pid
			e := rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
			assertUnifiedEvent(t, e)
			if got, want := unifiedevent.Of(e.record.Attributes()).EntityID(), host+"/"+name; got != want {
				t.Errorf("entity %q, want the service %q", got, want)
			}
			if v, _ := e.resource.Get("tapio.workload.cgroup"); v.Str() != name {
				t.Errorf("resource: %v", e.resource.AsRaw())
			}
			if e.int("process.exit.code") != 7 {
				t.Errorf("exit: %v", e.attributes())
			}
		})
	}
}

func TestCollectorsOwnCgroupIsNeverAWorkload(t *testing.T) {
	host, _ := os.Hostname()
	_, own := memoryHierarchy(t)
	names := strings.Split(strings.Trim(own, "/"), "/")
	if own == "/" || len(names) == 0 {
		kerneltest.SkipOrFail(t, "this process runs in the root cgroup: there is no own cgroup to keep from being a workload")
	}
	// Patterns naming the collector's own cgroup and every ancestor: on this kind of host every
	// process sits in one of them.
	var patterns []string
	for _, n := range names {
		patterns = append(patterns, "^"+regexp.QuoteMeta(n)+"$")
	}
	rr := startReceiver(t, func(c *Config) { c.Workload.CgroupPatterns = patterns })

	inOwn := exec.Command("/bin/sh", "-c", "exit 4")
	_ = inOwn.Run()
	e := rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(inOwn.Process.Pid) })
	assertUnifiedEvent(t, e)
	if got, want := unifiedevent.Of(e.record.Attributes()).EntityID(), unifiedevent.HostPIDEntityID(host, int64(inOwn.Process.Pid)); got != want {
		t.Errorf("a process in the collector's own cgroup has entity %q, want its own %q", got, want)
	}
	if v, ok := e.resource.Get("tapio.workload.cgroup"); ok {
		t.Errorf("the collector's own cgroup named a workload: %q", v.Str())
	}

	// The same pattern does name a cgroup below the collector's: the patterns are live.
	leaf := names[len(names)-1]
	procs := childCgroup(t, leaf)
	below := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exit 4`, procs)
	_ = below.Run()
	e = rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(below.Process.Pid) })
	if got := unifiedevent.Of(e.record.Attributes()).EntityID(); got != host+"/"+leaf {
		t.Errorf("a cgroup below the collector's, named by a pattern, has entity %q, want %q", got, host+"/"+leaf)
	}
}

// netns is a network namespace made for a test, removed when it ends.
type netns struct {
	name  string
	inode uint64
}

func newNetns(t *testing.T, name string) netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		kerneltest.SkipOrFail(t, "ip (iproute2) is needed to create network namespaces")
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		kerneltest.SkipOrFail(t, "cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing lo up in %s: %v: %s", name, err, out)
	}
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return netns{name: name, inode: st.Ino}
}

// resetFrom connects to addr from inside the namespace and aborts the connection (SO_LINGER 0),
// so the server's accepted socket receives a reset. It returns the client's local port.
func (n netns) resetFrom(t *testing.T, port int) int {
	t.Helper()
	type result struct {
		port int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the namespace and is never unlocked: it ends with the goroutine
		// instead of returning to the pool in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			done <- result{err: fmt.Errorf("connect in %s: %w", n.name, err)}
			return
		}
		local, _ := unix.Getsockname(fd)
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{port: local.(*unix.SockaddrInet4).Port}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.port
}

func TestListenersOnOnePortInTwoNamespacesStayApart(t *testing.T) {
	rr := startReceiver(t, nil)
	const port = 18080
	unique := time.Now().UnixNano() % 1_000_000
	namespaces := []netns{newNetns(t, fmt.Sprintf("tapio-a-%d", unique)), newNetns(t, fmt.Sprintf("tapio-b-%d", unique))}
	pids := map[uint64]int{}
	for _, ns := range namespaces {
		cmd := exec.Command("ip", "netns", "exec", ns.name, os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=127.0.0.1:%d", listenerEnv, port))
		pids[ns.inode] = startHelper(t, cmd).number(t, 1)
	}
	for _, ns := range namespaces {
		e := rr.waitFor(t, unifiedevent.Listen, 5*time.Second, func(e kernelEvent) bool {
			return e.int("source.port") == port && e.int("tapio.network.namespace") == int64(ns.inode)
		})
		assertUnifiedEvent(t, e)
		if e.int("process.pid") != int64(pids[ns.inode]) {
			t.Errorf("the listen in %s is attributed to pid %d, want %d", ns.name, e.int("process.pid"), pids[ns.inode])
		}
	}
	// A reset from each namespace's client reaches that namespace's accepted socket: the
	// listener directory must name that namespace's listener, not the other one on the same port.
	for _, ns := range namespaces {
		clientPort := ns.resetFrom(t, port)
		e := rr.waitFor(t, unifiedevent.ConnectionReset, 5*time.Second, func(e kernelEvent) bool {
			return e.str("tapio.network.reset.direction") == "received" && e.int("source.port") == port &&
				e.int("destination.port") == int64(clientPort) && e.int("tapio.network.namespace") == int64(ns.inode)
		})
		assertUnifiedEvent(t, e)
		if e.int("process.pid") != int64(pids[ns.inode]) || e.str("tapio.network.side") != "server" {
			t.Errorf("the reset on %s's accepted connection: pid %d (want %d), %v", ns.name, e.int("process.pid"), pids[ns.inode],
				e.attributes())
		}
	}
}

func TestListenersGracefulExitCarriesTheSignalAndItsSender(t *testing.T) {
	host, _ := os.Hostname()
	rr := startReceiver(t, nil)
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), listenerEnv+"=127.0.0.1:0")
	listener := startHelper(t, cmd)
	pid := listener.number(t, 1)

	// A process that is not a server handles SIGTERM the same way: its exit 0 stays filtered.
	plain := exec.Command("/bin/sh", "-c", `trap "exit 0" TERM; echo ready; while :; do sleep 0.05; done`)
	plainHelper := startHelper(t, plain)
	_ = plainHelper

	kill := exec.Command("/bin/sh", "-c", `kill -TERM "$0" "$1"`, fmt.Sprint(pid), fmt.Sprint(plain.Process.Pid))
	if out, err := kill.CombinedOutput(); err != nil {
		t.Fatalf("kill: %v: %s", err, out)
	}
	sender := kill.Process.Pid

	e := rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(pid) })
	assertUnifiedEvent(t, e)
	if e.int("process.exit.code") != 0 || e.str("tapio.kernel.signal.name") != "SIGTERM" || e.int("tapio.kernel.signal.number") != int64(syscall.SIGTERM) {
		t.Errorf("the listener's exit: %v", e.attributes())
	}
	if e.int("tapio.kernel.signal.sender.pid") != int64(sender) || e.str("tapio.kernel.signal.sender.name") != "sh" ||
		e.str("tapio.kernel.signal.sender.entity.id") != unifiedevent.HostPIDEntityID(host, int64(sender)) {
		t.Errorf("the sender of the listener's SIGTERM (pid %d): %v", sender, e.attributes())
	}
	if e.int("tapio.workload.pid") != int64(pid) {
		t.Errorf("the listener is its own workload: %v", e.attributes())
	}
	mustContain(t, "body", e.record.Body().Str(), fmt.Sprintf("(pid %d) exited with code 0 after SIGTERM from sh (pid %d)", pid, sender))

	// A server that ends on its own, with no signal, is still a server's end.
	cmd = exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), listenerEnv+"=127.0.0.1:0")
	quitting := startHelper(t, cmd)
	quitting.stdin.Close()
	quitter := quitting.number(t, 1)
	e = rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == int64(quitter) })
	if e.int("process.exit.code") != 0 || e.str("tapio.kernel.signal.name") != "" {
		t.Errorf("a listener's own exit 0: %v", e.attributes())
	}
	mustContain(t, "body", e.record.Body().Str(), fmt.Sprintf("(pid %d) exited with code 0", quitter))

	if err := plain.Wait(); err != nil {
		t.Fatalf("the plain process should exit 0 after SIGTERM: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, ld := range rr.sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				records := sls.At(j).LogRecords()
				for k := 0; k < records.Len(); k++ {
					a := records.At(k).Attributes()
					name, _ := a.Get("event.name")
					p, _ := a.Get("process.pid")
					if name.Str() == string(unifiedevent.ProcessExit) && p.Int() == int64(plain.Process.Pid) {
						t.Errorf("a plain process's exit 0 after SIGTERM was reported: %v", a.AsRaw())
					}
				}
			}
		}
	}
}

// perlForkAfterTheServerListens: a server forks a worker, which forks a child (walking up the
// tree then finds no listener, and the worker's entry caches that); the server then listens, and
// the worker forks another child, which exits with code 4. That child serves the server: the
// worker's walk, cached before the listen, must not be handed down to it.
const perlForkAfterTheServerListens = `
use strict; use warnings; use IO::Socket::INET;
pipe(my $go_r, my $go_w) or die "pipe: $!"; pipe(my $pid_r, my $pid_w) or die "pipe: $!";
my $worker = fork() // die "fork: $!";
if ($worker == 0) {
	close $go_w; close $pid_r;
	my $early = fork() // die "fork: $!"; if ($early == 0) { exit 0 } waitpid($early, 0);
	my $line = <$go_r>;
	my $late = fork() // die "fork: $!"; if ($late == 0) { exit 4 } waitpid($late, 0);
	syswrite $pid_w, "$late\n"; exit 0;
}
close $go_r; close $pid_w;
my $l = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:0', Proto => 'tcp') or die "listen: $!";
syswrite $go_w, "go\n";
my $late = <$pid_r>; chomp $late; waitpid($worker, 0);
$| = 1; print "worker $worker late $late\n";
<STDIN>;
`

func TestForkAfterTheServerListensServesTheServer(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		kerneltest.SkipOrFail(t, "perl (Debian's perl-base) plays the server: %v", err)
	}
	rr := startReceiver(t, nil)
	server := startHelper(t, exec.Command(perl, "-e", perlForkAfterTheServerListens))
	serverPID := int64(server.cmd.Process.Pid)
	late := int64(server.number(t, 3))
	e := rr.waitFor(t, unifiedevent.ProcessExit, 5*time.Second, func(e kernelEvent) bool { return e.int("process.pid") == late })
	if code := e.int("process.exit.code"); code != 4 {
		t.Errorf("process.exit.code = %d, want 4", code)
	}
	if got := e.int("tapio.workload.pid"); got != serverPID {
		t.Errorf("the worker's child forked after the listen: workload pid %d, want the server's %d (%v)", got, serverPID, e.attributes())
	}
}
