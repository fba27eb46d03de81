package unifiedevent

import "go.opentelemetry.io/collector/pdata/plog"

// SeverityText is the short text written beside a severity number (the OTel log data model's
// range names), so that every producer spells it the same way.
func SeverityText(sev plog.SeverityNumber) string {
	switch {
	case sev >= plog.SeverityNumberFatal:
		return "FATAL"
	case sev >= plog.SeverityNumberError:
		return "ERROR"
	case sev >= plog.SeverityNumberWarn:
		return "WARN"
	case sev >= plog.SeverityNumberInfo:
		return "INFO"
	case sev >= plog.SeverityNumberDebug:
		return "DEBUG"
	case sev >= plog.SeverityNumberTrace:
		return "TRACE"
	}
	return ""
}

// SetSeverity writes a severity number and its text onto a record.
func SetSeverity(rec plog.LogRecord, sev plog.SeverityNumber) {
	rec.SetSeverityNumber(sev)
	rec.SetSeverityText(SeverityText(sev))
}
