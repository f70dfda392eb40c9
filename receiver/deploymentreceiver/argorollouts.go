package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"net/http"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// TODO(helper): replace this placeholder with the real source.
func newArgoRolloutsSource(_ *ArgoRolloutsConfig) *source {
	return &source{
		name:       "argorollouts",
		path:       pathArgoRollouts,
		mediaTypes: []string{"application/json"},
		authorize:  func(http.Header, []byte) error { return errUnauthorized },
		parse: func(http.Header, []byte) ([]deployevent.Event, error) {
			return nil, badRequest("not implemented")
		},
	}
}
