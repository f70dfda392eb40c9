// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/deploylens/deploylens/internal/detector"
)

// knob is one tuned constant of the detector and the values leave-one-category-out tries.
type knob struct {
	name   string
	values []float64
	// apply sets the value on a configuration; nil for the threshold, which applies at scoring.
	apply func(*detector.Config, float64)
}

// thresholdKnob is the name of the knob that is the alert threshold, not a detector setting.
const thresholdKnob = "threshold"

// locoKnobs are the constants left to choose, each over a broad grid around its shipped value.
func locoKnobs() []knob {
	return []knob{
		{name: "window", values: []float64{250, 500, 1000, 2000}, apply: func(c *detector.Config, v float64) { c.Window = int(v) }},
		{name: "short_window", values: []float64{4, 8, 16}, apply: func(c *detector.Config, v float64) { c.ShortWindow = int(v) }},
		{name: "refractory", values: []float64{10, 25, 100, 400}, apply: func(c *detector.Config, v float64) { c.Refractory = int(v) }},
		{name: thresholdKnob, values: []float64{0.35, 0.375, 0.4, 0.425, 0.45, 0.5}},
	}
}

// gridPoint is one combination of knob values, in knob order.
type gridPoint []float64

// grid returns every combination of the knobs' values.
func grid(knobs []knob) []gridPoint {
	points := []gridPoint{{}}
	for _, k := range knobs {
		var next []gridPoint
		for _, p := range points {
			for _, v := range k.values {
				next = append(next, append(append(gridPoint{}, p...), v))
			}
		}
		points = next
	}
	return points
}

// categoryScore is one category's raw NAB score with the null and perfect raw scores that normalise it.
type categoryScore struct {
	Category string  `json:"category"`
	Raw      float64 `json:"raw_score"`
	Null     float64 `json:"null_raw_score"`
	Perfect  float64 `json:"perfect_raw_score"`
	Windows  int     `json:"windows"`
	FPRows   int     `json:"fp_rows"`
}

// normalised is NAB's 100·(raw−null)/(perfect−null) over a set of categories; NaN without windows.
func normalised(cats ...categoryScore) float64 {
	var raw, null, perfect float64
	for _, c := range cats {
		raw, null, perfect = raw+c.Raw, null+c.Null, perfect+c.Perfect
	}
	if perfect == null {
		return math.NaN()
	}
	return 100 * (raw - null) / (perfect - null)
}

// fold is the outcome of holding one category out.
type fold struct {
	held     string
	chosen   int     // index of the grid point that scored best on the other categories
	training float64 // its standard score on the other categories
	heldOut  categoryScore
}

// leaveOneOut picks, for each held-out category, the grid point best on the others
// (the earlier point on a tie) and keeps the held-out category's score at that point.
// scores[p] holds the categories of grid point p, in the same order for every point.
// Points are ranked by raw score: null and perfect depend on the labels alone, so this is
// the normalised ranking, and it still ranks categories without windows (by their FPs).
func leaveOneOut(scores [][]categoryScore) []fold {
	if len(scores) == 0 {
		return nil
	}
	folds := make([]fold, len(scores[0]))
	for h := range folds {
		folds[h] = fold{held: scores[0][h].Category, chosen: -1}
		bestRaw := math.Inf(-1)
		for p, cats := range scores {
			rest := make([]categoryScore, 0, len(cats)-1)
			rest = append(append(rest, cats[:h]...), cats[h+1:]...)
			if raw := rawSum(rest); raw > bestRaw {
				bestRaw = raw
				folds[h].chosen, folds[h].training, folds[h].heldOut = p, normalised(rest...), cats[h]
			}
		}
	}
	return folds
}

func rawSum(cats []categoryScore) float64 {
	sum := 0.0
	for _, c := range cats {
		sum += c.Raw
	}
	return sum
}

// bestInSample is the grid point with the best standard score over every category.
func bestInSample(scores [][]categoryScore) (int, float64) {
	best, bestRaw := -1, math.Inf(-1)
	for p, cats := range scores {
		if raw := rawSum(cats); raw > bestRaw {
			best, bestRaw = p, raw
		}
	}
	if best < 0 {
		return best, math.NaN()
	}
	return best, normalised(scores[best]...)
}

// scorer runs the shared NAB scorer (a main.go standing next to its data/ and labels/).
type scorer struct {
	bin, root string
}

// buildScorer compiles the scorer at mainGo into dir once, so that the grid's many scorings are quick.
func buildScorer(mainGo, dir string) (scorer, error) {
	mainGo, err := filepath.Abs(mainGo)
	if err != nil {
		return scorer{}, err
	}
	bin, err := filepath.Abs(filepath.Join(dir, "nabscore"))
	if err != nil {
		return scorer{}, err
	}
	cmd := exec.CommandContext(context.Background(), "go", "build", "-o", bin, filepath.Base(mainGo))
	cmd.Dir = filepath.Dir(mainGo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return scorer{}, fmt.Errorf("building the scorer: %w: %s", err, out)
	}
	return scorer{bin: bin, root: filepath.Dir(mainGo)}, nil
}

