package fileprovider

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func retrieve(t *testing.T, path string) (map[string]any, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.WarnLevel)
	p := NewFactory().Create(confmap.ProviderSettings{Logger: zap.New(core)})
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
	abs, err := filepath.Abs(path)
	require.NoError(t, err)
	ret, err := p.Retrieve(context.Background(), "file:"+abs, nil)
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	return conf.ToStringMap(), logs
}

func TestIssueConfigAsWritten(t *testing.T) {
	raw, err := os.ReadFile("testdata/issue-config.yaml")
	require.NoError(t, err)
	// Upstream's reading of the same bytes is not a config: the reason this provider exists.
	upstream, err := confmap.NewRetrievedFromYAML(raw)
	require.NoError(t, err)
	_, err = upstream.AsConf()
	require.Error(t, err)

	got, logs := retrieve(t, "testdata/issue-config.yaml")
	deployment := got["receivers"].(map[string]any)["deployment"].(map[string]any)
	assert.Equal(t, "${env:DEPLOY_TOKEN}", deployment["generic"].(map[string]any)["bearer_token"])
	assert.Equal(t, "${env:GITHUB_WEBHOOK_SECRET}", deployment["github"].(map[string]any)["secret"])
	assert.Equal(t, "${env:GITLAB_WEBHOOK_TOKEN}", deployment["gitlab"].(map[string]any)["token"])
	assert.Equal(t, "${env:ARGOCD_TOKEN}", deployment["argocd"].(map[string]any)["bearer_token"])
	assert.Equal(t, map[string]any{}, deployment["flagger"])
	assert.Equal(t, "localhost:8088", deployment["endpoint"])
	require.Equal(t, 1, logs.Len(), "one warning names the quoted references")
	assert.Len(t, logs.All()[0].ContextMap()["references"], 4)
}

func TestValidYAMLUnchanged(t *testing.T) {
	raw, err := os.ReadFile("testdata/valid.yaml")
	require.NoError(t, err)
	fixed, quoted := repairFlowReferences(raw)
	assert.Equal(t, raw, fixed)
	assert.Empty(t, quoted)

	got, logs := retrieve(t, "testdata/valid.yaml")
	deployment := got["receivers"].(map[string]any)["deployment"].(map[string]any)
	assert.Equal(t, "don't {touch} ${env:X}", deployment["note"])
	assert.Equal(t, "a{2}b", deployment["regex"])
	assert.Zero(t, logs.Len())
}

func TestQuoteFlowReferences(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"flow mapping", "a: {b: ${env:X}}\n", "a: {b: \"${env:X}\"}\n"},
		{"flow sequence", "a: [${env:X}, ${env:Y}]\n", "a: [\"${env:X}\", \"${env:Y}\"]\n"},
		{"default with braces", "a: {b: ${env:X:-{c}}}\n", "a: {b: \"${env:X:-{c}}\"}\n"},
		{"escaped reference", "a: {b: $${env:X}}\n", "a: {b: \"$${env:X}\"}\n"},
		{"already quoted", "a: {b: \"${env:X}\"}\n", "a: {b: \"${env:X}\"}\n"},
		{"block context untouched", "a: ${env:X}\n", "a: ${env:X}\n"},
		{"comment untouched", "a: {b: 1} # {c: ${env:X}}\n", "a: {b: 1} # {c: ${env:X}}\n"},
		{"quote inside reference default", "a: {b: ${env:X:-say \"hi\"}}\n", "a: {b: \"${env:X:-say \\\"hi\\\"}\"}\n"},
		{"embedded in a plain scalar", "a: {b: pre${env:X}}\n", "a: {b: pre${env:X}}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := quoteFlowReferences([]byte(tt.in))
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestInvalidYAMLStaysInvalid(t *testing.T) {
	// A file broken for another reason is returned as is, so the collector
	// reports the same error upstream would.
	in := []byte("a: {b: ${env:X}\n  c: [\n")
	fixed, quoted := repairFlowReferences(in)
	assert.Equal(t, in, fixed)
	assert.Empty(t, quoted)
}

func TestSchemeAndErrors(t *testing.T) {
	p := NewFactory().Create(confmaptest.NewNopProviderSettings())
	assert.Equal(t, "file", p.Scheme())
	_, err := p.Retrieve(context.Background(), "env:HOME", nil)
	assert.ErrorContains(t, err, "not supported")
	_, err = p.Retrieve(context.Background(), "file:/does/not/exist.yaml", nil)
	assert.ErrorContains(t, err, "unable to read the file")
	require.NoError(t, confmaptest.ValidateProviderScheme(p))
}
