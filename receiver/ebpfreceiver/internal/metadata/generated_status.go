// Written by hand to follow ../../metadata.yaml, in the shape mdatagen generates from it: mdatagen
// is not served to this project. metadata_test.go fails when this file and metadata.yaml disagree.

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
