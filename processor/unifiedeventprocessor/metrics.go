package unifiedeventprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// processMetrics puts the entity id on each resource so that metrics join incidents by entity;
// data points and exemplars are not touched.
func (n *normalizer) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		attrs := rms.At(i).Resource().Attributes()
		if _, ok := attrs.Get(unifiedevent.KeyEntityID); ok {
			continue
		}
		if id := unifiedevent.ResourceEntityID(attrs); id != "" {
			attrs.PutStr(unifiedevent.KeyEntityID, id)
		}
	}
	return md, nil
}
