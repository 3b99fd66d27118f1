// Package eventrec records Kubernetes events (events.k8s.io/v1) for
// Sluice's controllers, the way client-go's events broadcaster does, with a
// cache a hundred times smaller.
//
// client-go's broadcaster (k8s.io/client-go/tools/events) counts repeats of
// an event as a series: a second isomorphic event (same type, action,
// reason, reporting controller and instance, regarding and related object)
// patches the first one's series instead of creating a new Event, later
// repeats only bump the count in memory, a series is written again every 30
// minutes, and its final count once it has been quiet for 6 minutes. To do
// so it keeps a full copy of every event it wrote, keyed by two full object
// references, for 6 to 12 minutes. With a thousand Canaries each writing an
// event per step that cache held 7 MiB of live heap, and controller-runtime
// offers no way to shrink it.
//
// This package keeps the same semantics with, per event, a 128-bit hash of
// the isomorphism key, the Event's name and namespace, two times and a
// count. The one thing it cannot do without the full event is re-create a
// series that the periodic write finds deleted (events have a TTL); client-go
// re-creates it, this package forgets it: the next repeat starts a new Event.
package eventrec

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"
)

// The timings and limits of client-go's broadcaster, kept so that events
// read the same in `kubectl events` whichever recorder wrote them.
const (
	// finishTime is how long a series stays open after its last repeat,
	// and how long a single event is remembered.
	finishTime = 6 * time.Minute
	// refreshTime is how often an open series is written again.
	refreshTime = 30 * time.Minute
	// maxTries is how many times an event is sent while the API server
	// cannot be reached.
	maxTries = 12
	// retryDelay is the pause between those tries (with 25% jitter).
	retryDelay = 10 * time.Second
	// queueSize is how many events wait per worker; more are dropped, as
	// client-go drops them, so that a slow API server never blocks a
	// reconcile.
	queueSize = 256
	// workers is how many events are written at once.
	workers = 4
	// drainTimeout bounds the writing of the queued events at shutdown.
	drainTimeout = 5 * time.Second
)

// key is a hash of what makes two events isomorphic.
type key [16]byte

// entry is what the cache keeps of an event it wrote: about 70 bytes and
// the name, where client-go keeps the whole Event and two references.
type entry struct {
	name, namespace string
	// first is when the Event was created, last when the series was last
	// observed (zero until it is a series), in Unix nanoseconds.
	first, last int64
	// count is 1 for a single event, the series' count after.
	count int32
}

// Broadcaster writes the events of its recorders to the API server. Start it
// (it is a manager.Runnable); events recorded before it starts wait in its
// queues.
type Broadcaster struct {
	sink     events.EventSink
	scheme   *runtime.Scheme
	log      logr.Logger
	clock    clock.Clock
	hostname string
	// retryDelay is retryDelay, shorter in tests.
	retryDelay time.Duration

	queues  []chan queued
	dropped atomic.Int64

	mu    sync.Mutex
	cache map[key]entry
}

// NewBroadcaster returns a Broadcaster that writes to sink (in production
// &events.EventSinkImpl{Interface: clientset.EventsV1()}), naming objects
// with scheme's kinds. log receives each event at V(1), as
// controller-runtime logs them, and the write errors.
func NewBroadcaster(sink events.EventSink, scheme *runtime.Scheme, log logr.Logger) *Broadcaster {
	hostname, _ := os.Hostname()
	b := &Broadcaster{sink: sink, scheme: scheme, log: log, clock: clock.RealClock{}, hostname: hostname,
		retryDelay: retryDelay, cache: map[key]entry{}}
	for range workers {
		b.queues = append(b.queues, make(chan queued, queueSize))
	}
	return b
}

// NeedLeaderElection is false: a replica waiting for the lease records no
// events, but one that does must never wait for the lease to write them.
func (b *Broadcaster) NeedLeaderElection() bool { return false }

// Start writes events until ctx is done, then what is queued for up to
// drainTimeout, so that the last events of a controller that stops (a
// release's Succeeded) are not lost; and runs the loops that write open
// series again and close quiet ones.
func (b *Broadcaster) Start(ctx context.Context) error {
	// Writes outlive ctx by drainTimeout, and keep its values.
	writes, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drainTimeout, cancel) })
	defer stop()
	var wg sync.WaitGroup
	for _, q := range b.queues {
		wg.Go(func() { b.work(ctx, writes, q) })
	}
	wg.Go(func() { wait.UntilWithContext(ctx, b.refresh, refreshTime) })
	wg.Go(func() { wait.UntilWithContext(ctx, b.finish, finishTime) })
	wg.Wait()
	return nil
}

