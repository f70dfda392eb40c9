// Package fileprovider is the deploylens distribution's `file:` config
// provider. It reads a config file exactly as the collector's own fileprovider
// does, with one addition: a `${...}` reference written unquoted inside a YAML
// flow mapping, as in
//
//	github: {secret: ${env:GITHUB_WEBHOOK_SECRET}}
//
// is not valid YAML (in flow context `{` ends a plain scalar), so every YAML
// parser refuses the file. When, and only when, a file fails to parse and
// quoting such references makes it parse, the provider reads it with those
// references quoted and logs a warning naming them. Every file that is valid
// YAML is read byte for byte as upstream reads it.
package fileprovider // import "github.com/deploylens/deploylens/confmap/provider/fileprovider"

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"
	yaml "go.yaml.in/yaml/v3"
)

const schemeName = "file"

type provider struct {
	logger *zap.Logger
}

// NewFactory returns a factory for the `file:` provider.
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(newProvider)
}

func newProvider(set confmap.ProviderSettings) confmap.Provider {
	logger := set.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &provider{logger: logger}
}

func (p *provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	if !strings.HasPrefix(uri, schemeName+":") {
		return nil, fmt.Errorf("%q uri is not supported by %q provider", uri, schemeName)
	}
	content, err := os.ReadFile(filepath.Clean(uri[len(schemeName)+1:]))
	if err != nil {
		return nil, fmt.Errorf("unable to read the file %v: %w", uri, err)
	}
	if fixed, quoted := repairFlowReferences(content); len(quoted) > 0 {
		p.logger.Warn("config: unquoted ${...} inside a flow mapping {...} is not valid YAML; read as quoted strings (quote them to silence this)",
			zap.String("uri", uri), zap.Strings("references", quoted))
		content = fixed
	}
	return confmap.NewRetrievedFromYAML(content)
}

func (*provider) Scheme() string { return schemeName }

func (*provider) Shutdown(context.Context) error { return nil }

// repairFlowReferences returns content with unquoted ${...} references inside
// flow collections quoted, and the references it quoted, when content is not
// valid YAML and the quoted version is. Otherwise it returns content unchanged
// and no references.
func repairFlowReferences(content []byte) ([]byte, []string) {
	var probe any
	if yaml.Unmarshal(content, &probe) == nil {
		return content, nil
	}
	fixed, quoted := quoteFlowReferences(content)
	if len(quoted) == 0 || yaml.Unmarshal(fixed, &probe) != nil {
		return content, nil
	}
	return fixed, quoted
}

// quoteFlowReferences wraps in double quotes every ${...} (or $${...}) that
// stands unquoted inside a flow collection. It follows YAML's lexical
// structure only as far as needed: quoted scalars, comments and flow depth.
// No YAML library exposes a tolerant lexer for this, hence the hand scan.
func quoteFlowReferences(in []byte) ([]byte, []string) {
	var (
		out      = make([]byte, 0, len(in)+16)
		quoted   []string
		depth    int
		lastSig  byte = '\n' // last non-blank byte outside quotes and comments
		i        int
		inSingle bool
		inDouble bool
	)
	for i < len(in) {
		c := in[i]
		switch {
		case inDouble:
			out = append(out, c)
			if c == '\\' && i+1 < len(in) {
				out = append(out, in[i+1])
				i += 2
				continue
			}
			if c == '"' {
				inDouble = false
				lastSig = c
			}
			i++
			continue
		case inSingle:
			out = append(out, c)
			if c == '\'' {
				inSingle = false
				lastSig = c
			}
			i++
			continue
		}
		switch {
		case c == '#' && (i == 0 || in[i-1] == ' ' || in[i-1] == '\t' || in[i-1] == '\n'):
			end := i
			for end < len(in) && in[end] != '\n' {
				end++
			}
			out = append(out, in[i:end]...)
			i = end
			continue
		case (c == '"' || c == '\'') && startsScalar(lastSig):
			inDouble, inSingle = c == '"', c == '\''
		case c == '$':
			if ref, n := reference(in[i:]); n > 0 {
				if depth > 0 && startsScalar(lastSig) {
					out = append(out, '"')
					out = append(out, strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(ref)...)
					out = append(out, '"')
					quoted = append(quoted, ref)
				} else {
					out = append(out, ref...)
				}
				i += n
				lastSig = '}'
				continue
			}
		case c == '{' || c == '[':
			depth++
		case (c == '}' || c == ']') && depth > 0:
			depth--
		}
		out = append(out, c)
		if c != ' ' && c != '\t' && c != '\r' {
			lastSig = c
		}
		i++
	}
	return out, quoted
}

// startsScalar reports whether a scalar may begin after the byte prev.
func startsScalar(prev byte) bool {
	switch prev {
	case '\n', ':', ',', '[', '{', '-', '?':
		return true
	}
	return false
}

// reference returns the ${...} or $${...} at the start of b, with nested
// braces balanced, and its length; 0 when b does not start with one.
func reference(b []byte) (string, int) {
	start := 1
	if len(b) > 2 && b[1] == '$' {
		start = 2
	}
	if len(b) <= start || b[start] != '{' {
		return "", 0
	}
	depth := 0
	for j := start; j < len(b); j++ {
		switch b[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return string(b[:j+1]), j + 1
			}
		case '\n':
			return "", 0
		}
	}
	return "", 0
}
