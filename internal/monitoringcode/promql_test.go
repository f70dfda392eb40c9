// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// promqlParser is configured as a stock Prometheus server's: no experimental functions.
var promqlParser = parser.NewParser(parser.Options{})

// placeholderPrefix marks values that stand for a Grafana variable: their label value is unknown.
const placeholderPrefix = "grafana_var_"

// labelSet maps label names to their possible values (nil: any value).
type labelSet map[string][]string

// union merges b into a copy of a; a label unknown (nil) on either side stays unknown.
func union(a, b labelSet) labelSet {
	out := maps.Clone(a)
	if out == nil {
		out = labelSet{}
	}
	for l, vb := range b {
		va, ok := out[l]
		switch {
		case !ok:
			out[l] = vb
		case va == nil || vb == nil:
			out[l] = nil
		default:
			out[l] = sortedUnique(append(slices.Clone(va), vb...))
		}
	}
	return out
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// exprChecker checks PromQL against a catalog of known series.
type exprChecker struct {
	catalog catalog
}

// check parses expr and reports every problem found, plus the labels of its result.
func (c *exprChecker) check(expr string) (labelSet, []string) {
	ast, err := promqlParser.ParseExpr(expr)
	if err != nil {
		return nil, []string{"does not parse: " + err.Error()}
	}
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			c.checkSelector(n, report)
		case *parser.AggregateExpr:
			in := c.labelsOf(n.Expr)
			for _, l := range n.Grouping {
				if _, ok := in[l]; !ok {
					report("%s (%s %v): the aggregated series have no label %q", n.Op, byOrWithout(n.Without), n.Grouping, l)
				}
			}
		case *parser.BinaryExpr:
			c.checkMatching(n, report)
		}
		return nil
	})
	return c.labelsOf(ast), problems
}

func byOrWithout(without bool) string {
	if without {
		return "without"
	}
	return "by"
}

// metricsOf lists the catalog names a selector selects, from its name or __name__ matchers.
func (c *exprChecker) metricsOf(vs *parser.VectorSelector) (names []string, problem string) {
	var nameMatchers []*labels.Matcher
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			nameMatchers = append(nameMatchers, m)
		}
	}
	if len(nameMatchers) == 0 {
		return nil, fmt.Sprintf("selector %s names no metric", vs)
	}
	for _, name := range c.catalog.names() {
		all := true
		for _, m := range nameMatchers {
			all = all && m.Matches(name)
		}
		if all {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Sprintf("selector %s: no such series (not a processor metric as the prometheus exporter names it, "+
			"nor a recording rule defined before it in rules.yaml)", vs)
	}
	return names, ""
}

func (c *exprChecker) checkSelector(vs *parser.VectorSelector, report func(string, ...any)) {
	names, problem := c.metricsOf(vs)
	if problem != "" {
		report("%s", problem)
		return
	}
	for _, name := range names {
		s := c.catalog[name]
		if !s.enabled {
			report("selector %s: %s is disabled by default in metadata.yaml", vs, name)
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				continue
			}
			values, ok := s.labels[m.Name]
			if !ok {
				report("selector %s: %s (%s) has no label %q; it has %v", vs, name, s.source, m.Name, slices.Sorted(maps.Keys(s.labels)))
				continue
			}
			if problem := checkMatcherValues(m, values); problem != "" {
				report("selector %s: %s", vs, problem)
			}
		}
	}
}

// literalAlternatives matches a regexp that is a plain alternation of label values.
var literalAlternatives = regexp.MustCompile(`^[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)*$`)

// checkMatcherValues checks a matcher against a label's known values (catching e.g. "rollback"
// written for the status "rolled_back"). The empty value (label absent) is always possible.
func checkMatcherValues(m *labels.Matcher, values []string) string {
	if values == nil || strings.Contains(m.Value, placeholderPrefix) {
		return ""
	}
	known := append([]string{""}, values...)
	switch m.Type {
	case labels.MatchEqual, labels.MatchNotEqual:
		if !slices.Contains(known, m.Value) {
			return fmt.Sprintf("label %s never has the value %q; it has %v", m.Name, m.Value, values)
		}
	case labels.MatchRegexp, labels.MatchNotRegexp:
		if literalAlternatives.MatchString(m.Value) {
			for _, alt := range strings.Split(m.Value, "|") {
				if !slices.Contains(known, alt) {
					return fmt.Sprintf("label %s never has the value %q (in %q); it has %v", m.Name, alt, m.Value, values)
				}
			}
		}
		re, err := labels.NewMatcher(labels.MatchRegexp, m.Name, m.Value)
		if err != nil {
			return err.Error()
		}
		if !slices.ContainsFunc(values, re.Matches) {
			return fmt.Sprintf("%s matches none of the values of %s: %v", m, m.Name, values)
		}
	}
	return ""
}

