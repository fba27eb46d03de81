package impactexporter

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the exporter's golden files")

// The incident JSON is the API's contract (docs/API.md) and what the store keeps: this golden
// file holds one incident, every figure configured, byte for byte as served.
func TestIncidentWireJSON(t *testing.T) {
	cfg := testConfig(t)
	businessConfig(cfg)
	clock := &testClock{now: time.Date(2026, 11, 25, 3, 0, 13, 0, time.UTC)}
	e := startExporter(t, cfg, nil, nil, withClock(clock))
	consume(t, e, oomChain())
	resp, err := http.Get("http://" + e.addr() + "/api/v1/incidents/correlation-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	path := filepath.Join("testdata", "incident.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestIncidentWireJSON -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the incident JSON changed:\ngot  %s\nwant %s", got, want)
	}
}
