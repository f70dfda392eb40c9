// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package packaging holds the tests of how deploylens is shipped: the Dockerfile and its
// build context, and the binary the image carries (static, runs with an empty environment
// on the container config). The Kubernetes manifests are checked in the separate module
// internal/tools/k8s, which keeps the Kubernetes client libraries out of this module.
package packaging
