// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package packaging

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	// Cmd is the instruction, upper case (FROM, RUN, COPY, …).
	Cmd string
	// Flags are the leading --flag[=value] words (COPY --from=build, RUN --mount=…).
	Flags []string
	// Args is the rest of the instruction.
	Args string
	// Line is where the instruction starts (1-based).
	Line int
}

// Flag returns the value of --name=value, and whether it was given.
func (in Instruction) Flag(name string) (string, bool) {
	for _, f := range in.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
		if f == "--"+name {
			return "", true
		}
	}
	return "", false
}

// Exec returns the arguments of an exec-form (JSON array) instruction such as CMD ["a", "b"].
func (in Instruction) Exec() ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(in.Args), &args); err != nil {
		return nil, fmt.Errorf("line %d: %s is not in exec (JSON array) form: %w", in.Line, in.Cmd, err)
	}
	return args, nil
}

// Stage is one FROM and the instructions after it.
type Stage struct {
	// Base is the image the stage starts from, Name its `AS` name (may be empty).
	Base, Name string
	Line       int
	// Instructions follow the FROM (the FROM itself is not among them).
	Instructions []Instruction
}

// Find returns the stage's instructions of one kind, in order.
func (s Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// Expand replaces ${NAME} and $NAME with the defaults of the stage's ARG and ENV instructions.
func (s Stage) Expand(text string) string {
	vars := map[string]string{}
	for _, in := range s.Instructions {
		if in.Cmd != "ARG" && in.Cmd != "ENV" {
			continue
		}
		for _, word := range strings.Fields(in.Args) {
			if name, value, ok := strings.Cut(word, "="); ok {
				vars[name] = strings.Trim(value, `"`)
			}
		}
	}
	return varRef.ReplaceAllStringFunc(text, func(ref string) string {
		name := strings.Trim(ref, "${}")
		if v, ok := vars[name]; ok {
			return v
		}
		return ref
	})
}

var varRef = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// ParseDockerfile reads the stages of a Dockerfile: enough of the syntax for the checks of
// this package (comments, line continuations, flags, stage names), not a full parser.
func ParseDockerfile(r io.Reader) ([]Stage, error) {
	var stages []Stage
	scanner := bufio.NewScanner(r)
	var (
		pending   strings.Builder
		startLine int
		lineNo    int
	)
	flush := func() error {
		text := strings.TrimSpace(pending.String())
		pending.Reset()
		if text == "" {
			return nil
		}
		cmd, rest, _ := strings.Cut(text, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Line: startLine}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var flag string
			flag, rest, _ = strings.Cut(rest, " ")
			in.Flags = append(in.Flags, flag)
			rest = strings.TrimSpace(rest)
		}
		in.Args = rest
		if in.Cmd == "FROM" {
			words := strings.Fields(rest)
			if len(words) == 0 {
				return fmt.Errorf("line %d: FROM without an image", in.Line)
			}
			stage := Stage{Base: words[0], Line: in.Line}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				stage.Name = words[2]
			}
			stages = append(stages, stage)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" { // an ARG before the first FROM
				return nil
			}
			return fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		}
		stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
		return nil
	}
	for scanner.Scan() {
		lineNo++
		line := scanner.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending.Len() == 0) {
			continue // comments (also inside a continued instruction) and blank lines
		}
		if pending.Len() == 0 {
			startLine = lineNo
		}
		if body, continued := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); continued {
			pending.WriteString(body)
			pending.WriteString(" ")
			continue
		}
		pending.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return stages, nil
}

// IgnoreRules are the patterns of a .dockerignore file.
type IgnoreRules []string

// ParseDockerignore reads a .dockerignore. Only plain patterns are supported (filepath.Match
// syntax, relative to the context root); exceptions (!) and ** are refused rather than
// matched differently from Docker.
func ParseDockerignore(r io.Reader) (IgnoreRules, error) {
	var rules IgnoreRules
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(line, "**") {
			return nil, fmt.Errorf(".dockerignore: %q: exceptions and ** are not supported by this check; use plain paths", line)
		}
		pattern := filepath.ToSlash(filepath.Clean(strings.TrimPrefix(line, "/")))
		if _, err := filepath.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf(".dockerignore: %q: %w", line, err)
		}
		rules = append(rules, pattern)
	}
	return rules, scanner.Err()
}

// Ignored says whether a path (slash-separated, relative to the context root) is left out of
// the build context: as in Docker, a pattern that matches a directory leaves out all below it.
func (rules IgnoreRules) Ignored(rel string) bool {
	parts := strings.Split(rel, "/")
	for _, pattern := range rules {
		for i := 1; i <= len(parts); i++ {
			if ok, _ := filepath.Match(pattern, strings.Join(parts[:i], "/")); ok {
				return true
			}
		}
	}
	return false
}

// CopyContext copies the build context Docker would send (the tree at root less what the
// rules leave out) to dst. Symbolic links are skipped.
func CopyContext(root, dst string, rules IgnoreRules) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if rules.Ignored(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