// standard scores each results folder on the standard profile at threshold, per category (sorted by name).
func (s scorer) standard(threshold float64, dirs []string) ([][]categoryScore, error) {
	args := append([]string{"-root", s.root, "-profile", "standard", "-json", "-no-timestamp-check",
		"-threshold", strconv.FormatFloat(threshold, 'f', -1, 64)}, dirs...)
	cmd := exec.CommandContext(context.Background(), s.bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scorer: %w: %s", err, stderr.String())
	}
	var report []struct {
		Profiles []struct {
			Categories []categoryScore `json:"categories"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		return nil, fmt.Errorf("scorer output: %w", err)
	}
	if len(report) != len(dirs) {
		return nil, fmt.Errorf("scorer scored %d folders of %d", len(report), len(dirs))
	}
	scores := make([][]categoryScore, len(dirs))
	for i, r := range report {
		if len(r.Profiles) != 1 {
			return nil, fmt.Errorf("scorer gave %d profiles, want standard only", len(r.Profiles))
		}
		cats := r.Profiles[0].Categories
		sort.Slice(cats, func(a, b int) bool { return cats[a].Category < cats[b].Category })
		scores[i] = cats
	}
	return scores, nil
}

// runLOCO runs every detector setting of the grid over dataDir (results under outDir/grid),
// scores each at every threshold of the grid, and writes the leave-one-category-out table to w.
func runLOCO(dataDir, outDir, scorerMain string, w io.Writer) error {
	knobs := locoKnobs()
	thresholdAt := -1
	var detKnobs, thrKnobs []knob
	for i, k := range knobs {
		if k.name == thresholdKnob {
			thresholdAt = i
			thrKnobs = append(thrKnobs, k)
		} else {
			detKnobs = append(detKnobs, k)
		}
	}
	if thresholdAt != len(knobs)-1 {
		return errors.New("the threshold must be the last knob")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	sc, err := buildScorer(scorerMain, outDir)
	if err != nil {
		return err
	}
	settings := grid(detKnobs)
	gridDir := filepath.Join(outDir, "grid")
	defer func() { _ = os.RemoveAll(gridDir) }() // scored results are large and only the table is kept
	dirs := make([]string, len(settings))
	for i, setting := range settings {
		cfg := detector.DefaultConfig()
		for k, v := range setting {
			detKnobs[k].apply(&cfg, v)
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("grid point %v: %w", setting, err)
		}
		dirs[i] = filepath.Join(gridDir, fmt.Sprintf("p%03d", i))
		if err := os.RemoveAll(dirs[i]); err != nil {
			return err
		}
		if _, err := run(dataDir, dirs[i], cfg); err != nil {
			return err
		}
	}
	// Points are settings × thresholds, in grid order (the threshold varies fastest).
	thresholds := thrKnobs[0].values
	scores := make([][]categoryScore, len(settings)*len(thresholds))
	for t, thr := range thresholds {
		byDir, err := sc.standard(thr, dirs)
		if err != nil {
			return err
		}
		for i := range settings {
			scores[i*len(thresholds)+t] = byDir[i]
		}
	}
	points := grid(knobs)
	writeLOCO(w, knobs, points, scores)
	return nil
}

// writeLOCO prints the folds and the in-sample optimum as Markdown tables.
func writeLOCO(w io.Writer, knobs []knob, points []gridPoint, scores [][]categoryScore) {
	names := make([]string, len(knobs))
	for i, k := range knobs {
		names[i] = k.name
	}
	describe := func(p gridPoint) string {
		parts := make([]string, len(p))
		for i, v := range p {
			parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
		}
		return strings.Join(parts, " | ")
	}
	_, _ = fmt.Fprintf(w, "grid: %d points (%s)\n\n", len(points), strings.Join(names, " × "))
	_, _ = fmt.Fprintf(w, "| held out | %s | standard on the other three | held-out standard | held-out raw | held-out FP rows |\n", strings.Join(names, " | "))
	_, _ = fmt.Fprintf(w, "|---|%s---:|---:|---:|---:|\n", strings.Repeat("---:|", len(names)))
	folds := leaveOneOut(scores)
	for _, f := range folds {
		_, _ = fmt.Fprintf(w, "| %s | %s | %s | %s | %.3f | %d |\n", f.held, describe(points[f.chosen]), formatScore(f.training),
			formatScore(normalised(f.heldOut)), f.heldOut.Raw, f.heldOut.FPRows)
	}
	_, _ = fmt.Fprintf(w, "\nout-of-fold standard (the four held-out categories pooled): %.2f\n", pooledHeldOut(folds))
	best, bestScore := bestInSample(scores)
	_, _ = fmt.Fprintf(w, "in-sample best (all four): %s: standard %s\n", describe(points[best]), formatScore(bestScore))

	// How much each constant matters: pinned at each value, the others still chosen per fold.
	_, _ = fmt.Fprintf(w, "\n| constant | value | out-of-fold standard, the others chosen per fold | in-sample best |\n|---|---:|---:|---:|\n")
	for k, kn := range knobs {
		for _, v := range kn.values {
			var pinned [][]categoryScore
			for p, point := range points {
				if point[k] == v {
					pinned = append(pinned, scores[p])
				}
			}
			_, inSample := bestInSample(pinned)
			_, _ = fmt.Fprintf(w, "| %s | %g | %.2f | %s |\n", kn.name, v, pooledHeldOut(leaveOneOut(pinned)), formatScore(inSample))
		}
	}
}

// pooledHeldOut is the standard score of the held-out categories together, each at its fold's choice.
func pooledHeldOut(folds []fold) float64 {
	heldOut := make([]categoryScore, len(folds))
	for i, f := range folds {
		heldOut[i] = f.heldOut
	}
	return normalised(heldOut...)
}

func formatScore(s float64) string {
	if math.IsNaN(s) {
		return "n/a (no windows)"
	}
	return strconv.FormatFloat(s, 'f', 2, 64)
}
