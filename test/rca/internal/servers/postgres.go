package servers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yairfalse/tapio/internal/memcg"
	"github.com/yairfalse/tapio/test/rca/internal/proc"
)

// Debian's PostgreSQL 15.
const (
	pgBin      = "/usr/lib/postgresql/15/bin"
	pgUser     = "postgres"
	pgTemplate = "pg15-template-walseg1"
)

// PostgresOptions configures one PostgreSQL server.
type PostgresOptions struct {
	Name string
	Port int
	// DataDir, when set, is where the cluster goes (e.g. a filesystem on a loop device); the
	// default is a directory of the run.
	DataDir string
	// MemoryLimit, when positive, runs the whole server (postmaster and backends) in a memory
	// cgroup with that limit.
	MemoryLimit int64
}

// Postgres is a running PostgreSQL server.
type Postgres struct {
	Name      string
	Port      int
	DataDir   string
	SocketDir string
	Proc      *proc.Proc
	Group     *memcg.Group
}

// StartPostgres copies the cached cluster into a data directory of the run and starts the
// postmaster as the postgres user, on 127.0.0.1 only. The orders table exists once it returns.
func StartPostgres(ctx context.Context, env Env, o PostgresOptions) (*Postgres, error) {
	if o.Port == 0 {
		return nil, errNoPort
	}
	uid, gid, err := postgresIDs()
	if err != nil {
		return nil, err
	}
	template, err := postgresTemplate(env, uid, gid)
	if err != nil {
		return nil, err
	}
	data := o.DataDir
	if data == "" {
		data = filepath.Join(env.RunDir, o.Name)
	}
	// cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
	if err := proc.Run(proc.Spec{Name: o.Name + "-copy", Argv: []string{"cp", "-a", "--", template, data}, LogDir: env.LogDir}, time.Minute); err != nil {
		return nil, err
	}
	socketDir := filepath.Join(env.RunDir, o.Name+"-socket")
	if err := os.Mkdir(socketDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(socketDir, uid, gid); err != nil {
		return nil, err
	}
	argv := []string{"setpriv", "--reuid=" + pgUser, "--regid=" + pgUser, "--init-groups", "--",
		filepath.Join(pgBin, "postgres"), "-D", data,
		"-c", "port=" + strconv.Itoa(o.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + socketDir,
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=40",
		"-c", "logging_collector=off",
		"-c", "log_line_prefix=%m [%p] ",
		// New WAL is written into fresh blocks (no zero-filled or recycled segments), so a full
		// device under the database fails the next commit, as on a filesystem that ran out.
		"-c", "wal_init_zero=off",
		"-c", "wal_recycle=off",
	}
	pg := &Postgres{Name: o.Name, Port: o.Port, DataDir: data, SocketDir: socketDir}
	if o.MemoryLimit > 0 {
		g, err := memoryGroup(env, o.Name, o.MemoryLimit)
		if err != nil {
			return nil, err
		}
		pg.Group = g
		argv = g.Command(argv[0], argv[1:]...)
	}
	p, err := proc.Start(proc.Spec{Name: o.Name, Argv: argv, LogDir: env.LogDir})
	if err != nil {
		return nil, err
	}
	pg.Proc = p
	// Fast shutdown: the postmaster ends its backends and exits 0.
	env.Cleanup.Defer("PostgreSQL "+o.Name, func() error { p.Stop(syscall.SIGINT, 10*time.Second); return nil })
	if err := WaitLogLine(ctx, p.LogPath, "database system is ready to accept connections", p.Done(), 30*time.Second); err != nil {
		return nil, fmt.Errorf("PostgreSQL %s: %w: %s", o.Name, err, p.LogTail(600))
	}
	conn, err := pg.Admin(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS orders (
		id bigserial PRIMARY KEY, customer text NOT NULL, item text NOT NULL,
		quantity integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("creating the orders table: %w", err)
	}
	return pg, nil
}

// Connect opens a TCP connection to the server's postgres database, as a client of the shop's
// would (application_name rca-client).
func (pg *Postgres) Connect(ctx context.Context) (*pgx.Conn, error) {
	return pg.connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable application_name=rca-client", pg.Port, pgUser))
}

// Admin opens a connection over the Unix socket for the harness's own chores (creating the
// table, listing backends): they are no part of any scenario, and stay off the TCP port whose
// traffic Tapio watches.
func (pg *Postgres) Admin(ctx context.Context) (*pgx.Conn, error) {
	return pg.connect(ctx, fmt.Sprintf("host=%s port=%d user=%s dbname=postgres application_name=rca-admin", pg.SocketDir, pg.Port, pgUser))
}

func (pg *Postgres) connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// backendEnd matches the postmaster's account of a backend that died: "server process (PID 4242)
// was terminated by signal 9: Killed".
var backendEnd = regexp.MustCompile(`server process \(PID (\d+)\) was terminated by signal (\d+)`)

// TerminatedBackends reads from the postmaster's log which backends died of which signal.
func (pg *Postgres) TerminatedBackends() map[int]syscall.Signal {
	raw, err := os.ReadFile(pg.Proc.LogPath)
	if err != nil {
		return nil
	}
	out := map[int]syscall.Signal{}
	for _, m := range backendEnd.FindAllStringSubmatch(string(raw), -1) {
		pid, _ := strconv.Atoi(m[1])
		sig, _ := strconv.Atoi(m[2])
		out[pid] = syscall.Signal(sig)
	}
	return out
}

// WaitBackendTerminated waits until the postmaster logs the end of backend pid, and returns the
// signal it died of.
func (pg *Postgres) WaitBackendTerminated(ctx context.Context, pid int, timeout time.Duration) (syscall.Signal, error) {
	deadline := time.Now().Add(timeout)
	for {
		if sig, ok := pg.TerminatedBackends()[pid]; ok {
			return sig, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("PostgreSQL %s did not log the end of backend %d within %s", pg.Name, pid, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BackendPids lists the backends serving application_name app.
func (pg *Postgres) BackendPids(ctx context.Context, app string) ([]int, error) {
	conn, err := pg.Admin(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend'`, app)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

func postgresIDs() (uid, gid int, err error) {
	u, err := user.Lookup(pgUser)
	if err != nil {
		return 0, 0, fmt.Errorf("the %s user (Debian's postgresql package creates it): %w", pgUser, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// postgresTemplate returns a cluster made once by initdb and kept in the cache: initdb takes
// seconds, a copy a fraction of one. 1 MiB WAL segments keep a copy small enough for a tmpfs.
func postgresTemplate(env Env, uid, gid int) (string, error) {
	dir := filepath.Join(env.CacheDir, pgTemplate)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(env.CacheDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(env.CacheDir, pgTemplate+".new-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chown(tmp, uid, gid); err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(pgBin, "initdb"), "-D", tmp, "-U", pgUser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--wal-segsize=1", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another suite made it meanwhile.
		if _, statErr := os.Stat(filepath.Join(dir, "PG_VERSION")); statErr == nil {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}

// PreparePostgres makes the cached cluster, before any run: initdb's own processes are not part
// of any scenario.
func PreparePostgres(cacheDir string) error {
	uid, gid, err := postgresIDs()
	if err != nil {
		return err
	}
	_, err = postgresTemplate(Env{CacheDir: cacheDir}, uid, gid)
	return err
}
