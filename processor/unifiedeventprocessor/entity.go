package unifiedeventprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// resourceEntity is the entity of the records of one resource that name none of their own,
// derived once, on the first record that needs it: in an error storm every record is a
// UnifiedEvent, and the entity rule's lookups would otherwise run per record.
type resourceEntity struct {
	attrs pcommon.Map
	id    string
	read  bool
}

// of returns the entity of a record; namesEntity says whether the record carries a key of the
// entity rule (recordNamesEntity, or one pass the caller makes anyway).
func (r *resourceEntity) of(record pcommon.Map, namesEntity bool) string {
	if namesEntity {
		return unifiedevent.EntityID(r.attrs, record)
	}
	if !r.read {
		r.id, r.read = unifiedevent.ResourceEntityID(r.attrs), true
	}
	return r.id
}

// recordNamesEntity reports whether a record carries a key of the entity rule.
func recordNamesEntity(record pcommon.Map) bool {
	names := false
	record.Range(func(k string, _ pcommon.Value) bool {
		names = unifiedevent.IsEntityKey(k)
		return !names
	})
	return names
}
