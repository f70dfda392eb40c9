// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package alerts // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Rule is a user alert rule: an indicator compared with a threshold, held for
// a while, in some phases. Written in the config either field by field or as
// one expression: `error_ratio > 0.05 for 2m in phase during,post`.
type Rule struct {
	Name           string        `mapstructure:"name"`
	Expr           string        `mapstructure:"expr"`
	Indicator      string        `mapstructure:"indicator"`
	Op             string        `mapstructure:"op"`
	Threshold      float64       `mapstructure:"threshold"`
	For            time.Duration `mapstructure:"for"`
	Phases         []string      `mapstructure:"phases"`
	Severity       string        `mapstructure:"severity"`
	Recommendation string        `mapstructure:"recommendation"`
}

var ops = map[string]func(a, b float64) bool{
	">":  func(a, b float64) bool { return a > b },
	">=": func(a, b float64) bool { return a >= b },
	"<":  func(a, b float64) bool { return a < b },
	"<=": func(a, b float64) bool { return a <= b },
}

// Compile fills the fields from Expr (when set), applies defaults and checks
// the rule; errors name the rule.
func (r *Rule) Compile() error {
	if r.Name == "" {
		return errors.New("rule without a name")
	}
	if r.Expr != "" {
		if err := r.parseExpr(); err != nil {
			return fmt.Errorf("rule %q: expr %q: %w", r.Name, r.Expr, err)
		}
	}
	if r.Indicator == "" {
		return fmt.Errorf("rule %q: indicator is required", r.Name)
	}
	if _, ok := ops[r.Op]; !ok {
		return fmt.Errorf("rule %q: op %q is not one of >, >=, <, <=", r.Name, r.Op)
	}
	if r.For < 0 {
		return fmt.Errorf("rule %q: for must not be negative", r.Name)
	}
	for _, p := range r.Phases {
		switch deployevent.Phase(p) {
		case deployevent.PhaseSteady, deployevent.PhasePre, deployevent.PhaseDuring, deployevent.PhasePost:
		default:
			return fmt.Errorf("rule %q: phase %q is not one of steady, pre, during, post", r.Name, p)
		}
	}
	if r.Severity == "" {
		r.Severity = deployevent.SeverityWarning
	}
	switch r.Severity {
	case deployevent.SeverityInfo, deployevent.SeverityWarning, deployevent.SeverityCritical:
	default:
		return fmt.Errorf("rule %q: severity %q is not one of info, warning, critical", r.Name, r.Severity)
	}
	if r.Recommendation == "" {
		r.Recommendation = string(deployevent.RecommendInvestigate)
	}
	switch deployevent.Recommendation(r.Recommendation) {
	case deployevent.RecommendNone, deployevent.RecommendInvestigate, deployevent.RecommendHold, deployevent.RecommendRollback:
	default:
		return fmt.Errorf("rule %q: recommendation %q is not one of none, investigate, hold, rollback", r.Name, r.Recommendation)
	}
	return nil
}

// parseExpr reads `<indicator> <op> <threshold> [for <duration>] [in phase <p>[,<p>…]]`.
func (r *Rule) parseExpr() error {
	f := strings.Fields(r.Expr)
	if len(f) < 3 {
		return errors.New("want `<indicator> <op> <threshold> [for <duration>] [in phase <phase>[,<phase>]]`")
	}
	r.Indicator, r.Op = f[0], f[1]
	v, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "%"), 64)
	if err != nil {
		return fmt.Errorf("threshold %q is not a number", f[2])
	}
	if strings.HasSuffix(f[2], "%") {
		v /= 100
	}
	r.Threshold = v
	rest := f[3:]
	for len(rest) > 0 {
		switch {
		case rest[0] == "for" && len(rest) >= 2:
			if r.For, err = time.ParseDuration(rest[1]); err != nil {
				return fmt.Errorf("for %q: %w", rest[1], err)
			}
			rest = rest[2:]
		case rest[0] == "in" && len(rest) >= 3 && (rest[1] == "phase" || rest[1] == "phases"):
			r.Phases = strings.Split(rest[2], ",")
			rest = rest[3:]
		default:
			return fmt.Errorf("unexpected %q", strings.Join(rest, " "))
		}
	}
	return nil
}

// appliesIn reports whether the rule watches phase.
func (r *Rule) appliesIn(phase string) bool {
	if len(r.Phases) == 0 {
		return true
	}
	for _, p := range r.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// Rules evaluates compiled user rules, remembering since when each one's
// condition has held per service. Safe for concurrent use.
type Rules struct {
	rules []Rule
	mu    sync.Mutex
	// since is when each rule's condition began to hold, per service: bounded
	// by tracked services × rules, and dropped with the service (Forget).
	since map[pendingKey]time.Time
}

type pendingKey struct {
	key  Key
	rule int
}

// NewRules compiles the rules; the error names the first bad rule.
func NewRules(rules []Rule) (*Rules, error) {
	seen := map[string]bool{}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		if err := r.Compile(); err != nil {
			return nil, err
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("rule %q: defined twice", r.Name)
		}
		seen[r.Name] = true
		out[i] = r
	}
	return &Rules{rules: out, since: map[pendingKey]time.Time{}}, nil
}

// Conditions returns one condition per rule for a service whose indicators
// have the given values (an indicator without a value leaves its rule
// inactive).
func (rs *Rules) Conditions(ctx Context, values map[string]Evidence, now time.Time) []Condition {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]Condition, 0, len(rs.rules))
	for i := range rs.rules {
		r := &rs.rules[i]
		pk := pendingKey{key: ctx.Key, rule: i}
		ev, ok := values[r.Indicator]
		holds := ok && r.appliesIn(ctx.Phase) && isNum(ev.Observed) && ops[r.Op](ev.Observed, r.Threshold)
		active := false
		if holds {
			start, pending := rs.since[pk]
			if !pending {
				start = now
				rs.since[pk] = now
			}
			active = now.Sub(start) >= r.For
		} else {
			delete(rs.since, pk)
		}
		var evidence *Evidence
		if ok {
			e := ev
			evidence = &e
		}
		out = append(out, Condition{Name: r.Name, Severity: r.Severity, Indicator: r.Indicator,
			Recommendation: deployevent.Recommendation(r.Recommendation), Active: active, Evidence: evidence,
			Detail: fmt.Sprintf("rule %s %s %g", r.Indicator, r.Op, r.Threshold)})
	}
	return out
}

// Forget drops the pending state of a service's rules (it left tracking).
func (rs *Rules) Forget(key Key) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i := range rs.rules {
		delete(rs.since, pendingKey{key: key, rule: i})
	}
}

// EachService calls fn with the services with a rule pending.
func (rs *Rules) EachService(fn func(Key)) {
	// A service with several rules pending is called once per rule.
	eachKey(&rs.mu, rs.since, func(pk pendingKey) Key { return pk.key }, fn)
}

// Pending is the number of (service, rule) conditions holding but not yet
// for long enough, or firing.
func (rs *Rules) Pending() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.since)
}
