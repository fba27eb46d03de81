package unifiedevent_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/UNIFIED_EVENT.md")

const docPath = "../../docs/UNIFIED_EVENT.md"

// generatedSections renders, from the package itself, every part of the document that must not
// drift from the code.
func generatedSections() map[string]string {
	var catalogue strings.Builder
	catalogue.WriteString("| event.name | layer | category | default severity | problem (evidence of an incident) | meaning |\n")
	catalogue.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, d := range unifiedevent.Catalogue() {
		problem := "no"
		if d.Problem {
			problem = "yes"
		}
		fmt.Fprintf(&catalogue, "| `%s` | %s | %s | %s | %s | %s |\n", d.Name, d.Layer, d.Category, d.Severity, problem, d.Description)
	}

	var keys strings.Builder
	keys.WriteString("| key | where | meaning |\n| --- | --- | --- |\n")
	for _, k := range unifiedevent.KeySpecs() {
		fmt.Fprintf(&keys, "| `%s` | %s | %s |\n", k.Key, k.Placement, k.Meaning)
	}

	var entity strings.Builder
	for i, rule := range unifiedevent.EntityRule {
		fmt.Fprintf(&entity, "%d. %s\n", i+1, rule)
	}

	var layers strings.Builder
	names := make([]string, 0, unifiedevent.LayerCount)
	for _, l := range unifiedevent.Layers() {
		names = append(names, "`"+l.String()+"`")
	}
	layers.WriteString(strings.Join(names, " < ") + "\n")

	var categories strings.Builder
	cats := make([]string, 0, 9)
	for _, c := range unifiedevent.Categories() {
		cats = append(cats, "`"+string(c)+"`")
	}
	categories.WriteString(strings.Join(cats, ", ") + "\n")

	return map[string]string{
		"catalogue":  catalogue.String(),
		"keys":       keys.String(),
		"entity":     entity.String(),
		"layers":     layers.String(),
		"categories": categories.String(),
		"version":    fmt.Sprintf("`%s` = %d\n", unifiedevent.KeySchemaVersion, unifiedevent.SchemaVersion),
	}
}

func TestUnifiedEventDocMatchesSchema(t *testing.T) {
	raw, err := os.ReadFile(filepath.FromSlash(docPath))
	if err != nil {
		t.Fatalf("read the schema document: %v", err)
	}
	doc := string(raw)
	for name, want := range generatedSections() {
		begin := "<!-- BEGIN GENERATED " + name + " -->\n"
		end := "<!-- END GENERATED " + name + " -->"
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			t.Errorf("docs/UNIFIED_EVENT.md has no generated section %q (markers %q … %q)", name, begin, end)
			continue
		}
		got := doc[i+len(begin) : j]
		if got == want {
			continue
		}
		if *update {
			doc = doc[:i+len(begin)] + want + doc[j:]
			continue
		}
		t.Errorf("docs/UNIFIED_EVENT.md section %q disagrees with pkg/unifiedevent; run `make generate`.\n--- doc\n%s\n--- package\n%s", name, got, want)
	}
	if *update {
		if err := os.WriteFile(filepath.FromSlash(docPath), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
