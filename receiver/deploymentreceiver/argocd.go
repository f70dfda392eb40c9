package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"net/http"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// TODO(helper): replace this placeholder with the real source.
func newArgoCDSource(_ *ArgoCDConfig) *source {
	return &source{
		name:       "argocd",
		path:       pathArgoCD,
		mediaTypes: []string{"application/json"},
		authorize:  func(http.Header, []byte) error { return errUnauthorized },
		parse: func(http.Header, []byte) ([]deployevent.Event, error) {
			return nil, badRequest("not implemented")
		},
	}
}
