package scenario

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/fault"
	"github.com/yairfalse/tapio/test/rca/internal/load"
	"github.com/yairfalse/tapio/test/rca/internal/servers"
)

// Port offsets of the shop's stacks.
const (
	portPostgres      = 10
	portOrders        = 11
	portRedis         = 20
	portNginx         = 21
	portCatalog       = 22
	portNeverStarted  = 29
	portNetnsRedis    = 30
	portNetnsNginx    = 31
	portNetnsCatalog  = 32
	ordersUsers       = 40
	catalogUsers      = 40
	ordersPerSecond   = 12
	catalogPerSecond  = 12
	defaultWarmUp     = 2 * time.Second
	defaultFailWindow = 4 * time.Second
)

// Orders is the JavaScript stack: the orders service on PostgreSQL.
type Orders struct {
	Postgres *servers.Postgres
	App      *servers.App
}

// OrdersOptions varies the stack per scenario.
type OrdersOptions struct {
	// PostgresMemory is the limit of PostgreSQL's memory cgroup (default 1 GiB). The server always
	// has a cgroup of its own, as under a service manager; it also lets the teardown find every
	// backend, even those a killed postmaster left behind.
	PostgresMemory int64
	// DataDir puts the cluster elsewhere (a thin disk).
	DataDir string
}

// StartOrders starts PostgreSQL, then the orders service on it.
func (r *Run) StartOrders(o OrdersOptions) (*Orders, error) {
	if o.PostgresMemory == 0 {
		o.PostgresMemory = 1 << 30
	}
	pg, err := servers.StartPostgres(r.Ctx, r.Env, servers.PostgresOptions{
		Name: "postgres", Port: r.Port(portPostgres), MemoryLimit: o.PostgresMemory, DataDir: o.DataDir,
	})
	if err != nil {
		return nil, err
	}
	app, err := servers.StartOrders(r.Ctx, r.Env, r.Telemetry, servers.OrdersOptions{
		Name: "orders", Port: r.Port(portOrders), JSDir: r.cfg.JSDir, Postgres: pg,
	})
	if err != nil {
		return nil, err
	}
	r.Logf("orders stack up: postgres pid %d on :%d, orders pid %d on :%d", pg.Proc.Pid(), pg.Port, app.Proc.Pid(), app.Port)
	return &Orders{Postgres: pg, App: app}, nil
}

// Target places orders.
func (s *Orders) Target() load.Target {
	base := s.App.BaseURL()
	return load.Target{
		Label: "orders", Service: "orders", Route: "/api/orders", UserPrefix: "customer", Users: ordersUsers, Rate: ordersPerSecond,
		NewRequest: func(ctx context.Context, n int, user string) (*http.Request, error) {
			body := fmt.Sprintf(`{"item":"item-%d","quantity":%d}`, n%25+1, n%3+1)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/orders", bytes.NewBufferString(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		},
	}
}

// BadRequests is a customer's client that gets 4xx answers: invalid orders and unknown ones.
func (s *Orders) BadRequests() load.Target {
	base := s.App.BaseURL()
	return load.Target{
		Label: "orders-4xx", Service: "orders", Route: "/api/orders", UserPrefix: "customer", Users: ordersUsers, Rate: 4,
		NewRequest: func(ctx context.Context, n int, user string) (*http.Request, error) {
			if n%2 == 0 {
				return http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/orders/%d", base, 900000+n), nil)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/orders", bytes.NewBufferString(`{"item":""}`))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		},
	}
}

// Catalog is the Go stack: the catalog service on Redis and nginx.
type Catalog struct {
	Redis *servers.Redis
	Nginx *servers.Nginx
	App   *servers.App
	// RedisAddr is where the catalog looks for Redis (which may never have been started).
	RedisAddr string
	client    *http.Client
}

// CatalogOptions varies the stack per scenario.
type CatalogOptions struct {
	RedisMemory int64
	// NoRedis starts no Redis: the catalog is pointed at a port where nothing ever listened.
	NoRedis bool
	// Netns runs the whole stack in that network namespace.
	Netns *fault.Netns
	// DialTimeout is the catalog's own connect timeout; 0 leaves it to the kernel.
	DialTimeout time.Duration
}

// StartCatalog starts Redis and nginx, then the catalog service on them.
func (r *Run) StartCatalog(o CatalogOptions) (*Catalog, error) {
	redisPort, nginxPort, catalogPort := r.Port(portRedis), r.Port(portNginx), r.Port(portCatalog)
	netns := ""
	if o.Netns != nil {
		netns = o.Netns.Name
		redisPort, nginxPort, catalogPort = r.Port(portNetnsRedis), r.Port(portNetnsNginx), r.Port(portNetnsCatalog)
	}
	c := &Catalog{RedisAddr: fmt.Sprintf("127.0.0.1:%d", redisPort)}
	if o.NoRedis {
		c.RedisAddr = fmt.Sprintf("127.0.0.1:%d", r.Port(portNeverStarted))
	} else {
		rd, err := servers.StartRedis(r.Ctx, r.Env, servers.RedisOptions{Name: "redis", Port: redisPort, MemoryLimit: o.RedisMemory, Netns: netns})
		if err != nil {
			return nil, err
		}
		c.Redis = rd
	}
	ng, err := servers.StartNginx(r.Ctx, r.Env, servers.NginxOptions{Name: "nginx", Port: nginxPort, Netns: netns})
	if err != nil {
		return nil, err
	}
	c.Nginx = ng
	app, err := servers.StartCatalog(r.Ctx, r.Env, r.Telemetry, servers.CatalogOptions{
		Name: "catalog", Port: catalogPort, Binary: r.cfg.Catalog, Redis: c.RedisAddr, Prices: ng.PricesURL(),
		Netns: netns, Timeout: o.DialTimeout,
	})
	if err != nil {
		return nil, err
	}
	c.App = app
	if o.Netns != nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.DialContext = o.Netns.DialContext
		c.client = &http.Client{Transport: transport, Timeout: 20 * time.Second}
	}
	redisPid := 0
	if c.Redis != nil {
		redisPid = c.Redis.Proc.Pid()
	}
	r.Logf("catalog stack up: redis pid %d on %s, nginx pid %d on :%d, catalog pid %d on :%d",
		redisPid, c.RedisAddr, ng.Proc.Pid(), ng.Port, app.Proc.Pid(), app.Port)
	return c, nil
}

// Target looks at items.
func (s *Catalog) Target() load.Target {
	base := s.App.BaseURL()
	return load.Target{
		Label: "catalog", Service: "catalog", Route: "/api/items/{id}", UserPrefix: "shopper", Users: catalogUsers, Rate: catalogPerSecond,
		Client: s.client,
		NewRequest: func(ctx context.Context, n int, user string) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/items/%d", base, n%50+1), nil)
		},
	}
}

// BadRequests asks for items that cannot exist: 400.
func (s *Catalog) BadRequests() load.Target {
	base := s.App.BaseURL()
	return load.Target{
		Label: "catalog-4xx", Service: "catalog", Route: "/api/items/{id}", UserPrefix: "shopper", Users: catalogUsers, Rate: 4,
		Client: s.client,
		NewRequest: func(ctx context.Context, n int, user string) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/items/not-a-number", nil)
		},
	}
}

// waitFor polls cond until it holds or d has passed.
func (r *Run) waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || r.Ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
