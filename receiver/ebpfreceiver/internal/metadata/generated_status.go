// Written by hand in the shape mdatagen generates (mdatagen is not served to this project).

package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("ebpf")
	ScopeName = "github.com/yairfalse/tapio/receiver/ebpfreceiver"
)

const (
	LogsStability    = component.StabilityLevelAlpha
	MetricsStability = component.StabilityLevelAlpha
)
