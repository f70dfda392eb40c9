// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package metadata

// Test-only: mdatagen v0.158.0 (and v0.159.0, v0.161.0) writes
// generated_metrics_test.go for a processor's `metrics:`, calling
// NewMetricsBuilder and a `settings` var its template declares only for
// receivers, scrapers and connectors. They are declared here, in a _test.go
// file, so the generated test compiles; no production code constructs the
// generated MetricsBuilder (internal/emit has its own builder). When a
// metric is added to metadata.yaml, add it here too: the generated test
// fails until it is.

import (
	"time"

	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

var settings = processortest.NewNopSettings(processortest.NopType)

func NewMetricsBuilder(mbc MetricsBuilderConfig, settings processor.Settings, options ...MetricBuilderOption) *MetricsBuilder {
	mb := &MetricsBuilder{
		config:                                mbc,
		startTime:                             pcommon.NewTimestampFromTime(time.Now()),
		metricsBuffer:                         pmetric.NewMetrics(),
		buildInfo:                             settings.BuildInfo,
		metricDeploymentActive:                newMetricDeploymentActive(mbc.Metrics.DeploymentActive),
		metricDeploymentAnomalyScore:          newMetricDeploymentAnomalyScore(mbc.Metrics.DeploymentAnomalyScore),
		metricDeploymentChangeFailureRatio:    newMetricDeploymentChangeFailureRatio(mbc.Metrics.DeploymentChangeFailureRatio),
		metricDeploymentCount:                 newMetricDeploymentCount(mbc.Metrics.DeploymentCount),
		metricDeploymentDependencyBaseline:    newMetricDeploymentDependencyBaseline(mbc.Metrics.DeploymentDependencyBaseline),
		metricDeploymentDependencyHealthScore: newMetricDeploymentDependencyHealthScore(mbc.Metrics.DeploymentDependencyHealthScore),
		metricDeploymentDependencyLower:       newMetricDeploymentDependencyLower(mbc.Metrics.DeploymentDependencyLower),
		metricDeploymentDependencyUpper:       newMetricDeploymentDependencyUpper(mbc.Metrics.DeploymentDependencyUpper),
		metricDeploymentDependencyValue:       newMetricDeploymentDependencyValue(mbc.Metrics.DeploymentDependencyValue),
		metricDeploymentDetectionTime:         newMetricDeploymentDetectionTime(mbc.Metrics.DeploymentDetectionTime),
		metricDeploymentDuration:              newMetricDeploymentDuration(mbc.Metrics.DeploymentDuration),
		metricDeploymentHealthDimensionScore:  newMetricDeploymentHealthDimensionScore(mbc.Metrics.DeploymentHealthDimensionScore),
		metricDeploymentHealthRecommendation:  newMetricDeploymentHealthRecommendation(mbc.Metrics.DeploymentHealthRecommendation),
		metricDeploymentHealthScore:           newMetricDeploymentHealthScore(mbc.Metrics.DeploymentHealthScore),
		metricDeploymentHealthVerdict:         newMetricDeploymentHealthVerdict(mbc.Metrics.DeploymentHealthVerdict),
		metricDeploymentImpactServices:        newMetricDeploymentImpactServices(mbc.Metrics.DeploymentImpactServices),
		metricDeploymentIndicatorBaseline:     newMetricDeploymentIndicatorBaseline(mbc.Metrics.DeploymentIndicatorBaseline),
		metricDeploymentIndicatorLower:        newMetricDeploymentIndicatorLower(mbc.Metrics.DeploymentIndicatorLower),
		metricDeploymentIndicatorUpper:        newMetricDeploymentIndicatorUpper(mbc.Metrics.DeploymentIndicatorUpper),
		metricDeploymentIndicatorValue:        newMetricDeploymentIndicatorValue(mbc.Metrics.DeploymentIndicatorValue),
		metricDeploymentInterval:              newMetricDeploymentInterval(mbc.Metrics.DeploymentInterval),
		metricDeploymentLeadTime:              newMetricDeploymentLeadTime(mbc.Metrics.DeploymentLeadTime),
		metricDeploymentRecoveryTime:          newMetricDeploymentRecoveryTime(mbc.Metrics.DeploymentRecoveryTime),
		resourceAttributeIncludeFilter:        make(map[string]filter.Filter),
		resourceAttributeExcludeFilter:        make(map[string]filter.Filter),
	}
	for name, ra := range map[string]ResourceAttributeConfig{
		"deployment.environment.name": mbc.ResourceAttributes.DeploymentEnvironmentName,
		"service.name":                mbc.ResourceAttributes.ServiceName,
		"service.namespace":           mbc.ResourceAttributes.ServiceNamespace,
	} {
		if ra.MetricsInclude != nil {
			mb.resourceAttributeIncludeFilter[name] = filter.CreateFilter(ra.MetricsInclude)
		}
		if ra.MetricsExclude != nil {
			mb.resourceAttributeExcludeFilter[name] = filter.CreateFilter(ra.MetricsExclude)
		}
	}
	for _, op := range options {
		op.apply(mb)
	}
	return mb
}
