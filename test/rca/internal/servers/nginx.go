package servers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/proc"
)

// NginxOptions configures one nginx server.
type NginxOptions struct {
	Name  string
	Port  int
	Netns string
}

// Nginx is a running nginx: a master and its pre-forked workers.
type Nginx struct {
	Name   string
	Port   int
	Prefix string
	Proc   *proc.Proc
}

// nginxConf serves the catalog's price files. keepalive_timeout 0 closes every connection after
// its answer, so each request opens a connection of its own: a dropped SYN then fails exactly
// the requests made while it is dropped.
const nginxConf = `daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    default_type application/json;
    server {
        listen 127.0.0.1:%[2]d;
        root %[1]s/www;
    }
}
`

// StartNginx writes a configuration under the run's directory and starts nginx in the
// foreground (daemon off), its master being the harness's child.
func StartNginx(ctx context.Context, env Env, o NginxOptions) (*Nginx, error) {
	if o.Port == 0 {
		return nil, errNoPort
	}
	prefix := filepath.Join(env.RunDir, o.Name)
	prices := filepath.Join(prefix, "www", "prices")
	if err := os.MkdirAll(prices, 0o755); err != nil {
		return nil, err
	}
	for i := 0; i < 10; i++ {
		price := fmt.Sprintf("{\"amount\":%d.90,\"currency\":\"EUR\"}\n", 10+i)
		if err := os.WriteFile(filepath.Join(prices, fmt.Sprintf("%d.json", i)), []byte(price), 0o644); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, prefix, o.Port)), 0o644); err != nil {
		return nil, err
	}
	argv := inNetns(o.Netns, []string{"nginx", "-p", prefix, "-c", conf})
	p, err := proc.Start(proc.Spec{Name: o.Name, Argv: argv, LogDir: env.LogDir})
	if err != nil {
		return nil, err
	}
	// SIGQUIT is nginx's graceful shutdown: workers finish their requests, the master exits 0.
	env.Cleanup.Defer("nginx "+o.Name, func() error { p.Stop(syscall.SIGQUIT, 10*time.Second); return nil })
	if err := WaitListening(ctx, p.Pid(), o.Port, p.Done(), 20*time.Second); err != nil {
		return nil, fmt.Errorf("nginx %s: %w: %s", o.Name, err, p.LogTail(600))
	}
	return &Nginx{Name: o.Name, Port: o.Port, Prefix: prefix, Proc: p}, nil
}

// PricesURL is the base URL the catalog reads prices from.
func (n *Nginx) PricesURL() string { return fmt.Sprintf("http://127.0.0.1:%d/prices", n.Port) }

// Reload makes nginx re-read its configuration: new workers start, the old ones finish their
// requests and exit 0 — a clean restart of the workers during which no request fails.
func (n *Nginx) Reload() error { return n.Proc.Signal(syscall.SIGHUP) }
