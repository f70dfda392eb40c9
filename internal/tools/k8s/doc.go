// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package k8s checks the Kubernetes manifests (deploy/kubernetes) and Helm values files
// (deploy/helm) of deploylens: every object decodes strictly into the Kubernetes API
// types, the objects fit together, and every collector config they carry is one the
// built distribution accepts (`otelcol-deploylens validate`). It is a module of its own
// so that the Kubernetes client libraries stay out of the distribution's dependency graph.
package k8s
