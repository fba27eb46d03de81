package gen

import (
	"errors"
	"fmt"
	"time"
)

// Mixes of traffic, each what one kind of application under one condition sends.
const (
	// MixHealthy: requests to a shop's routes, a few (ErrorFraction, 1 % by default) failing
	// with a 500 because their call to a dependency failed.
	MixHealthy = "healthy"
	// MixStorm: the payment service is down; every checkout fails, the SERVER span in error with
	// error.type and its CLIENT child to payment naming the failing dependency.
	MixStorm = "storm"
	// MixErrorLogs: an application's logs, info lines and (ErrorFraction, half by default) error
	// lines, each inside a request's trace context.
	MixErrorLogs = "errorlogs"
)

// Config says what to generate and how fast.
type Config struct {
	Endpoint string // OTLP/gRPC, host:port
	Mix      string
	// ErrorFraction of requests that fail (healthy) or of log lines at ERROR (errorlogs); a
	// negative value takes the mix's default.
	ErrorFraction float64
	// Rate is the items (spans, log records) per second offered by all workers together; 0 is
	// as fast as they go.
	Rate     float64
	Warmup   time.Duration
	Duration time.Duration
	Workers  int
	// BatchSize is the items per Export call.
	BatchSize int
	// OpenLoop sends each full batch without waiting for the previous Export to answer, up to
	// MaxInFlight calls per worker: the offer does not slow down when the collector does.
	OpenLoop    bool
	MaxInFlight int
	// ExportTimeout bounds one Export call.
	ExportTimeout time.Duration
}

// Signal is what the mix sends: traces or logs.
func (c Config) Signal() string {
	if c.Mix == MixErrorLogs {
		return "logs"
	}
	return "traces"
}

func (c Config) errorFraction() float64 {
	if c.ErrorFraction >= 0 {
		return c.ErrorFraction
	}
	switch c.Mix {
	case MixStorm:
		return 1
	case MixErrorLogs:
		return 0.5
	default:
		return 0.01
	}
}

// Validate reports what is wrong with the configuration.
func (c Config) Validate() error {
	var errs []error
	switch c.Mix {
	case MixHealthy, MixStorm, MixErrorLogs:
	default:
		errs = append(errs, fmt.Errorf("mix %q: want %s, %s or %s", c.Mix, MixHealthy, MixStorm, MixErrorLogs))
	}
	if c.Endpoint == "" {
		errs = append(errs, errors.New("endpoint is empty"))
	}
	if c.ErrorFraction > 1 {
		errs = append(errs, fmt.Errorf("error fraction %g is over 1", c.ErrorFraction))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g is negative", c.Rate))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %s must be positive", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warm-up %s is negative", c.Warmup))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers %d: want at least 1", c.Workers))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch size %d: want at least 1", c.BatchSize))
	}
	if c.OpenLoop && c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d: want at least 1 with open loop", c.MaxInFlight))
	}
	if c.ExportTimeout <= 0 {
		errs = append(errs, fmt.Errorf("export timeout %s must be positive", c.ExportTimeout))
	}
	return errors.Join(errs...)
}
