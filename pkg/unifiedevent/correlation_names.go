package unifiedevent

// MetricThresholdBreach names the events the correlation connector makes from metric data points
// that breach a configured threshold for long enough. Like CorrelationName it is not a catalogue
// entry: its layer comes from the rule that made it, and it never leaves the connector except as a
// chain entry.
const MetricThresholdBreach Name = "tapio.metric.threshold_breach"
