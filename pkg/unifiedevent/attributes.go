package unifiedevent

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attributes is a typed view over the attributes of a UnifiedEvent: a log record's, or a span's
// annotated in place. It holds no state of its own.
type Attributes struct{ m pcommon.Map }

// Of views m as UnifiedEvent attributes.
func Of(m pcommon.Map) Attributes { return Attributes{m: m} }

// Map returns the underlying attribute map.
func (a Attributes) Map() pcommon.Map { return a.m }

// Name returns event.name, or "".
func (a Attributes) Name() string { return a.str(KeyEventName) }

// EventID returns tapio.event.id, or "".
func (a Attributes) EventID() string { return a.str(KeyEventID) }

// EntityID returns tapio.entity.id, or "".
func (a Attributes) EntityID() string { return a.str(KeyEntityID) }

// Source returns tapio.source, or "".
func (a Attributes) Source() string { return a.str(KeySource) }

// Category returns tapio.category, or when it is absent the category of the event name's
// catalogue entry, or "".
func (a Attributes) Category() Category {
	if v, ok := a.m.Get(KeyCategory); ok {
		return Category(StringValue(v))
	}
	def, _ := a.Definition()
	return def.Category
}

// Layer returns tapio.layer, or when it is absent the layer of the event name's catalogue entry
// (a span annotated with the identifying keys only, StampIdentity); false when neither names one.
func (a Attributes) Layer() (Layer, bool) {
	if v, ok := a.m.Get(KeyLayer); ok {
		return ParseLayer(StringValue(v))
	}
	if def, ok := a.Definition(); ok {
		return def.Layer, true
	}
	return 0, false
}

// Definition returns the catalogue entry named by event.name.
func (a Attributes) Definition() (Definition, bool) { return Lookup(a.Name()) }

// StampedKeys is how many keys Stamp writes: a caller about to stamp many records reserves room
// for them (pcommon.Map.EnsureCapacity) so that the map grows once.
const StampedKeys = 5

// Stamp makes the attributes a fresh UnifiedEvent of kind def, observed by source. It overwrites
// the core keys, so it is for events this component creates, never for ones it passes on.
// It writes StampedKeys keys.
func (a Attributes) Stamp(def Definition, source string) {
	a.StampWithID(def, source, NewEventID())
}

// StampWithID is Stamp with an event id the caller made (EventIDs, for a producer of many).
func (a Attributes) StampWithID(def Definition, source, id string) {
	a.StampIdentity(def, id)
	a.m.PutStr(KeyLayer, def.Layer.String())
	a.m.PutStr(KeyCategory, string(def.Category))
	a.m.PutStr(KeySource, source)
}

// StampIdentity writes what identifies an event and nothing else implies: event.name, and
// tapio.event.id unless id is "". It is for spans annotated in place, whose producer chose the
// short form: a span's layer and category are its catalogue entry's (Layer and Category read them
// from there when absent), its event id follows from its trace and span ids (SpanEventID), and
// its entity from its resource and attributes (EntityID), so a span with a trace id is stamped
// with its name alone.
func (a Attributes) StampIdentity(def Definition, id string) {
	a.m.PutStr(KeyEventName, string(def.Name))
	if id != "" {
		a.m.PutStr(KeyEventID, id)
	}
}

// SetEntityID writes tapio.entity.id; an empty id is not written.
func (a Attributes) SetEntityID(id string) {
	if id != "" {
		a.m.PutStr(KeyEntityID, id)
	}
}

// Complete fills what an already-normalised event lacks — layer, category, event id, entity id —
// and never rewrites a value that is present. It reports how many keys it wrote.
func (a Attributes) Complete(def Definition, resource pcommon.Map) int {
	written := 0
	if _, ok := a.m.Get(KeyLayer); !ok {
		a.m.PutStr(KeyLayer, def.Layer.String())
		written++
	}
	if _, ok := a.m.Get(KeyCategory); !ok {
		a.m.PutStr(KeyCategory, string(def.Category))
		written++
	}
	if _, ok := a.m.Get(KeyEventID); !ok {
		a.m.PutStr(KeyEventID, NewEventID())
		written++
	}
	if _, ok := a.m.Get(KeyEntityID); !ok {
		if id := EntityID(resource, a.m); id != "" {
			a.m.PutStr(KeyEntityID, id)
			written++
		}
	}
	return written
}

// Validate checks the attributes of an event that claims to be already normalised against the
// catalogue: a known name, a layer that agrees with it, a well-formed event id.
func (a Attributes) Validate() (Definition, error) {
	name := a.Name()
	def, ok := Lookup(name)
	if !ok {
		return Definition{}, fmt.Errorf("event.name %q is not in the UnifiedEvent v%d catalogue", name, SchemaVersion)
	}
	if v, ok := a.m.Get(KeyLayer); ok {
		if v.Type() != pcommon.ValueTypeStr || v.Str() != def.Layer.String() {
			return def, fmt.Errorf("%s = %q disagrees with %s, which is a %s event", KeyLayer, v.AsString(), name, def.Layer)
		}
	}
	if v, ok := a.m.Get(KeyEventID); ok {
		if v.Type() != pcommon.ValueTypeStr || !ValidEventID(v.Str()) {
			return def, fmt.Errorf("%s = %q is not 32 lower-case hex digits", KeyEventID, v.AsString())
		}
	}
	return def, nil
}

func (a Attributes) str(key string) string { return StringAttribute(a.m, key) }

// MarkScope writes the schema version onto an instrumentation scope whose records follow it.
func MarkScope(scope pcommon.InstrumentationScope) {
	attrs := scope.Attributes()
	if v, ok := attrs.Get(KeySchemaVersion); ok && v.Type() == pcommon.ValueTypeInt && v.Int() == SchemaVersion {
		return
	}
	attrs.PutInt(KeySchemaVersion, SchemaVersion)
}
