// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package indicators // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Attributes that name what an outgoing call calls (semantic conventions;
// the older names where they were renamed).
const (
	attrPeerService          = "peer.service"
	attrServerAddress        = "server.address"
	attrNetPeerName          = "net.peer.name"
	attrDBSystemName         = "db.system.name"
	attrDBSystem             = "db.system"
	attrDBNamespace          = "db.namespace"
	attrDBName               = "db.name"
	attrMessagingSystem      = "messaging.system"
	attrMessagingDestination = "messaging.destination.name"
)

// MaxDependencyName bounds a dependency's name (longer names are cut): names
// come from incoming data.
const MaxDependencyName = 128

// DependencyName is what an outgoing call calls, in two parts so that
// reading it allocates nothing: Name alone (a peer service or a server
// address), or System and Name ("postgresql" and "orders", "kafka" and
// "payments") for a database or a messaging destination.
type DependencyName struct {
	System, Name string
}

// Empty tells whether the call named nothing it calls.
func (d DependencyName) Empty() bool { return d.System == "" && d.Name == "" }

// String is the dependency's name as it appears in
// deployment.dependency.name: "payment", "postgresql/orders", "kafka".
func (d DependencyName) String() string {
	var s string
	switch {
	case d.System == "":
		s = d.Name
	case d.Name == "":
		s = d.System
	default:
		s = d.System + "/" + d.Name
	}
	if len(s) > MaxDependencyName {
		s = s[:MaxDependencyName]
	}
	return s
}

// Outgoing tells whether a span is an outgoing call (CLIENT or PRODUCER).
func Outgoing(k ptrace.SpanKind) bool {
	return k == ptrace.SpanKindClient || k == ptrace.SpanKindProducer
}

// DependencyOf names what a call calls, from its attributes: peer.service;
// else a database (db.system.name and db.namespace) or a messaging system
// and destination; else server.address (net.peer.name before it). Empty
// when the call names nothing.
func DependencyOf(attrs pcommon.Map) DependencyName {
	dep, _, _ := readCall(attrs, false)
	return dep
}

// ReadCall reads, in one pass over a call's attributes, what it calls and
// whether it failed (as spanFailed says of a request).
func ReadCall(span ptrace.Span) (DependencyName, bool) {
	switch span.Status().Code() {
	case ptrace.StatusCodeError:
		dep, _, _ := readCall(span.Attributes(), false)
		return dep, true
	case ptrace.StatusCodeOk:
		dep, _, _ := readCall(span.Attributes(), false)
		return dep, false
	}
	dep, failed, _ := readCall(span.Attributes(), true)
	return dep, failed
}

// readCall reads a call's dependency and, with status, whether its status
// attributes say it failed (and whether it has any).
func readCall(attrs pcommon.Map, status bool) (dep DependencyName, failed, hasStatus bool) {
	var peer, address, dbSystem, dbNamespace, msgSystem, destination string
	for k, v := range attrs.All() {
		switch k {
		case attrHTTPStatus, attrHTTPStatusLegacy:
			if status && !hasStatus {
				failed, hasStatus = intValue(v) >= 500, true
			}
		case attrGRPCStatus, attrRPCStatus:
			if status && !hasStatus {
				failed, hasStatus = grpcServerError(v), true
			}
		case attrPeerService:
			peer = strValue(v)
		case attrServerAddress:
			address = strValue(v)
		case attrNetPeerName:
			if address == "" {
				address = strValue(v)
			}
		case attrDBSystemName:
			dbSystem = strValue(v)
		case attrDBSystem:
			if dbSystem == "" {
				dbSystem = strValue(v)
			}
		case attrDBNamespace:
			dbNamespace = strValue(v)
		case attrDBName:
			if dbNamespace == "" {
				dbNamespace = strValue(v)
			}
		case attrMessagingSystem:
			msgSystem = strValue(v)
		case attrMessagingDestination:
			destination = strValue(v)
		}
	}
	switch {
	case peer != "":
		dep = DependencyName{Name: peer}
	case dbSystem != "":
		dep = DependencyName{System: dbSystem, Name: dbNamespace}
	case msgSystem != "":
		dep = DependencyName{System: msgSystem, Name: destination}
	default:
		dep = DependencyName{Name: address}
	}
	return dep, failed, hasStatus
}

// strValue reads a string attribute; other types name nothing.
func strValue(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}
