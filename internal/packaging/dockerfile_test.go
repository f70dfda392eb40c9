// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package packaging

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ports the image exposes; README and the Kubernetes manifests use the same.
var exposedPorts = []int{4317, 4318, 8088, 8089, 13133, 8888}

const (
	ocbModule = "go.opentelemetry.io/collector/cmd/builder"
	// imageConfigPath is where the image carries its config.
	imageConfigPath = "/etc/otelcol-deploylens/config.yaml"
)

// image is what the Dockerfile says about the build and the runtime image.
type image struct {
	build, runtime Stage
	// workdir is the build stage's WORKDIR, where the context is copied.
	workdir string
	// builderArgs are the arguments of the RUN that calls ocb (`builder …`).
	builderArgs []string
	// binary is where the runtime image has the distribution; configSource is the
	// repository file baked in at imageConfigPath.
	binary, configSource string
}

func readDockerfile(t testing.TB) []Stage {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), dockerfileName))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	stages, err := ParseDockerfile(f)
	require.NoError(t, err, dockerfileName)
	return stages
}

// inspectDockerfile checks the Dockerfile's shape and returns what it says.
func inspectDockerfile(t testing.TB) image {
	t.Helper()
	stages := readDockerfile(t)
	require.GreaterOrEqual(t, len(stages), 2, "the Dockerfile is multi-stage: a build stage and a runtime stage")
	img := image{build: stages[0], runtime: stages[len(stages)-1]}
	require.NotEmpty(t, img.build.Name, "the build stage is named (FROM … AS build) for COPY --from")

	for _, in := range img.build.Find("WORKDIR") {
		img.workdir = img.build.Expand(in.Args)
	}
	require.NotEmpty(t, img.workdir, "the build stage sets a WORKDIR")
	for _, in := range img.build.Find("RUN") {
		words := strings.Fields(img.build.Expand(in.Args))
		if i := slices.Index(words, "builder"); i >= 0 {
			img.builderArgs = words[i+1:]
		}
	}
	require.NotEmpty(t, img.builderArgs, "the build stage runs ocb (`builder --config …`)")

	for _, in := range img.runtime.Find("COPY") {
		words := strings.Fields(in.Args)
		require.Len(t, words, 2, "line %d: COPY <src> <dst>", in.Line)
		if from, ok := in.Flag("from"); ok {
			require.Equal(t, img.build.Name, from, "line %d: the runtime stage copies from the build stage", in.Line)
			img.binary = words[1]
			continue
		}
		if words[1] == imageConfigPath {
			img.configSource = words[0]
		}
	}
	require.NotEmpty(t, img.binary, "the runtime stage copies the binary from the build stage")
	require.NotEmpty(t, img.configSource, "the runtime stage bakes a config in at %s", imageConfigPath)
	return img
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	img := inspectDockerfile(t)
	dist := readDistribution(t)

	t.Run("build stage: Go of go.mod, ocb of the Makefile, no cgo", func(t *testing.T) {
		goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
		require.NotNil(t, m, "go.mod: go directive")
		assert.Regexp(t, `^golang:`+regexp.QuoteMeta(string(m[1]))+`([.-]|$)`, img.build.Base,
			"the build stage's Go is the Go of go.mod (%s)", m[1])

		var installed string
		for _, in := range img.build.Find("RUN") {
			if m := regexp.MustCompile(regexp.QuoteMeta(ocbModule) + `@(\S+)`).FindStringSubmatch(img.build.Expand(in.Args)); m != nil {
				installed = m[1]
			}
		}
		assert.Equal(t, makefileOCBVersion(t), installed, "`go install %s@…` installs the Makefile's OCB_VERSION", ocbModule)

		cgoOff := false
		for _, in := range img.build.Instructions {
			if (in.Cmd == "ENV" || in.Cmd == "RUN") && regexp.MustCompile(`(^|\s)CGO_ENABLED=0(\s|$)`).MatchString(in.Args) {
				cgoOff = true
			}
		}
		assert.True(t, cgoOff, "the build stage sets CGO_ENABLED=0")

		assert.Equal(t, makefileOCBArgs(t), img.builderArgs, "ocb runs with the Makefile's arguments")
		assert.Equal(t, []string{"--config", builderConfig}, img.builderArgs)
		hasCopy := false
		for _, in := range img.build.Find("COPY") {
			if _, from := in.Flag("from"); !from && strings.Fields(in.Args)[0] == "." {
				hasCopy = true
			}
		}
		assert.True(t, hasCopy, "the build stage copies the context (COPY . .)")
	})

	t.Run("runtime stage: static base, non-root, no shell", func(t *testing.T) {
		assert.Regexp(t, `^(gcr\.io/distroless/static(-debian\d+)?(:[\w.-]+)?(@sha256:[0-9a-f]+)?|scratch)$`, img.runtime.Base,
			"the runtime image is distroless/static or scratch: nothing but the static binary")
		assert.Empty(t, img.runtime.Find("RUN"), "the runtime stage runs nothing (distroless has no shell)")

		users := img.runtime.Find("USER")
		require.NotEmpty(t, users, "the runtime stage sets USER")
		user, _, _ := strings.Cut(users[len(users)-1].Args, ":")
		uid, err := strconv.Atoi(user)
		require.NoError(t, err, "USER is numeric, so Kubernetes' runAsNonRoot can verify it: %q", user)
		assert.NotZero(t, uid, "USER is not root")
	})

	t.Run("binary: where ocb writes it, the entrypoint", func(t *testing.T) {
		built := path.Join(img.workdir, path.Clean(dist.OutputPath), dist.Name)
		var fromBuild string
		for _, in := range img.runtime.Find("COPY") {
			if _, ok := in.Flag("from"); ok {
				fromBuild = strings.Fields(in.Args)[0]
			}
		}
		assert.Equal(t, built, fromBuild, "the runtime stage copies %s/%s (builder-config.yaml dist::output_path, dist::name)", dist.OutputPath, dist.Name)
		assert.Equal(t, "/"+dist.Name, img.binary,
			"the binary is /%s: the upstream Helm chart runs /<command.name>", dist.Name)

		entrypoints := img.runtime.Find("ENTRYPOINT")
		require.Len(t, entrypoints, 1)
		entrypoint, err := entrypoints[0].Exec()
		require.NoError(t, err)
		assert.Equal(t, []string{img.binary}, entrypoint)
		cmds := img.runtime.Find("CMD")
		require.Len(t, cmds, 1)
		cmd, err := cmds[0].Exec()
		require.NoError(t, err)
		assert.Equal(t, []string{"--config", imageConfigPath}, cmd)
	})

	t.Run("config: from the repository, listening on all interfaces, on the exposed ports", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(root, img.configSource))
		require.NoError(t, err, "the baked-in config %s exists in the repository", img.configSource)
		var ports []int
		for _, l := range listeners(t, raw) {
			assert.Equal(t, "0.0.0.0", l.Host, "%s: %s listens on all interfaces in a container", img.configSource, l.Path)
			ports = append(ports, l.Port)
		}
		var exposed []int
		for _, in := range img.runtime.Find("EXPOSE") {
			for _, word := range strings.Fields(in.Args) {
				port, err := strconv.Atoi(strings.TrimSuffix(word, "/tcp"))
				require.NoError(t, err, "line %d: EXPOSE %s", in.Line, word)
				exposed = append(exposed, port)
			}
		}
		slices.Sort(ports)
		slices.Sort(exposed)
		want := slices.Sorted(slices.Values(exposedPorts))
		assert.Equal(t, want, exposed, "EXPOSE")
		assert.Equal(t, want, ports, "the ports %s listens on are the exposed ones", img.configSource)
	})
}

