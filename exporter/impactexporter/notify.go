package impactexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/collector/config/configretry"
	"go.uber.org/zap"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	"github.com/yairfalse/tapio/pkg/impactapi"
)

// notifier posts incidents to a webhook from one worker: a bounded queue in front, retries with
// exponential backoff behind, every drop and failure counted.
type notifier struct {
	cfg       WebhookConfig
	retry     configretry.BackOffConfig
	client    *http.Client
	telemetry *metadata.TelemetryBuilder
	logger    *zap.Logger

	queue  chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func newNotifier(cfg WebhookConfig, client *http.Client, tb *metadata.TelemetryBuilder, logger *zap.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{cfg: cfg, retry: cfg.retryOnFailure(), client: client, telemetry: tb, logger: logger,
		queue: make(chan []byte, cfg.QueueSize), ctx: ctx, cancel: cancel}
}

func (n *notifier) start(wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.run()
	}()
}

// stop cancels the delivery in flight; what is still queued is counted as dropped.
func (n *notifier) stop() { n.once.Do(n.cancel) }

func (n *notifier) enqueue(ev impactapi.StreamEvent) {
	payload, err := json.Marshal(&ev)
	if err != nil {
		n.logger.Warn("incident could not be encoded for the webhook", zap.Error(err))
		return
	}
	if n.ctx.Err() != nil {
		n.drop(1, "the exporter is shutting down")
		return
	}
	select {
	case n.queue <- payload:
	default:
		n.drop(1, "the webhook queue is full")
	}
}

func (n *notifier) drop(count int64, why string) {
	n.telemetry.ExporterImpactNotificationsDropped.Add(context.Background(), count)
	n.logger.Warn("webhook notifications dropped (counted in otelcol_exporter_impact_notifications_dropped)",
		zap.Int64("count", count), zap.String("reason", why))
}

func (n *notifier) run() {
	for {
		select {
		case <-n.ctx.Done():
			if left := len(n.queue); left > 0 {
				n.drop(int64(left), "the exporter shut down before delivery")
			}
			return
		case payload := <-n.queue:
			n.deliver(payload)
		}
	}
}

// deliver tries one notification, and retries it as retry_on_failure says (the semantics of the
// collector's exporterhelper retry: the next delay from backoff.ExponentialBackOff, no retry that
// would start after max_elapsed_time). A 4xx answer other than 408 and 429 is the receiver
// refusing the payload: retrying would not help.
func (n *notifier) deliver(payload []byte) {
	var lastErr error
	attempt := func() (struct{}, error) {
		lastErr = n.post(payload)
		return struct{}{}, lastErr
	}
	opts := []backoff.RetryOption{
		backoff.WithMaxElapsedTime(n.retry.MaxElapsedTime),
		backoff.WithNotify(func(error, time.Duration) {
			n.telemetry.ExporterImpactNotificationsRetried.Add(context.Background(), 1)
		}),
	}
	if n.retry.Enabled {
		opts = append(opts, backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     n.retry.InitialInterval,
			RandomizationFactor: n.retry.RandomizationFactor,
			Multiplier:          n.retry.Multiplier,
			MaxInterval:         n.retry.MaxInterval,
		}))
	} else {
		opts = append(opts, backoff.WithMaxTries(1))
	}
	if _, err := backoff.Retry(n.ctx, attempt, opts...); err == nil {
		n.telemetry.ExporterImpactNotificationsSent.Add(context.Background(), 1)
		return
	}
	// lastErr rather than Retry's error, which is only "context canceled" at shutdown.
	n.telemetry.ExporterImpactNotificationsFailed.Add(context.Background(), 1)
	n.logger.Warn("webhook notification failed (counted in otelcol_exporter_impact_notifications_failed)",
		zap.String("endpoint", n.cfg.Endpoint), zap.Error(lastErr))
}

// post makes one attempt; an error it marks permanent is not retried.
func (n *notifier) post(payload []byte) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, n.cfg.Endpoint, bytes.NewReader(payload))
	if err != nil {
		return backoff.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return backoff.Permanent(fmt.Errorf("webhook refused the notification: %s", resp.Status))
}
