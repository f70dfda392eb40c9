// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package deploymentprocessor tracks the deployments of every service it sees,
// from deployment.lifecycle log records and from new service.version values in
// telemetry, and tags traces, metrics and logs with the deployment phase, id
// and cohort. One instance serves every pipeline its component ID is used in.
package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"
