// Package ratelog bounds how often a component logs the same thing: drops, evictions and invalid
// input are counted in self-telemetry every time, and logged at most once per Tick per message.
package ratelog

import (
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Tick is the interval within which one message is logged once.
const Tick = 10 * time.Second

// Sampled wraps logger so that each message is written at most once per Tick.
func Sampled(logger *zap.Logger) *zap.Logger {
	return logger.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(core, Tick, 1, 0)
	}))
}
