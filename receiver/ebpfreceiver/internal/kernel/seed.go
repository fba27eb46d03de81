package kernel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
)

// ExistingListener is a socket that was already listening when the programs were attached: the
// kernel never saw its listen(), so it is read from /proc.
type ExistingListener struct {
	Owner Identity
	// Conn holds the listening address: Source and SourcePort, in namespace Netns.
	Conn Connection
}

// procEntry is what /proc says about one process.
type procEntry struct {
	pid, ppid, uid uint32
	comm           [commLen]byte
	netns          uint32
	cgroup         string // the path in the hierarchy the programs capture
}

// Seed tells the programs about what existed before they were attached, from the proc file
// system at procRoot (/proc): every process, so that a worker started earlier still walks up to
// its server, and every listening TCP socket with the process that owns it (of the processes
// holding it, the one whose parent does not), so that the listener directory is complete. It
// returns the listeners found. Processes the programs saw fork since they were attached keep the
// kernel's entry.
func (p *Programs) Seed(procRoot string) ([]ExistingListener, error) {
	procs, err := readProcesses(procRoot)
	if err != nil {
		return nil, err
	}
	listening := map[uint64]Connection{} // socket inode → address
	seenNetns := map[uint32]bool{}
	for _, e := range procs {
		if e.netns == 0 || seenNetns[e.netns] {
			continue
		}
		seenNetns[e.netns] = true
		for _, file := range []string{"tcp", "tcp6"} {
			if err := readListening(filepath.Join(procRoot, strconv.Itoa(int(e.pid)), "net", file), e.netns, listening); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	holders := map[uint64][]uint32{}
	if len(listening) > 0 {
		for pid := range procs {
			socketsOf(procRoot, pid, listening, holders)
		}
	}

	owners := map[uint32]bool{}
	var found []ExistingListener
	mounts := cgroupMounts(procRoot)
	for inode, conn := range listening {
		owner, ok := topmostHolder(holders[inode], procs)
		if !ok {
			continue
		}
		owners[owner] = true
		e := procs[owner]
		id := Identity{PID: e.pid, TGID: e.pid, PPID: e.ppid, UID: e.uid, Comm: e.comm, WorkloadTGID: e.pid}
		id.CgroupID = p.seedCgroup(mounts, e.cgroup)
		found = append(found, ExistingListener{Owner: id, Conn: conn})
		key := tapioListenerKey{Netns: conn.Netns, Family: conn.Family, Port: conn.SourcePort, Addr: conn.Source}
		value := tapioListener{Owner: id.toGenerated()}
		if err := p.maps.Listeners.Update(&key, &value, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
			return found, fmt.Errorf("seeding the listener directory: %w", err)
		}
	}

	for pid, e := range procs {
		var info tapioProcInfo
		if err := p.maps.Procs.Lookup(&pid, &info); err == nil {
			// The kernel tracked it since it was attached; it only lacks the listen it never saw.
			if owners[pid] && info.Listens == 0 {
				info.Listens, info.WorkloadGen = 1, 0
				_ = p.maps.Procs.Update(&pid, &info, ebpf.UpdateExist)
			}
			continue
		}
		info = tapioProcInfo{Ppid: e.ppid}
		if parent, ok := procs[e.ppid]; ok && parent.comm != e.comm {
			info.OwnProgram = 1
		} else if !ok && e.ppid != 0 {
			info.OwnProgram = 1
		}
		if owners[pid] {
			info.Listens = 1
		}
		if err := p.maps.Procs.Update(&pid, &info, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
			return found, fmt.Errorf("seeding the process tree: %w", err)
		}
	}
	// Every cached workload walk predates the listeners just added.
	var gen uint32
	if err := p.variables.ListenGeneration.Get(&gen); err != nil {
		return found, fmt.Errorf("reading listen_generation: %w", err)
	}
	if err := p.variables.ListenGeneration.Set(gen + 1); err != nil {
		return found, fmt.Errorf("bumping listen_generation: %w", err)
	}
	return found, nil
}

// topmostHolder picks, among the processes holding a listening socket, the one whose parent
// does not hold it: a pre-fork server's master, not the workers that inherited the socket.
func topmostHolder(holders []uint32, procs map[uint32]*procEntry) (uint32, bool) {
	held := map[uint32]bool{}
	for _, h := range holders {
		held[h] = true
	}
	var best uint32
	for _, h := range holders {
		if e, ok := procs[h]; ok && !held[e.ppid] && (best == 0 || h < best) {
			best = h
		}
	}
	return best, best != 0
}

func readProcesses(procRoot string) (map[uint32]*procEntry, error) {
	dirs, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", procRoot, err)
	}
	out := map[uint32]*procEntry{}
	for _, d := range dirs {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		e, err := readProcess(filepath.Join(procRoot, d.Name()))
		if err != nil {
			continue // it exited meanwhile
		}
		e.pid = uint32(pid)
		out[e.pid] = e
	}
	return out, nil
}

func readProcess(dir string) (*procEntry, error) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, err
	}
	// pid (comm) state ppid …: comm may hold spaces and parentheses; it ends at the last ')'.
	open, close := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || close < open {
		return nil, fmt.Errorf("malformed %s/stat", dir)
	}
	e := &procEntry{}
	copy(e.comm[:commLen-1], stat[open+1:close])
	fields := strings.Fields(string(stat[close+1:]))
	if len(fields) < 2 {
		return nil, fmt.Errorf("malformed %s/stat", dir)
	}
	ppid, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil {
		return nil, err
	}
	e.ppid = uint32(ppid)
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					uid, _ := strconv.ParseUint(f[0], 10, 32)
					e.uid = uint32(uid)
				}
				break
			}
		}
	}
	if link, err := os.Readlink(filepath.Join(dir, "ns", "net")); err == nil {
		e.netns = uint32(inodeOfLink(link, "net:["))
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		e.cgroup = capturedCgroup(string(raw))
	}
	return e, nil
}

