package metadata

import "go.opentelemetry.io/collector/processor/processortest"

// settings is what mdatagen's generated metrics test expects in scope: its
// template declares it only for receivers, scrapers and connectors.
var settings = processortest.NewNopSettings(processortest.NopType)
