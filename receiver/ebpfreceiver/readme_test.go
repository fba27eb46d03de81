package ebpfreceiver

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the generated sections of README.md from the probe table")

// readmeSections renders, from the probe table and the embedded object, the parts of the README
// that must not drift from the code.
func readmeSections(t *testing.T) map[string]string {
	t.Helper()
	tracepoints, err := kernel.Tracepoints()
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	table.WriteString("| probe | default | BTF raw tracepoints | reports |\n| --- | --- | --- | --- |\n")
	var yaml strings.Builder
	yaml.WriteString("```yaml\nreceivers:\n  ebpf:\n    probes:\n")
	for _, p := range kernel.ProbeTable {
		def := "always on"
		if p.Switchable {
			def = map[bool]string{true: "on", false: "off"}[p.Default]
			fmt.Fprintf(&yaml, "      %s: %v\n", p.Name, p.Default)
		}
		var tps []string
		for _, prog := range p.Programs {
			tp, ok := tracepoints[prog]
			if !ok {
				t.Fatalf("probe %s names program %s, which the object lacks", p.Name, prog)
			}
			tps = append(tps, "`"+tp+"`")
		}
		fmt.Fprintf(&table, "| `%s` | %s | %s | %s |\n", p.Name, def, strings.Join(tps, ", "), p.Reports)
	}
	yaml.WriteString("```\n")
	return map[string]string{"probes": table.String(), "probe-defaults": yaml.String()}
}

func TestReadmeMatchesProbeTable(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for name, want := range readmeSections(t) {
		begin := "<!-- BEGIN GENERATED " + name + " -->\n"
		end := "<!-- END GENERATED " + name + " -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Errorf("README.md has no generated section %q", name)
			continue
		}
		if got := doc[i+len(begin) : j]; got != want {
			if *updateReadme {
				doc = doc[:i+len(begin)] + want + doc[j:]
				continue
			}
			t.Errorf("README.md section %q disagrees with the probe table; run `make generate`.\n--- README\n%s\n--- table\n%s", name, got, want)
		}
	}
	if *updateReadme {
		if err := os.WriteFile("README.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProbeTableCoversEveryProgram: a program that no probe attaches is dead code in the kernel.
func TestProbeTableCoversEveryProgram(t *testing.T) {
	tracepoints, err := kernel.Tracepoints()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, p := range kernel.ProbeTable {
		for _, prog := range p.Programs {
			used[prog] = true
		}
	}
	for prog := range tracepoints {
		if !used[prog] {
			t.Errorf("program %s is attached by no probe of the table", prog)
		}
	}
}