// capturedCgroup picks, from a /proc/<pid>/cgroup file, the hierarchy the programs capture: the
// memory controller's on cgroup v1, else the unified one.
func capturedCgroup(raw string) string {
	unified := ""
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = "0::" + parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return "memory:" + parts[2]
			}
		}
	}
	return unified
}

// cgroupMounts finds where the memory controller's hierarchy and the unified one are mounted.
func cgroupMounts(procRoot string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional…] - fstype source superoptions
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 3 || lf[3] != "/" {
			continue
		}
		switch rf[0] {
		case "cgroup2":
			out["0:"] = lf[4]
		case "cgroup":
			for _, opt := range strings.Split(rf[2], ",") {
				if opt == "memory" {
					out["memory"] = lf[4]
				}
			}
		}
	}
	return out
}

// seedCgroup returns the kernel's id of a cgroup (its directory's inode: kernfs ids are inode
// numbers) and captures its path into cgroup_paths as the programs would.
func (p *Programs) seedCgroup(mounts map[string]string, cgroup string) uint64 {
	hierarchy, path, ok := strings.Cut(cgroup, ":")
	if !ok {
		return 0
	}
	mount, ok := mounts[hierarchy]
	if !ok {
		return 0
	}
	path = strings.TrimPrefix(path, ":")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mount, path), &st); err != nil {
		return 0
	}
	var raw tapioCgroupPath
	names := []string{"/"}
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		if c != "" {
			names = append(names, c)
		}
	}
	for i := 0; i < CgroupDepth && i < len(names); i++ {
		name := names[len(names)-1-i] // leaf first
		for j := 0; j < CgroupNameLen-1 && j < len(name); j++ {
			raw.Name[i][j] = int8(name[j])
		}
	}
	_ = p.maps.CgroupPaths.Update(&st.Ino, &raw, ebpf.UpdateNoExist)
	return st.Ino
}

// inodeOfLink reads the inode number out of a /proc link such as "socket:[12345]".
func inodeOfLink(link, prefix string) uint64 {
	rest, ok := strings.CutPrefix(link, prefix)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return n
}

// tcpListen is the state column of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// readListening adds the listening sockets of one /proc/net/tcp{,6} file.
func readListening(file string, netns uint32, out map[uint64]Connection) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		conn, ok := parseProcAddress(f[1])
		if !ok {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		conn.Netns = netns
		out[inode] = conn
	}
	return sc.Err()
}

// parseProcAddress reads "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6): the address
// as the kernel holds it, printed word by word in host byte order.
func parseProcAddress(s string) (Connection, bool) {
	addr, port, ok := strings.Cut(s, ":")
	if !ok {
		return Connection{}, false
	}
	raw, err := hex.DecodeString(addr)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return Connection{}, false
	}
	n, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return Connection{}, false
	}
	c := Connection{SourcePort: uint16(n), Family: afInet}
	if len(raw) == 16 {
		c.Family = afInet6
	}
	for w := 0; w+4 <= len(raw); w += 4 {
		binary.BigEndian.PutUint32(c.Source[w:], binary.LittleEndian.Uint32(raw[w:]))
	}
	return c, true
}

const (
	afInet  = 2
	afInet6 = 10
)

// socketsOf records which listening sockets a process holds open.
func socketsOf(procRoot string, pid uint32, listening map[uint64]Connection, holders map[uint64][]uint32) {
	dir := filepath.Join(procRoot, strconv.Itoa(int(pid)), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		inode := inodeOfLink(link, "socket:[")
		if _, ok := listening[inode]; ok && inode != 0 {
			holders[inode] = append(holders[inode], pid)
		}
	}
}
