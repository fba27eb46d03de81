package gen

import "time"

// pacer spaces a worker's items to its share of the rate. When the worker falls behind by more
// than a second (an Export that took long) it does not burst to catch up: the items not made
// are simply missing from Generated, and so from the offered rate the report shows.
type pacer struct {
	interval time.Duration // per item; 0 = unlimited
	next     time.Time
}

func newPacer(rate float64, workers int) *pacer {
	p := &pacer{next: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) * float64(workers) / rate)
	}
	return p
}

// wait blocks until items more may be made, or stop is closed.
func (p *pacer) wait(items int, stop <-chan struct{}) {
	if p.interval == 0 {
		return
	}
	p.next = p.next.Add(time.Duration(items) * p.interval)
	now := time.Now()
	if lag := now.Sub(p.next); lag > time.Second {
		p.next = now
		return
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
		}
	}
}
