// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/detector"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return rows
}

func TestRunWritesOneScorePerRowInOrder(t *testing.T) {
	out := t.TempDir()
	n, err := run("testdata/data", out, detector.DefaultConfig())
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	for _, rel := range []string{"realSmall/spiky.csv", "artificialSmall/flat_step.csv"} {
		t.Run(rel, func(t *testing.T) {
			data := readCSV(t, filepath.Join("testdata/data", rel))
			result := readCSV(t, filepath.Join(out, rel)) // same relative path
			assert.Equal(t, []string{"timestamp", "anomaly_score"}, result[0])
			require.Len(t, result, len(data), "one result row per data row")
			for i := 1; i < len(data); i++ {
				assert.Equal(t, data[i][0], result[i][0], "row %d keeps the data's timestamp and order", i)
				score, err := strconv.ParseFloat(result[i][1], 64)
				require.NoError(t, err, "row %d", i)
				assert.GreaterOrEqual(t, score, 0.0)
				assert.LessOrEqual(t, score, 1.0)
			}
		})
	}

	// The spike at data row 251 (file line 253, after the duplicate) stands out of its series.
	spiky := readCSV(t, filepath.Join(out, "realSmall/spiky.csv"))
	spike, err := strconv.ParseFloat(spiky[252][1], 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, spike, detector.AnomalyThreshold)
	// So does the step of the flat series at row 151.
	step := readCSV(t, filepath.Join(out, "artificialSmall/flat_step.csv"))
	stepScore, err := strconv.ParseFloat(step[151][1], 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, stepScore, detector.AnomalyThreshold)
}

func TestScoresAreCausal(t *testing.T) {
	data, err := os.ReadFile("testdata/data/realSmall/spiky.csv")
	require.NoError(t, err)
	var full bytes.Buffer
	require.NoError(t, scoreStream(bytes.NewReader(data), &full, detector.DefaultConfig()))

	// Scoring only the first 260 rows gives the same scores for them: no row looks ahead.
	lines := strings.SplitAfter(string(data), "\n")
	var prefix bytes.Buffer
	require.NoError(t, scoreStream(strings.NewReader(strings.Join(lines[:261], "")), &prefix, detector.DefaultConfig()))
	assert.True(t, strings.HasPrefix(full.String(), prefix.String()))
	assert.Equal(t, 261, strings.Count(prefix.String(), "\n"))
}

func TestRunErrors(t *testing.T) {
	_, err := run(t.TempDir(), t.TempDir(), detector.DefaultConfig())
	assert.ErrorContains(t, err, "no .csv files")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("time,v\n1,2\n"), 0o600))
	_, err = run(dir, t.TempDir(), detector.DefaultConfig())
	assert.ErrorContains(t, err, "lacks timestamp and value")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("timestamp,value\n2014-04-01 00:00:00,x\n"), 0o600))
	_, err = run(dir, t.TempDir(), detector.DefaultConfig())
	assert.ErrorContains(t, err, "row 2: value")
}