func (c *exprChecker) checkMatching(b *parser.BinaryExpr, report func(string, ...any)) {
	vm := b.VectorMatching
	if vm == nil || b.LHS.Type() != parser.ValueTypeVector || b.RHS.Type() != parser.ValueTypeVector {
		return
	}
	lhs, rhs := c.labelsOf(b.LHS), c.labelsOf(b.RHS)
	for _, l := range vm.MatchingLabels {
		_, inL := lhs[l]
		_, inR := rhs[l]
		bothSides, eitherSide := inL && inR, inL || inR
		if vm.On && !bothSides || !vm.On && !eitherSide {
			report("%s %s(%v): label %q is not on both sides", b.Op, onOrIgnoring(vm.On), vm.MatchingLabels, l)
		}
	}
	one := rhs
	if vm.Card == parser.CardOneToMany {
		one = lhs
	}
	for _, l := range vm.Include {
		if _, ok := one[l]; !ok {
			report("%s group_x(%v): label %q is not on the one side", b.Op, vm.Include, l)
		}
	}
}

func onOrIgnoring(on bool) string {
	if on {
		return "on"
	}
	return "ignoring"
}

// labelsOf works out the labels of an expression's result the way the PromQL engine builds them.
func (c *exprChecker) labelsOf(e parser.Expr) labelSet {
	switch n := e.(type) {
	case *parser.VectorSelector:
		names, _ := c.metricsOf(n)
		out := labelSet{}
		for _, name := range names {
			out = union(out, c.catalog[name].labels)
		}
		// An equality matcher pins a label to one value.
		for _, m := range n.LabelMatchers {
			if m.Type == labels.MatchEqual && m.Name != model.MetricNameLabel && m.Value != "" &&
				!strings.Contains(m.Value, placeholderPrefix) {
				if _, ok := out[m.Name]; ok {
					out[m.Name] = []string{m.Value}
				}
			}
		}
		return out
	case *parser.MatrixSelector:
		return c.labelsOf(n.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labelsOf(n.Expr)
	case *parser.ParenExpr:
		return c.labelsOf(n.Expr)
	case *parser.UnaryExpr:
		return c.labelsOf(n.Expr)
	case *parser.StepInvariantExpr:
		return c.labelsOf(n.Expr)
	case *parser.Call:
		return c.callLabels(n)
	case *parser.AggregateExpr:
		in := c.labelsOf(n.Expr)
		switch {
		case n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO:
			return in
		case n.Without:
			out := maps.Clone(in)
			for _, l := range n.Grouping {
				delete(out, l)
			}
			return out
		}
		out := labelSet{}
		for _, l := range n.Grouping {
			if v, ok := in[l]; ok {
				out[l] = v
			}
		}
		if n.Op == parser.COUNT_VALUES {
			if s, ok := n.Param.(*parser.StringLiteral); ok {
				out[s.Val] = nil
			}
		}
		return out
	case *parser.BinaryExpr:
		return c.binaryLabels(n)
	}
	return labelSet{}
}

func (c *exprChecker) callLabels(n *parser.Call) labelSet {
	switch n.Func.Name {
	case "label_replace", "label_join":
		out := maps.Clone(c.labelsOf(n.Args[0]))
		if s, ok := n.Args[1].(*parser.StringLiteral); ok {
			out[s.Val] = nil
		}
		return out
	}
	out := labelSet{}
	for _, a := range n.Args {
		if a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix {
			out = union(out, c.labelsOf(a))
		}
	}
	return out
}

func (c *exprChecker) binaryLabels(n *parser.BinaryExpr) labelSet {
	lhsVec := n.LHS.Type() == parser.ValueTypeVector
	rhsVec := n.RHS.Type() == parser.ValueTypeVector
	switch {
	case lhsVec && !rhsVec:
		return c.labelsOf(n.LHS)
	case rhsVec && !lhsVec:
		return c.labelsOf(n.RHS)
	case !lhsVec:
		return labelSet{}
	}
	lhs, rhs := c.labelsOf(n.LHS), c.labelsOf(n.RHS)
	vm := n.VectorMatching
	switch n.Op {
	case parser.LAND, parser.LUNLESS:
		return lhs
	case parser.LOR:
		return union(lhs, rhs)
	}
	if vm == nil {
		return lhs
	}
	many, one := lhs, rhs
	if vm.Card == parser.CardOneToMany {
		many, one = rhs, lhs
	}
	out := maps.Clone(many)
	if vm.Card == parser.CardOneToOne {
		if vm.On {
			out = labelSet{}
			for _, l := range vm.MatchingLabels {
				if v, ok := many[l]; ok {
					out[l] = v
				}
			}
		} else {
			for _, l := range vm.MatchingLabels {
				delete(out, l)
			}
		}
	}
	for _, l := range vm.Include {
		if v, ok := one[l]; ok {
			out[l] = v
		}
	}
	return out
}

// metricNames lists the known series an expression selects.
func metricNames(t testing.TB, c *exprChecker, expr string) []string {
	t.Helper()
	ast, err := promqlParser.ParseExpr(expr)
	require.NoError(t, err, expr)
	var out []string
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names, _ := c.metricsOf(vs)
			out = append(out, names...)
		}
		return nil
	})
	return out
}
