// Written by hand in the shape mdatagen generates (mdatagen is not served to this project).

package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("impact")
	ScopeName = "github.com/yairfalse/tapio/exporter/impactexporter"
)

const (
	LogsStability = component.StabilityLevelAlpha
)
