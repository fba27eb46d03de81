package scenario

import (
	"fmt"
	"os"
	"time"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/test/rca/internal/fault"
	"github.com/yairfalse/tapio/test/rca/internal/load"
	"github.com/yairfalse/tapio/test/rca/internal/score"
)

// RedisNeverStarted: the catalog is deployed against a Redis that was never started; its
// connections are refused from the very first request.
var RedisNeverStarted = Scenario{Name: "redis-never-started", Play: func(r *Run) error {
	catalog, err := r.StartCatalog(CatalogOptions{NoRedis: true})
	if err != nil {
		return err
	}
	port := r.Port(portNeverStarted)
	r.Expect(score.Expectation{
		Fault:      fmt.Sprintf("Redis never started: nothing listens on 127.0.0.1:%d", port),
		EventNames: []string{string(unifiedevent.ConnectionRefused)},
		Facts:      [][]string{{fmt.Sprintf(":%d", port)}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf(":%d", port)},
		At:         time.Now(),
	})
	gen := load.Start(r.Ctx, uint64(r.Index), catalog.Target())
	defer func() { r.Outcomes(gen.Stop()) }()
	return r.Sleep(defaultWarmUp + defaultFailWindow)
}}

// RedisConnectionReset: every connection to Redis is answered with a TCP reset (an nftables
// reject on the way there, as a middlebox that lost its state would), so the catalog's pooled
// and new connections are reset by the peer.
var RedisConnectionReset = Scenario{Name: "redis-conn-reset", Play: func(r *Run) error {
	catalog, err := r.StartCatalog(CatalogOptions{})
	if err != nil {
		return err
	}
	fw, err := fault.NewFirewall(r, r.LogDir, "", r.nftTable())
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	port := catalog.Redis.Port
	at := time.Now()
	if err := fw.ResetConnections(port); err != nil {
		return err
	}
	r.Expect(score.Expectation{
		Fault:      fmt.Sprintf("TCP reset on every connection to Redis 127.0.0.1:%d (nft reject with tcp reset)", port),
		EventNames: []string{string(unifiedevent.ConnectionReset)},
		Facts:      [][]string{{fmt.Sprintf(":%d", port)}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf(":%d", port), fmt.Sprintf("(pid %d)", catalog.Redis.Proc.Pid())},
		At:         at,
	})
	return r.Sleep(defaultFailWindow)
}}

// synRetries is tcp_syn_retries in the connect-timeout scenario's network namespace: the kernel
// gives up a connect after about 3 s (1 s, then 2 s) instead of the host's 127 s.
const synRetries = "1"

// NginxConnectTimeout: the whole catalog stack runs in a network namespace of its own with
// tcp_syn_retries lowered; nftables drops everything to nginx on input, so every connect
// retransmits its SYN and times out in the kernel (ETIMEDOUT).
var NginxConnectTimeout = Scenario{Name: "nginx-connect-timeout", Play: func(r *Run) error {
	ns, err := fault.NewNetns(r, r.LogDir, fmt.Sprintf("tapio-rca-%d-%d", os.Getpid(), r.Index), map[string]string{"net.ipv4.tcp_syn_retries": synRetries})
	if err != nil {
		return err
	}
	catalog, err := r.StartCatalog(CatalogOptions{Netns: ns})
	if err != nil {
		return err
	}
	fw, err := fault.NewFirewall(r, r.LogDir, ns.Name, r.nftTable())
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	port := catalog.Nginx.Port
	at := time.Now()
	if err := fw.DropInput(port); err != nil {
		return err
	}
	r.Expect(score.Expectation{
		Fault: fmt.Sprintf("every packet to nginx 127.0.0.1:%d dropped on input (nft, network namespace %s, tcp_syn_retries %s)",
			port, ns.Name, synRetries),
		EventNames: []string{string(unifiedevent.ConnectionTimeout), string(unifiedevent.TCPRetransmit)},
		Facts:      [][]string{{fmt.Sprintf(":%d", port)}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf(":%d", port)},
		RelatedLater: func() []string {
			return pidTokensOf(catalog.Nginx.Proc.Pid())
		},
		At: at,
	})
	// A connect now takes ~3 s to fail: leave time for a few rounds.
	return r.Sleep(defaultFailWindow + 3*time.Second)
}}

// catalogDialTimeout is the catalog's own connect timeout in the abandoned-connect scenario,
// shorter than the first SYN retransmission (1 s): the connect is given up before the kernel
// retransmits anything.
const catalogDialTimeout = 800 * time.Millisecond

// NginxConnectAbandoned: SYNs to nginx are dropped on the host and the catalog gives up each
// connect after its own timeout: the socket is closed in SYN_SENT with no socket error.
var NginxConnectAbandoned = Scenario{Name: "nginx-connect-abandoned", Play: func(r *Run) error {
	catalog, err := r.StartCatalog(CatalogOptions{DialTimeout: catalogDialTimeout})
	if err != nil {
		return err
	}
	fw, err := fault.NewFirewall(r, r.LogDir, "", r.nftTable())
	if err != nil {
		return err
	}
	stop, err := r.warmLoad(catalog.Target())
	defer stop()
	if err != nil {
		return err
	}
	port := catalog.Nginx.Port
	at := time.Now()
	if err := fw.DropInput(port); err != nil {
		return err
	}
	r.Expect(score.Expectation{
		Fault:      fmt.Sprintf("every packet to nginx 127.0.0.1:%d dropped on input (nft); the catalog abandons each connect after %s", port, catalogDialTimeout),
		EventNames: []string{string(unifiedevent.ConnectionTimeout)},
		Facts:      [][]string{{fmt.Sprintf(":%d", port)}},
		Services:   []string{"catalog"},
		Related:    []string{fmt.Sprintf(":%d", port)},
		RelatedLater: func() []string {
			return pidTokensOf(catalog.Nginx.Proc.Pid())
		},
		At: at,
	})
	return r.Sleep(defaultFailWindow)
}}

// nftTable is the run's own nftables table.
func (r *Run) nftTable() string { return fmt.Sprintf("tapio_rca_%d_%d", os.Getpid(), r.Index) }

// pidTokensOf names a process and its descendants as narratives do.
func pidTokensOf(pid int) []string {
	var out []string
	for _, p := range descendants(pid) {
		out = append(out, fmt.Sprintf("(pid %d)", p))
	}
	return out
}
