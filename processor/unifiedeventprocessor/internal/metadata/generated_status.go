// Written by hand in the shape mdatagen generates (mdatagen is not served to this project).

package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("unifiedevent")
	ScopeName = "github.com/yairfalse/tapio/processor/unifiedeventprocessor"
)

const (
	LogsStability    = component.StabilityLevelAlpha
	TracesStability  = component.StabilityLevelAlpha
	MetricsStability = component.StabilityLevelAlpha
)
