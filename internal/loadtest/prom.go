// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Series is one sample of a Prometheus text exposition.
type Series struct {
	Name   string
	Labels map[string]string
	Type   string // from the family's # TYPE line; "" without one
	Value  float64
}

// ID is the series as PromQL would write it, labels sorted: name{a="1",b="2"}.
func (s *Series) ID() string { return SeriesID(s.Name, s.Labels) }

// SeriesID writes name and labels as name{a="1",b="2"}, labels sorted.
func SeriesID(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// ParseText parses the Prometheus text exposition format (what a collector's
// `service::telemetry::metrics` pull reader serves). Timestamps are ignored.
func ParseText(r io.Reader) ([]Series, error) {
	types := map[string]string{}
	var out []Series
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(text, "#"); ok {
			if f := strings.Fields(rest); len(f) == 3 && f[0] == "TYPE" {
				types[f[1]] = f[2]
			}
			continue
		}
		s, err := parseSample(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		s.Type = types[s.Name]
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(text string) (Series, error) {
	s := Series{Labels: map[string]string{}}
	i := strings.IndexAny(text, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no value in %q", text)
	}
	s.Name, text = text[:i], text[i:]
	if text[0] == '{' {
		rest, err := parseLabels(text[1:], s.Labels)
		if err != nil {
			return s, fmt.Errorf("%s: %w", s.Name, err)
		}
		text = rest
	}
	fields := strings.Fields(text)
	if len(fields) == 0 || len(fields) > 2 {
		return s, fmt.Errorf("%s: want a value and an optional timestamp, got %q", s.Name, text)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("%s: %w", s.Name, err)
	}
	s.Value = v
	return s, nil
}

// parseLabels reads `a="1",b="2"}` into labels and returns what follows '}'.
func parseLabels(text string, labels map[string]string) (string, error) {
	for {
		text = strings.TrimLeft(text, " ,")
		if text == "" {
			return "", errors.New("labels not closed")
		}
		if text[0] == '}' {
			return text[1:], nil
		}
		eq := strings.IndexByte(text, '=')
		if eq <= 0 || len(text) < eq+2 || text[eq+1] != '"' {
			return "", fmt.Errorf("bad label at %q", text)
		}
		name := strings.TrimSpace(text[:eq])
		var value strings.Builder
		j := eq + 2
		for ; j < len(text) && text[j] != '"'; j++ {
			if text[j] == '\\' && j+1 < len(text) {
				j++
				switch text[j] {
				case 'n':
					value.WriteByte('\n')
				default: // \\ and \"
					value.WriteByte(text[j])
				}
				continue
			}
			value.WriteByte(text[j])
		}
		if j == len(text) {
			return "", fmt.Errorf("label %s: value not closed", name)
		}
		labels[name] = value.String()
		text = text[j+1:]
	}
}

// Scrape fetches and parses a Prometheus text endpoint.
func Scrape(ctx context.Context, url string) ([]Series, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseText(resp.Body)
}

// Sum adds the values of every series named name whose labels include match.
func Sum(series []Series, name string, match map[string]string) float64 {
	total := 0.0
	for i := range series {
		if series[i].Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if series[i].Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += series[i].Value
		}
	}
	return total
}

// Counter adds the values of the counter name (with or without the _total
// suffix: the collector's telemetry exporter writes it without) whose
// labels include match.
func Counter(series []Series, name string, match map[string]string) float64 {
	return Sum(series, name, match) + Sum(series, name+"_total", match)
}
