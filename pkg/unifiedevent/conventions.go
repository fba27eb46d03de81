package unifiedevent

import "go.opentelemetry.io/collector/pdata/pcommon"

// Older names of semantic-convention attributes, still sent by many instrumentations (the
// OpenTelemetry JS and Java agents default to them unless told to opt in to the stable names).
const (
	KeyNetPeerNameLegacy     = "net.peer.name"
	KeyNetPeerPortLegacy     = "net.peer.port"
	KeyNetSockPeerAddrLegacy = "net.sock.peer.addr"
	KeyNetSockPeerPortLegacy = "net.sock.peer.port"
	KeyHTTPMethodLegacy      = "http.method"
	// KeyDBConnectionStringLegacy is the only place some database clients (go-redis's redisotel)
	// name the server they call: its host and port stand in for server.* when nothing else does.
	KeyDBConnectionStringLegacy = "db.connection_string"
)

// CallFact is one fact about a request or a call that instrumentations report under different
// attribute names across semantic-convention versions.
type CallFact uint8

const (
	FactNone CallFact = iota
	// FactPeerAddress is the address a client called (a DNS name or an IP).
	FactPeerAddress
	FactPeerPort
	FactHTTPStatus
	FactGRPCStatus
	FactDBSystem
	FactHTTPRoute
	FactHTTPMethod
	factCount
)

// Conventions lists, for each call fact, the attribute keys that carry it, the preferred first:
// the current semantic-convention name, then the older ones. It is the one table every reader of
// these facts follows; CallFacts.Take is its fast form, held equal to it by a test.
var Conventions = []struct {
	Fact CallFact
	Keys []string
}{
	{FactPeerAddress, []string{KeyServerAddress, KeyNetPeerNameLegacy, KeyNetworkPeerAddress, KeyNetSockPeerAddrLegacy}},
	{FactPeerPort, []string{KeyServerPort, KeyNetPeerPortLegacy, KeyNetworkPeerPort, KeyNetSockPeerPortLegacy}},
	{FactHTTPStatus, []string{KeyHTTPResponseStatusCode, KeyHTTPStatusCodeLegacy}},
	{FactGRPCStatus, []string{KeyRPCGRPCStatusCode}},
	{FactDBSystem, []string{KeyDBSystemName, KeyDBSystemLegacy}},
	{FactHTTPRoute, []string{KeyHTTPRoute}},
	{FactHTTPMethod, []string{KeyHTTPRequestMethod, KeyHTTPMethodLegacy}},
}

// CallFacts are the call facts of one span or record, each from the most preferred key present.
type CallFacts struct {
	PeerAddress string
	PeerPort    int64
	HTTPStatus  int64
	GRPCStatus  int64
	DBSystem    string
	HTTPRoute   string
	HTTPMethod  string
	// rank[f] is 1 + the index in Conventions of the key that set fact f; 0 when unset.
	rank [factCount]uint8
}

// Has reports whether a fact was read.
func (f *CallFacts) Has(fact CallFact) bool { return f.rank[fact] != 0 }

// ConventionOf returns the fact an attribute key carries and its preference (0 is the current
// name), from the Conventions table.
func ConventionOf(key string) (CallFact, int) {
	switch key {
	case KeyServerAddress:
		return FactPeerAddress, 0
	case KeyNetPeerNameLegacy:
		return FactPeerAddress, 1
	case KeyNetworkPeerAddress:
		return FactPeerAddress, 2
	case KeyNetSockPeerAddrLegacy:
		return FactPeerAddress, 3
	case KeyServerPort:
		return FactPeerPort, 0
	case KeyNetPeerPortLegacy:
		return FactPeerPort, 1
	case KeyNetworkPeerPort:
		return FactPeerPort, 2
	case KeyNetSockPeerPortLegacy:
		return FactPeerPort, 3
	case KeyHTTPResponseStatusCode:
		return FactHTTPStatus, 0
	case KeyHTTPStatusCodeLegacy:
		return FactHTTPStatus, 1
	case KeyRPCGRPCStatusCode:
		return FactGRPCStatus, 0
	case KeyDBSystemName:
		return FactDBSystem, 0
	case KeyDBSystemLegacy:
		return FactDBSystem, 1
	case KeyHTTPRoute:
		return FactHTTPRoute, 0
	case KeyHTTPRequestMethod:
		return FactHTTPMethod, 0
	case KeyHTTPMethodLegacy:
		return FactHTTPMethod, 1
	}
	return FactNone, 0
}

// Take reads one attribute into the facts if its key carries one, keeping the most preferred key's
// value; it reports whether the key was a convention key. Readers call it from their own single
// pass over the attributes. Strings point into the attribute map.
func (f *CallFacts) Take(key string, v pcommon.Value) bool {
	fact, pref := ConventionOf(key)
	if fact == FactNone {
		return false
	}
	rank := uint8(pref + 1)
	if f.rank[fact] != 0 && f.rank[fact] <= rank {
		return true
	}
	switch fact {
	case FactPeerAddress, FactDBSystem, FactHTTPRoute, FactHTTPMethod:
		if v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
			return true
		}
		switch fact {
		case FactPeerAddress:
			f.PeerAddress = v.Str()
		case FactDBSystem:
			f.DBSystem = v.Str()
		case FactHTTPRoute:
			f.HTTPRoute = v.Str()
		case FactHTTPMethod:
			f.HTTPMethod = v.Str()
		}
	default:
		n, ok := IntValue(v)
		if !ok {
			return true
		}
		switch fact {
		case FactPeerPort:
			f.PeerPort = n
		case FactHTTPStatus:
			f.HTTPStatus = n
		case FactGRPCStatus:
			f.GRPCStatus = n
		}
	}
	f.rank[fact] = rank
	return true
}

// ReadCallFacts reads the call facts of an attribute map in one pass.
func ReadCallFacts(attrs pcommon.Map) CallFacts {
	var f CallFacts
	attrs.Range(func(k string, v pcommon.Value) bool {
		f.Take(k, v)
		return true
	})
	return f
}

var conventionKeySpecs = []KeySpec{
	{KeyNetPeerNameLegacy, OnSpan, "pre-1.21 name of server.address on CLIENT spans, still read"},
	{KeyNetPeerPortLegacy, OnSpan, "pre-1.21 name of server.port on CLIENT spans, still read"},
	{KeyNetSockPeerAddrLegacy, OnSpan, "pre-1.21 name of network.peer.address, still read"},
	{KeyNetSockPeerPortLegacy, OnSpan, "pre-1.21 name of network.peer.port, still read"},
	{KeyHTTPMethodLegacy, OnSpan, "pre-1.21 name of http.request.method, still read"},
	{KeyDBConnectionStringLegacy, OnSpan, "pre-1.26 database connection string; its host and port name the called server when no server.* or net.peer.* key does"},
}