// NewRecorder returns the recorder of one reporting controller.
func (b *Broadcaster) NewRecorder(controller string) events.EventRecorder {
	return &recorder{b: b, controller: controller, instance: controller + "-" + b.hostname}
}

// recorder is an events.EventRecorder of one controller.
type recorder struct {
	b                    *Broadcaster
	controller, instance string
}

// Eventf builds the Event as client-go does and queues it.
func (r *recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	now := r.b.clock.Now()
	message := note
	if len(args) > 0 {
		message = fmt.Sprintf(note, args...)
	}
	ref, err := reference.GetReference(r.b.scheme, regarding)
	if err != nil {
		r.b.log.Error(err, "Could not construct a reference, the event is not recorded", "reason", reason, "note", message)
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		if relatedRef, err = reference.GetReference(r.b.scheme, related); err != nil {
			r.b.log.V(1).Info("Could not construct a reference to the related object", "error", err.Error())
		}
	}
	if !util.ValidateEventType(eventtype) {
		r.b.log.Error(nil, "Unsupported event type, the event is not recorded", "type", eventtype, "reason", reason)
		return
	}
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      util.GenerateEventName(ref.Name, now.UnixNano()),
			Namespace: namespace,
		},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                message,
		Type:                eventtype,
	}
	r.b.log.V(1).Info("Event occurred", "object", ref.Namespace+"/"+ref.Name, "kind", ref.Kind,
		"type", eventtype, "reason", reason, "action", action, "note", message)
	r.b.enqueue(ev)
}

// queued is an event and its key, hashed once.
type queued struct {
	k  key
	ev *eventsv1.Event
}

// enqueue hands ev to the worker of its key, so that the repeats of one
// event are written in order; a full queue drops it.
func (b *Broadcaster) enqueue(ev *eventsv1.Event) {
	k := keyOf(ev)
	select {
	case b.queues[int(k[0])%len(b.queues)] <- queued{k: k, ev: ev}:
	default:
		b.dropped.Add(1)
	}
}

// work writes the events of one queue until ctx is done, then until the
// queue is empty or writes is done.
func (b *Broadcaster) work(ctx, writes context.Context, q <-chan queued) {
	for {
		select {
		case e := <-q:
			b.handle(writes, e)
		case <-ctx.Done():
			for writes.Err() == nil {
				select {
				case e := <-q:
					b.handle(writes, e)
				default:
					return
				}
			}
			return
		}
	}
}

// handle writes what a queued event calls for.
func (b *Broadcaster) handle(ctx context.Context, e queued) {
	if n := b.dropped.Swap(0); n > 0 {
		b.log.Error(nil, "Events dropped: the queue was full, the API server is slow or unreachable", "dropped", n)
	}
	if ev, patch := b.observe(e.k, e.ev); ev != nil {
		b.record(ctx, ev, patch)
	}
}

// observe counts ev, of key k, in the cache and says what to write: a new Event, the
// first repeat as a series patch of the first Event (patch is true), or
// nothing for later repeats, which the periodic writes carry.
func (b *Broadcaster) observe(k key, ev *eventsv1.Event) (*eventsv1.Event, bool) {
	// The series was last observed when this repeat happened, not when a
	// worker got to it.
	now := ev.EventTime.Time
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.cache[k]
	if !ok {
		b.cache[k] = entry{name: ev.Name, namespace: ev.Namespace, first: ev.EventTime.UnixNano(), count: 1}
		return ev, false
	}
	e.last = now.UnixNano()
	e.count++
	b.cache[k] = e
	if e.count > 2 {
		return nil, false
	}
	// The series belongs to the first Event: its name and time. Should
	// the patch find it gone, this one is created in its place.
	ev.Name = e.name
	ev.EventTime = metav1.MicroTime{Time: time.Unix(0, e.first)}
	ev.Series = &eventsv1.EventSeries{Count: e.count, LastObservedTime: metav1.MicroTime{Time: now}}
	return ev, true
}

// record writes ev, retrying while the API server cannot be reached, as
// client-go does.
func (b *Broadcaster) record(ctx context.Context, ev *eventsv1.Event, patch bool) {
	for try := 1; b.write(ctx, ev, patch); try++ {
		if try >= maxTries {
			b.log.Error(nil, "Unable to write an event, retry limit exceeded", "object", ev.Regarding.Namespace+"/"+ev.Regarding.Name, "reason", ev.Reason)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-b.clock.After(wait.Jitter(b.retryDelay, 0.25)):
		}
	}
}

