package impactexporter

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixtureFile holds the oom_chain correlation as OTLP/JSON logs, for tests outside this package
// (tapio-cli's golden tests feed it to a running exporter).
var fixtureFile = filepath.Join("testdata", "oom_chain.otlp.json")

func TestFixtureFileIsCurrent(t *testing.T) {
	raw, err := (&plog.JSONMarshaler{}).MarshalLogs(logsOf(oomChain()))
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(fixtureFile, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatalf("%v (run go test -run TestFixtureFileIsCurrent -update)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("%s is stale: run go test -run TestFixtureFileIsCurrent -update", fixtureFile)
	}
	// And it reads back as the same correlation.
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := readCorrelation(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)); err != nil {
		t.Fatal(err)
	}
}
