// Written by hand in the shape mdatagen generates (mdatagen is not served to this project).

package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("correlation")
	ScopeName = "github.com/yairfalse/tapio/connector/correlationconnector"
)

const (
	TracesToLogsStability  = component.StabilityLevelAlpha
	LogsToLogsStability    = component.StabilityLevelAlpha
	MetricsToLogsStability = component.StabilityLevelAlpha
)
