package metadata // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"

// Hand-written, not generated: mdatagen v0.158.0 generates the MetricsBuilder
// type for a processor's `metrics:` but its constructor only for receivers
// and scrapers. This is that constructor for a processor, doing what the
// generated one does (config, start time, build info, resource filters).

import (
	"time"

	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
)

// NewMetricsBuilder returns a MetricsBuilder for the processor's derived metrics.
func NewMetricsBuilder(mbc MetricsBuilderConfig, settings processor.Settings, options ...MetricBuilderOption) *MetricsBuilder {
	mb := &MetricsBuilder{
		config:                               mbc,
		startTime:                            pcommon.NewTimestampFromTime(time.Now()),
		metricsBuffer:                        pmetric.NewMetrics(),
		buildInfo:                            settings.BuildInfo,
		metricDeploymentActive:               newMetricDeploymentActive(mbc.Metrics.DeploymentActive),
		metricDeploymentAnomalyScore:         newMetricDeploymentAnomalyScore(mbc.Metrics.DeploymentAnomalyScore),
		metricDeploymentChangeFailureRatio:   newMetricDeploymentChangeFailureRatio(mbc.Metrics.DeploymentChangeFailureRatio),
		metricDeploymentCount:                newMetricDeploymentCount(mbc.Metrics.DeploymentCount),
		metricDeploymentDetectionTime:        newMetricDeploymentDetectionTime(mbc.Metrics.DeploymentDetectionTime),
		metricDeploymentDuration:             newMetricDeploymentDuration(mbc.Metrics.DeploymentDuration),
		metricDeploymentHealthDimensionScore: newMetricDeploymentHealthDimensionScore(mbc.Metrics.DeploymentHealthDimensionScore),
		metricDeploymentHealthRecommendation: newMetricDeploymentHealthRecommendation(mbc.Metrics.DeploymentHealthRecommendation),
		metricDeploymentHealthScore:          newMetricDeploymentHealthScore(mbc.Metrics.DeploymentHealthScore),
		metricDeploymentHealthVerdict:        newMetricDeploymentHealthVerdict(mbc.Metrics.DeploymentHealthVerdict),
		metricDeploymentIndicatorBaseline:    newMetricDeploymentIndicatorBaseline(mbc.Metrics.DeploymentIndicatorBaseline),
		metricDeploymentIndicatorLower:       newMetricDeploymentIndicatorLower(mbc.Metrics.DeploymentIndicatorLower),
		metricDeploymentIndicatorUpper:       newMetricDeploymentIndicatorUpper(mbc.Metrics.DeploymentIndicatorUpper),
		metricDeploymentIndicatorValue:       newMetricDeploymentIndicatorValue(mbc.Metrics.DeploymentIndicatorValue),
		metricDeploymentInterval:             newMetricDeploymentInterval(mbc.Metrics.DeploymentInterval),
		metricDeploymentLeadTime:             newMetricDeploymentLeadTime(mbc.Metrics.DeploymentLeadTime),
		metricDeploymentRecoveryTime:         newMetricDeploymentRecoveryTime(mbc.Metrics.DeploymentRecoveryTime),
		resourceAttributeIncludeFilter:       make(map[string]filter.Filter),
		resourceAttributeExcludeFilter:       make(map[string]filter.Filter),
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
