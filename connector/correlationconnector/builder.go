package correlationconnector

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/plog"
)

// recordBuilder turns snapshots into correlation records: it finds each chain's trace ancestry,
// orders and links the chain (chain.go) and writes the record with the schema's codec
// (record.go). Its scratch space is reused by every build, so a build allocates only what the
// output needs.
type recordBuilder struct {
	cfg    *Config
	window int64
	skew   int64
	store  *spanStore // trace structure of the spans between an event and its failed ancestor
	advice recommendationTable
	clock  clock

	mu      sync.Mutex // guards scratch; the book takes it before releasing its own lock
	scratch chainScratch
}

func newRecordBuilder(cfg *Config, store *spanStore, clk clock) *recordBuilder {
	return &recordBuilder{
		cfg:     cfg,
		window:  int64(cfg.Window),
		skew:    int64(cfg.ClockSkew),
		store:   store,
		advice:  newRecommendationTable(cfg.Recommendations, cfg.Thresholds),
		clock:   clk,
		scratch: newChainScratch(),
	}
}

// buildLocked builds the records of snaps. It is called holding rb.mu (taken by the book before
// it released its lock) and hands over to next — the output router's lock — before releasing
// rb.mu, so that records leave in the order their snapshots were taken.
func (rb *recordBuilder) buildLocked(snaps []snapshot, t *tally, next sync.Locker) plog.Logs {
	defer rb.mu.Unlock()
	out := plog.NewLogs()
	for i := range snaps {
		rb.buildRecord(&snaps[i], out, t)
	}
	next.Lock()
	return out
}
