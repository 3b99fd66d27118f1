package eventrec

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// clientGoKey is the shape of client-go's eventKey (unexported), to measure
// what its cache holds per event beside this package's.
type clientGoKey struct {
	eventType, action, reason, reportingController, reportingInstance string
	regarding, related                                                corev1.ObjectReference
}

// canaryEvent is an event as the engine writes one per analysis step.
func canaryEvent(i int) *eventsv1.Event {
	name := fmt.Sprintf("app-%04d", i)
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", name, 1733572800000000000+int64(i)), Namespace: "bench-events"},
		EventTime:           metav1.MicroTime{Time: time.Now()},
		ReportingController: "sluice",
		ReportingInstance:   "sluice-sluice-7d9f8b6c4-x2x9q",
		Action:              "Analysis",
		Reason:              "StepCompleted",
		Note:                fmt.Sprintf("Advance %s.bench-events canary weight 30 (step 3 of 4): all 2 metric checks passed", name),
		Type:                corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{Kind: "Canary", APIVersion: "sluice.dev/v1beta1", Namespace: "bench-events", Name: name,
			UID: types.UID(fmt.Sprintf("6f1c2a9e-4b7d-4e0a-9c3b-%012d", i)), ResourceVersion: fmt.Sprint(100000 + i)},
	}
}

// BenchmarkCache_HeapPerEvent measures the heap the series cache keeps per
// event written, here and in client-go's broadcaster (a deep copy of the
// Event under a key of two object references), for events shaped like the
// engine's. Each cache keeps what it keeps of the events alive and nothing
// else: the events are dropped before each reading.
func BenchmarkCache_HeapPerEvent(b *testing.B) {
	const n = 10000
	events := func() []*eventsv1.Event {
		evs := make([]*eventsv1.Event, n)
		for i := range evs {
			evs[i] = canaryEvent(i)
		}
		return evs
	}
	for range b.N {
		var before, mid, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		br := NewBroadcaster(nil, scheme(), logr.Discard())
		for _, ev := range events() {
			br.observe(keyOf(ev), ev)
		}
		runtime.GC()
		runtime.ReadMemStats(&mid)
		upstream := map[clientGoKey]*eventsv1.Event{}
		for _, ev := range events() {
			c := ev.DeepCopy()
			upstream[clientGoKey{c.Type, c.Action, c.Reason, c.ReportingController, c.ReportingInstance, c.Regarding, corev1.ObjectReference{}}] = c
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(mid.HeapAlloc-before.HeapAlloc)/n, "heap-B/event")
		b.ReportMetric(float64(after.HeapAlloc-mid.HeapAlloc)/n, "client-go-heap-B/event")
		runtime.KeepAlive(br)
		runtime.KeepAlive(upstream)
	}
}
