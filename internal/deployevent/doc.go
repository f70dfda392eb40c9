// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package deployevent is the deployment.lifecycle event contract shared by the
// deploylens receiver, processor and exporter: attribute names, the state and
// strategy vocabularies, and the conversion between an Event and a log record.
package deployevent // import "github.com/deploylens/deploylens/internal/deployevent"
