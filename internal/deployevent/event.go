// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deployevent // import "github.com/deploylens/deploylens/internal/deployevent"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Event is one deployment lifecycle event, whatever tool reported it.
type Event struct {
	// Resource: the deployed thing.
	Service     string
	Namespace   string
	Environment string
	Version     string

	ID              string
	Name            string
	State           State
	SourceState     string
	PreviousVersion string
	Strategy        Strategy
	Source          string
	Revision        string
	RepositoryURL   string
	RefName         string
	PipelineRunID   string
	PipelineRunURL  string
	CommitTime      time.Time
	Actor           string
	// Timestamp is when the tool says the event happened.
	Timestamp time.Time
	// Attributes are extra record attributes (generic events' "attributes",
	// labels a tool passes through). Contract attributes win over these.
	Attributes map[string]any
}

// DeriveID returns a stable deployment id for tools that do not give one:
// the source and a short hash of the parts that identify one deployment.
func DeriveID(source string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return source + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Summary is the one-sentence body of the event's log record.
func (e *Event) Summary() string {
	var b strings.Builder
	b.WriteString(e.Service)
	if e.Version != "" {
		b.WriteString(" ")
		b.WriteString(e.Version)
	}
	b.WriteString(" deployment ")
	b.WriteString(string(e.State))
	if e.Environment != "" {
		b.WriteString(" in ")
		b.WriteString(e.Environment)
	}
	if e.Source != "" {
		b.WriteString(" (")
		b.WriteString(e.Source)
		b.WriteString(")")
	}
	return b.String()
}

// Severity is the log severity of the event: WARN for a deployment that ended
// badly, INFO otherwise.
func (e *Event) Severity() (plog.SeverityNumber, string) {
	switch e.State {
	case StateFailed, StateRolledBack:
		return plog.SeverityNumberWarn, "WARN"
	}
	return plog.SeverityNumberInfo, "INFO"
}

// AppendTo writes the event as a deployment.lifecycle log record into logs, in a
// resource of its own. observed is the time it was received.
func (e *Event) AppendTo(logs plog.Logs, observed time.Time) {
	rl := logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(AttrServiceName, e.Service)
	putIf(res, AttrServiceNamespace, e.Namespace)
	putIf(res, AttrEnvironment, e.Environment)
	putIf(res, AttrServiceVersion, e.Version)

	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(EventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Timestamp))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	sevNum, sevText := e.Severity()
	lr.SetSeverityNumber(sevNum)
	lr.SetSeverityText(sevText)
	lr.Body().SetStr(e.Summary())

	attrs := lr.Attributes()
	// Extra attributes first, sorted so output is deterministic; contract
	// attributes are written after and overwrite any clash.
	if len(e.Attributes) > 0 {
		keys := make([]string, 0, len(e.Attributes))
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_ = attrs.PutEmpty(k).FromRaw(normalizeRaw(e.Attributes[k]))
		}
	}
	attrs.PutStr(AttrDeploymentID, e.ID)
	putIf(attrs, AttrDeploymentName, e.Name)
	attrs.PutStr(AttrDeploymentState, string(e.State))
	putIf(attrs, AttrDeploymentStatus, e.State.Status())
	putIf(attrs, AttrSourceState, e.SourceState)
	putIf(attrs, AttrPreviousVersion, e.PreviousVersion)
	strategy := e.Strategy
	if strategy == "" {
		strategy = StrategyUnknown
	}
	attrs.PutStr(AttrStrategy, string(strategy))
	putIf(attrs, AttrSource, e.Source)
	putIf(attrs, AttrRevision, e.Revision)
	putIf(attrs, AttrRepositoryURL, e.RepositoryURL)
	putIf(attrs, AttrRefName, e.RefName)
	putIf(attrs, AttrPipelineRunID, e.PipelineRunID)
	putIf(attrs, AttrPipelineRunURL, e.PipelineRunURL)
	if !e.CommitTime.IsZero() {
		attrs.PutStr(AttrCommitTime, e.CommitTime.UTC().Format(time.RFC3339Nano))
	}
	putIf(attrs, AttrActor, e.Actor)
}

// ScopeName is the instrumentation scope of lifecycle records written by deploylens.
const ScopeName = "github.com/deploylens/deploylens/receiver/deploymentreceiver"

// IsLifecycle reports whether lr is a deployment.lifecycle record.
func IsLifecycle(lr plog.LogRecord) bool {
	return lr.EventName() == EventName
}

// FromLogRecord reads a deployment.lifecycle record back into an Event. It
// returns an error naming the first missing or invalid contract attribute.
func FromLogRecord(resource pcommon.Resource, lr plog.LogRecord) (Event, error) {
	var e Event
	res := resource.Attributes()
	attrs := lr.Attributes()
	e.Service = getStr(res, AttrServiceName)
	if e.Service == "" {
		e.Service = getStr(attrs, AttrServiceName)
	}
	if e.Service == "" {
		return e, fmt.Errorf("missing %s", AttrServiceName)
	}
	e.Namespace = firstStr(res, attrs, AttrServiceNamespace)
	e.Environment = firstStr(res, attrs, AttrEnvironment)
	e.Version = firstStr(res, attrs, AttrServiceVersion)

	e.State = State(getStr(attrs, AttrDeploymentState))
	if !e.State.Valid() {
		return e, fmt.Errorf("invalid %s %q", AttrDeploymentState, e.State)
	}
	e.ID = getStr(attrs, AttrDeploymentID)
	e.Name = getStr(attrs, AttrDeploymentName)
	e.SourceState = getStr(attrs, AttrSourceState)
	e.PreviousVersion = getStr(attrs, AttrPreviousVersion)
	e.Strategy = Strategy(getStr(attrs, AttrStrategy))
	if !e.Strategy.Valid() {
		e.Strategy = StrategyUnknown
	}
	e.Source = getStr(attrs, AttrSource)
	e.Revision = getStr(attrs, AttrRevision)
	e.RepositoryURL = getStr(attrs, AttrRepositoryURL)
	e.RefName = getStr(attrs, AttrRefName)
	e.PipelineRunID = getStr(attrs, AttrPipelineRunID)
	e.PipelineRunURL = getStr(attrs, AttrPipelineRunURL)
	e.Actor = getStr(attrs, AttrActor)
	if ct := getStr(attrs, AttrCommitTime); ct != "" {
		if t, err := time.Parse(time.RFC3339Nano, ct); err == nil {
			e.CommitTime = t
		}
	}
	switch {
	case lr.Timestamp() != 0:
		e.Timestamp = lr.Timestamp().AsTime()
	case lr.ObservedTimestamp() != 0:
		e.Timestamp = lr.ObservedTimestamp().AsTime()
	}
	if e.ID == "" {
		e.ID = DeriveID(e.Source, e.Namespace, e.Service, e.Environment, e.Version, e.Revision)
	}
	return e, nil
}

func putIf(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func getStr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func firstStr(a, b pcommon.Map, k string) string {
	if v := getStr(a, k); v != "" {
		return v
	}
	return getStr(b, k)
}

// normalizeRaw turns values decoded from JSON into ones pcommon.Value.FromRaw
// accepts (json numbers arrive as float64; whole numbers become int64).
func normalizeRaw(v any) any {
	switch t := v.(type) {
	case float64:
		if t == float64(int64(t)) && t < 1<<53 && t > -(1<<53) {
			return int64(t)
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = normalizeRaw(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalizeRaw(x)
		}
		return out
	case nil, string, bool, int, int64, int32, float32, uint, uint32, uint64:
		return t
	default:
		return fmt.Sprint(t)
	}
}