func TestDockerignore(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, dockerignoreName))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	rules, err := ParseDockerignore(f)
	require.NoError(t, err)

	for _, left := range []string{".git", "_build", "bin"} {
		assert.True(t, rules.Ignored(left), "%s is left out of the build context", left)
	}
	img := inspectDockerfile(t)
	needed := []string{builderConfig, "go.mod", "go.sum", img.configSource}
	// Every source file of the main module: ocb builds our components from the copied checkout.
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir // another module
			}
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || rel == "_build" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			needed = append(needed, filepath.ToSlash(rel))
		}
		return nil
	}))
	for _, file := range needed {
		assert.False(t, rules.Ignored(file), "%s is needed by the image build but %s leaves it out", file, dockerignoreName)
	}
}

func TestParseDockerfile(t *testing.T) {
	stages, err := ParseDockerfile(strings.NewReader(`# syntax=docker/dockerfile:1
ARG GLOBAL=1
FROM golang:1.26 AS build
ARG V=v1.2.3
RUN --mount=type=cache,target=/x \
    # a comment inside
    go install example.com/tool@${V}
FROM scratch
COPY --from=build /a /b
`))
	require.NoError(t, err)
	require.Len(t, stages, 2)
	assert.Equal(t, "build", stages[0].Name)
	run := stages[0].Find("RUN")
	require.Len(t, run, 1)
	assert.Equal(t, []string{"--mount=type=cache,target=/x"}, run[0].Flags)
	assert.Equal(t, 5, run[0].Line)
	assert.Equal(t, "go install example.com/tool@v1.2.3", strings.Join(strings.Fields(stages[0].Expand(run[0].Args)), " "))
	from, ok := stages[1].Find("COPY")[0].Flag("from")
	assert.True(t, ok)
	assert.Equal(t, "build", from)

	_, err = ParseDockerfile(strings.NewReader("RUN true\n"))
	assert.ErrorContains(t, err, "before the first FROM")
}

func TestDockerignoreMatching(t *testing.T) {
	rules, err := ParseDockerignore(strings.NewReader("# c\n/_build\ndeploy/kubernetes\n*.test\n"))
	require.NoError(t, err)
	for path, ignored := range map[string]bool{
		"_build":                     true,
		"_build/otelcol-deploylens":  true,
		"deploy/kubernetes/a.yaml":   true,
		"deploy/configs/container.y": false,
		"x.test":                     true,
		"sub/x.test":                 false, // as in Docker: patterns are relative to the root
		"builder-config.yaml":        false,
	} {
		assert.Equal(t, ignored, rules.Ignored(path), path)
	}
	_, err = ParseDockerignore(strings.NewReader("!keep\n"))
	assert.Error(t, err)
	_, err = ParseDockerignore(strings.NewReader("**/x\n"))
	assert.Error(t, err)
}
