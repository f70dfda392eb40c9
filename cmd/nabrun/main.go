// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command nabrun runs deploylens's gauge detector, with its default settings, over a
// Numenta Anomaly Benchmark data folder and writes one result CSV per series
// (timestamp,anomaly_score) under the same relative path, for NAB's scorer, and
// OUT/threshold.json, {"threshold": X}: the score from which the processor counts a
// sample as anomalous (detector.AnomalyThreshold), for the scorer's -threshold.
//
//	go run ./cmd/nabrun -data DIR -out DIR
//
// With -loco it instead chooses the detector's constants by leave-one-category-out: it runs
// a grid of settings, scores each with the shared NAB scorer (-scorer, its main.go), and for
// each category prints the setting best on the other categories and its score on the held one.
//
//	go run ./cmd/nabrun -loco -data ../shared/nab/data -scorer ../shared/nab/main.go -out _build/nab-loco
package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploylens/deploylens/internal/detector"
)

func main() {
	dataDir := flag.String("data", "", "NAB data folder (holds <category>/<series>.csv)")
	outDir := flag.String("out", "", "folder to write result CSVs into")
	loco := flag.Bool("loco", false, "choose the constants by leave-one-category-out instead (needs -scorer)")
	scorerMain := flag.String("scorer", "", "the shared NAB scorer's main.go, for -loco")
	flag.Parse()
	if *dataDir == "" || *outDir == "" || (*loco && *scorerMain == "") {
		fmt.Fprintln(os.Stderr, "usage: nabrun -data DIR -out DIR [-loco -scorer MAIN.GO]")
		os.Exit(2)
	}
	if *loco {
		if err := runLOCO(*dataDir, *outDir, *scorerMain, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "nabrun:", err)
			os.Exit(1)
		}
		return
	}
	n, err := run(*dataDir, *outDir, detector.DefaultConfig())
	if err == nil {
		err = writeThreshold(*outDir, detector.AnomalyThreshold)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nabrun:", err)
		os.Exit(1)
	}
	fmt.Printf("nabrun: scored %d series into %s; threshold %v\n", n, *outDir, detector.AnomalyThreshold)
}

// writeThreshold writes outDir/threshold.json, the score the processor alerts from, for the scorer's -threshold.
func writeThreshold(outDir string, threshold float64) error {
	data, err := json.Marshal(struct {
		Threshold float64 `json:"threshold"`
	}{threshold})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "threshold.json"), append(data, '\n'), 0o644)
}

// run scores every CSV under dataDir into outDir and returns how many series it wrote.
func run(dataDir, outDir string, cfg detector.Config) (int, error) {
	var files []string
	err := filepath.WalkDir(dataDir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !entry.IsDir() && strings.HasSuffix(entry.Name(), ".csv") {
			rel, err := filepath.Rel(dataDir, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no .csv files under %s", dataDir)
	}

	// Series are independent: score them in parallel, each with its own fresh detector.
	jobs := make(chan int)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range jobs {
				rel := files[i]
				if err := scoreFile(filepath.Join(dataDir, rel), filepath.Join(outDir, rel), cfg); err != nil {
					errs[i] = fmt.Errorf("%s: %w", rel, err)
				}
			}
		})
	}
	for i := range files {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return len(files), errors.Join(errs...)
}

// NAB's data timestamps carry no zone; they are read as UTC, which only the daily profile looks at.
const nabTimeLayout = "2006-01-02 15:04:05"

// scoreFile runs one fresh detector over one series, row by row, writing each score as it goes.
func scoreFile(inPath, outPath string, cfg detector.Config) error {
	in, err := os.Open(inPath)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only: nothing to lose
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return err
	}
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	err = scoreStream(in, w, cfg)
	if err == nil {
		err = w.Flush()
	}
	return errors.Join(err, out.Close())
}

// scoreStream reads timestamp,value rows and writes timestamp,anomaly_score rows in the same order.
func scoreStream(in io.Reader, out io.Writer, cfg detector.Config) error {
	r := csv.NewReader(in)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	tsCol, valueCol := -1, -1
	for i, name := range header {
		switch strings.TrimSpace(name) {
		case "timestamp":
			tsCol = i
		case "value":
			valueCol = i
		}
	}
	if tsCol < 0 || valueCol < 0 {
		return fmt.Errorf("header %q lacks timestamp and value columns", strings.Join(header, ","))
	}
	if _, err := io.WriteString(out, "timestamp,anomaly_score\n"); err != nil {
		return err
	}
	det := detector.New(cfg)
	line := []byte{}
	for row := 2; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rawTS := strings.TrimSpace(rec[tsCol])
		ts, err := parseTime(rawTS)
		if err != nil {
			return fmt.Errorf("row %d: %w", row, err)
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(rec[valueCol]), 64)
		if err != nil {
			return fmt.Errorf("row %d: value: %w", row, err)
		}
		res := det.Update(ts, value)
		line = append(line[:0], rawTS...)
		line = append(line, ',')
		line = strconv.AppendFloat(line, res.Score, 'f', -1, 64)
		line = append(line, '\n')
		if _, err := out.Write(line); err != nil {
			return err
		}
	}
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{nabTimeLayout, "2006-01-02 15:04:05.999999", time.RFC3339Nano} {
		if ts, err := time.Parse(layout, s); err == nil {
			return ts, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not in %q form", s, nabTimeLayout)
}
