package unifiedevent

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Typed readers for attribute values, for every component to use instead of its own copy. A
// missing part reads as absent rather than panicking: pdata's zero Value (what a lookup that found
// nothing yields) and zero Map (an absent nested object) cannot be read.

// StringValue returns v's string, or "" when v is absent or not a string.
func StringValue(v pcommon.Value) string {
	if v != (pcommon.Value{}) && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// StringAttribute returns the string attribute key of m, or "" when m has no such key or its
// value is not a string.
func StringAttribute(m pcommon.Map, key string) string {
	if m == (pcommon.Map{}) {
		return ""
	}
	if v, ok := m.Get(key); ok {
		return StringValue(v)
	}
	return ""
}

// IntValue reads an integer attribute the way producers send it in practice: an int, a double, or
// a decimal string (ports and status codes arrive in all three). A zero Value reads as absent.
func IntValue(v pcommon.Value) (int64, bool) {
	if v == (pcommon.Value{}) {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		return int64(v.Double()), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// IntAttribute reads the integer attribute key of m as IntValue does; false when m has no such key
// or its value is not an integer.
func IntAttribute(m pcommon.Map, key string) (int64, bool) {
	if m == (pcommon.Map{}) {
		return 0, false
	}
	if v, ok := m.Get(key); ok {
		return IntValue(v)
	}
	return 0, false
}
