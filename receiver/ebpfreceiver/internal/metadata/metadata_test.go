package metadata

import (
	"testing"

	"go.opentelemetry.io/collector/component"

	"github.com/yairfalse/tapio/internal/metadatatest"
)

func TestFollowsMetadataYAML(t *testing.T) {
	metadatatest.Check(t, "../../metadata.yaml", metadatatest.Component{
		Type:      Type,
		ScopeName: ScopeName,
		Stability: map[string]component.StabilityLevel{
			"logs":    LogsStability,
			"metrics": MetricsStability,
		},
	}, NewTelemetryBuilder)
}
