package webhooks

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// EventQueue delivers a Canary's event webhooks in the background: a
// bounded queue and a few workers, so a slow or failing receiver never
// delays a release. A full queue drops the event and counts it.
type EventQueue struct {
	client  *Client
	log     logr.Logger
	queue   chan eventCall
	wg      sync.WaitGroup
	dropped atomic.Int64
	failed  atomic.Int64
	stop    chan struct{}
}

type eventCall struct {
	canary *sluicev1beta1.Canary
	hook   sluicev1beta1.CanaryWebhook
	body   Payload
	queued time.Time
}

// NewEventQueue starts workers that call event hooks through client.
func NewEventQueue(client *Client, log logr.Logger, size, workers int) *EventQueue {
	q := &EventQueue{client: client, log: log, queue: make(chan eventCall, size), stop: make(chan struct{})}
	for range max(workers, 1) {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

// Enqueue queues a call of every event hook of the Canary, with Flagger's
// eventMessage, eventType and timestamp (ms) added to the metadata. It never blocks.
func (q *EventQueue) Enqueue(c *sluicev1beta1.Canary, warning bool, message string, at time.Time) {
	if c.Spec.Analysis == nil {
		return
	}
	for _, h := range c.Spec.Analysis.Webhooks {
		if h.TypeOrDefault() != sluicev1beta1.WebhookEvent {
			continue
		}
		p := NewPayload(c, h, c.Status.Phase)
		md := map[string]string{}
		for k, v := range h.Metadata {
			md[k] = v
		}
		eventType := "Normal"
		if warning {
			eventType = "Warning"
		}
		// Sluice's keys win over the user's, as in Flagger.
		md["eventMessage"], md["eventType"], md["timestamp"] = message, eventType, strconv.FormatInt(at.UnixMilli(), 10)
		p.Metadata = md
		select {
		case q.queue <- eventCall{canary: c.DeepCopy(), hook: h, body: p, queued: time.Now()}:
		default:
			q.dropped.Add(1)
			q.log.Info("Event webhook queue full: event dropped", "Canary", c.Namespace+"/"+c.Name, "webhook", h.Name)
		}
	}
}

func (q *EventQueue) work() {
	defer q.wg.Done()
	for {
		select {
		case <-q.stop:
			return
		case call := <-q.queue:
			// Event hooks get at least two retries: losing them is cheap to avoid.
			if call.hook.Retries < 2 {
				call.hook.Retries = 2
			}
			if err := q.client.post(context.Background(), call.canary, call.hook, call.body, call.queued); err != nil {
				q.failed.Add(1)
				q.log.Error(err, "Event webhook failed", "Canary", call.canary.Namespace+"/"+call.canary.Name, "webhook", call.hook.Name)
			}
		}
	}
}

// Dropped is the number of events dropped because the queue was full.
func (q *EventQueue) Dropped() int64 { return q.dropped.Load() }

// Failed is the number of event calls that failed after their retries.
func (q *EventQueue) Failed() int64 { return q.failed.Load() }

// Stop stops the workers once the queued calls are made or ctx is done.
func (q *EventQueue) Stop(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		for len(q.queue) > 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		close(q.stop)
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