// write sends ev once: a patch of its series, or a create (also when the
// series' Event is gone). It reports whether to try again.
func (b *Broadcaster) write(ctx context.Context, ev *eventsv1.Event, patch bool) bool {
	var err error
	if patch {
		_, err = b.sink.Patch(ctx, ev, seriesPatch(ev.Series))
	}
	if !patch || apierrors.IsNotFound(err) {
		ev.ResourceVersion = ""
		_, err = b.sink.Create(ctx, ev)
	}
	if err == nil {
		return false
	}
	log := b.log.WithValues("object", ev.Regarding.Namespace+"/"+ev.Regarding.Name, "reason", ev.Reason)
	var construct *rest.RequestConstructionError
	var status apierrors.APIStatus
	switch {
	case errors.As(err, &construct):
		log.Error(err, "Unable to construct an event, not retrying")
		return false
	case apierrors.IsAlreadyExists(err) && patch:
		// The patch found no Event, and the create found one: a repeat
		// came right after the first event was created. Try again.
		return true
	case errors.As(err, &status):
		log.Error(err, "The API server rejected an event, not retrying")
		return false
	}
	log.Error(err, "Unable to write an event, retrying")
	return true
}

// seriesPatch is the strategic merge patch that sets a series: the one
// client-go computes between the Event without and with it.
func seriesPatch(s *eventsv1.EventSeries) []byte {
	data, _ := json.Marshal(map[string]*eventsv1.EventSeries{"series": s}) //nolint:errchkjson // a count and a time always marshal
	return data
}

// open is an open series, as the periodic loops write it.
type open struct {
	k      key
	series eventsv1.EventSeries
	event  *eventsv1.Event
}

// refresh writes every open series again, so that it outlives the events'
// TTL while it goes on.
func (b *Broadcaster) refresh(ctx context.Context) {
	b.mu.Lock()
	var todo []open
	for k, e := range b.cache {
		if e.count > 1 {
			todo = append(todo, e.open(k))
		}
	}
	b.mu.Unlock()
	for _, o := range todo {
		if _, err := b.sink.Patch(ctx, o.event, seriesPatch(&o.series)); err != nil {
			b.forgetIfGone(o, err)
		}
	}
}

// finish writes the final count of the series that have been quiet for
// finishTime and forgets them, and forgets the single events as old.
func (b *Broadcaster) finish(ctx context.Context) {
	cutoff := b.clock.Now().Add(-finishTime).UnixNano()
	b.mu.Lock()
	var todo []open
	for k, e := range b.cache {
		switch {
		case e.count == 1 && e.first < cutoff:
			delete(b.cache, k)
		case e.count > 1 && e.last < cutoff:
			todo = append(todo, e.open(k))
		}
	}
	b.mu.Unlock()
	for _, o := range todo {
		_, err := b.sink.Patch(ctx, o.event, seriesPatch(&o.series))
		if err != nil && !errors.As(err, new(apierrors.APIStatus)) {
			// The API server cannot be reached: the next round tries again.
			continue
		}
		b.mu.Lock()
		// Unless the series went on meanwhile, it is over.
		if e, ok := b.cache[o.k]; ok && e.count == o.series.Count {
			delete(b.cache, o.k)
		}
		b.mu.Unlock()
	}
}

// forgetIfGone forgets a series whose Event the API server no longer has:
// this package keeps too little to re-create it (see the package comment).
func (b *Broadcaster) forgetIfGone(o open, err error) {
	if !apierrors.IsNotFound(err) {
		b.log.Error(err, "Unable to write an event series", "event", o.event.Namespace+"/"+o.event.Name)
		return
	}
	b.mu.Lock()
	delete(b.cache, o.k)
	b.mu.Unlock()
}

// open is e as an open series to write.
func (e entry) open(k key) open {
	return open{k: k,
		series: eventsv1.EventSeries{Count: e.count, LastObservedTime: metav1.MicroTime{Time: time.Unix(0, e.last)}},
		event:  &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: e.name, Namespace: e.namespace}}}
}

// keyOf hashes what client-go's getKey compares: type, action, reason,
// reporting controller and instance, and every field of the regarding and
// related references (resourceVersion included: a Canary's events between
// two status writes are repeats, across them they are not).
func keyOf(ev *eventsv1.Event) key {
	h := sha256.New()
	field := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	ref := func(r *corev1.ObjectReference) {
		if r == nil {
			r = &corev1.ObjectReference{}
		}
		for _, s := range []string{r.Kind, r.Namespace, r.Name, string(r.UID), r.APIVersion, r.ResourceVersion, r.FieldPath} {
			field(s)
		}
	}
	for _, s := range []string{ev.Type, ev.Action, ev.Reason, ev.ReportingController, ev.ReportingInstance} {
		field(s)
	}
	ref(&ev.Regarding)
	ref(ev.Related)
	var k key
	copy(k[:], h.Sum(nil))
	return k
}
