//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestComponentsListsTapioBesideUpstream(t *testing.T) {
	out, err := exec.Command(collectorBinary(t), "components").CombinedOutput()
	if err != nil {
		t.Fatalf("otelcol-tapio components: %v\n%s", err, out)
	}
	listing := string(out)
	for _, name := range []string{
		"unifiedevent", "ebpf", "correlation", "impact", // ours
		"otlp", "k8sobjects", // receivers
		"batch", "memory_limiter", "k8sattributes", // processors
		"debug", "otlp_grpc", "otlp_http", "file", // exporters
		"health_check", "pprof", "file_storage", "bearertokenauth", // extensions
	} {
		if !strings.Contains(listing, "- name: "+name+"\n") {
			t.Errorf("components does not list %s", name)
		}
	}
	if !strings.Contains(listing, "module: github.com/yairfalse/tapio v0.0.0") {
		t.Error("the Tapio module is not listed as a component's module")
	}
}

// shippedConfigs is every collector config a user can pick up from the repository: the
// distributions and the YAML examples in README.md.
func shippedConfigs(t *testing.T) map[string]string {
	root := repoRoot(t)
	configs := map[string]string{}
	files, err := filepath.Glob(filepath.Join(root, "distributions", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		configs[rel] = string(raw)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	for i, b := range blocks {
		if strings.Contains(b[1], "service:") {
			configs["README.md yaml block "+string(rune('1'+i))] = b[1]
		}
	}
	if len(configs) < 3 {
		t.Fatalf("expected the distributions and a README example, found %d configs", len(configs))
	}
	return configs
}

func TestEveryShippedConfigValidates(t *testing.T) {
	bin := collectorBinary(t)
	for name, config := range shippedConfigs(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "validate", "--config", path)
			cmd.Env = append(os.Environ(), "TAPIO_UPSTREAM_ENDPOINT=127.0.0.1:4317", "TAPIO_DATA_DIR="+t.TempDir(), "TAPIO_API_TOKEN=secret")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("validate: %v\n%s", err, out)
			}
		})
	}
}

func TestValidateRejectsABadProcessorConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	config := `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:
  unifiedevent:
    on_invalid: sometimes
    exclude: [tapio.kernel.not_a_thing]
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [unifiedevent]
      exporters: [debug]
`
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(collectorBinary(t), "validate", "--config", path).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a bad unifiedevent config:\n%s", out)
	}
	for _, want := range []string{`on_invalid must be one of pass, drop, got "sometimes"`, `"tapio.kernel.not_a_thing" is not an event name`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}
