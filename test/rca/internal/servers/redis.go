package servers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yairfalse/tapio/internal/memcg"
	"github.com/yairfalse/tapio/test/rca/internal/proc"
)

// RedisOptions configures one Redis server.
type RedisOptions struct {
	Name string
	Port int
	// MemoryLimit, when positive, runs Redis in a memory cgroup with that limit; Redis's own
	// maxmemory stays off, so filling it ends with the kernel's OOM killer.
	MemoryLimit int64
	// Netns runs Redis in that network namespace.
	Netns string
}

// Redis is a running Redis server.
type Redis struct {
	Name  string
	Port  int
	Netns string
	Proc  *proc.Proc
	Group *memcg.Group
	env   Env
	opts  RedisOptions
}

// StartRedis starts redis-server in the foreground on 127.0.0.1 with persistence off. DEBUG is
// enabled so that a scenario can make Redis really crash (DEBUG SEGFAULT) or stall (DEBUG SLEEP).
func StartRedis(ctx context.Context, env Env, o RedisOptions) (*Redis, error) {
	if o.Port == 0 {
		return nil, errNoPort
	}
	dir := filepath.Join(env.RunDir, o.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &Redis{Name: o.Name, Port: o.Port, Netns: o.Netns, env: env, opts: o}
	if o.MemoryLimit > 0 {
		g, err := memoryGroup(env, o.Name, o.MemoryLimit)
		if err != nil {
			return nil, err
		}
		r.Group = g
	}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Redis) start(ctx context.Context) error {
	argv := inNetns(r.Netns, []string{"redis-server",
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--dir", filepath.Join(r.env.RunDir, r.Name), "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--maxmemory", "0", "--enable-debug-command", "yes",
		// The crash report's memory test would hold a dying Redis for seconds.
		"--crash-memcheck-enabled", "no",
	})
	if r.Group != nil {
		argv = r.Group.Command(argv[0], argv[1:]...)
	}
	p, err := proc.Start(proc.Spec{Name: r.Name, Argv: argv, LogDir: r.env.LogDir})
	if err != nil {
		return err
	}
	r.Proc = p
	// SIGTERM is Redis's clean shutdown: it exits 0.
	r.env.Cleanup.Defer("Redis "+r.Name, func() error { p.Stop(syscall.SIGTERM, 10*time.Second); return nil })
	if err := WaitLogLine(ctx, p.LogPath, "Ready to accept connections", p.Done(), 20*time.Second); err != nil {
		return fmt.Errorf("Redis %s: %w: %s", r.Name, err, p.LogTail(600))
	}
	return nil
}

// Restart starts Redis again after it ended, with the same port, files and cgroup.
func (r *Redis) Restart(ctx context.Context) error {
	if !r.Proc.Exited() {
		return fmt.Errorf("Redis %s (pid %d) still runs", r.Name, r.Proc.Pid())
	}
	return r.start(ctx)
}

// Client is the harness's own client (not instrumented: it plays an operator, not the shop).
func (r *Redis) Client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: fmt.Sprintf("127.0.0.1:%d", r.Port), MaxRetries: -1,
		ReadTimeout: 30 * time.Second, DialTimeout: 2 * time.Second,
	})
}
