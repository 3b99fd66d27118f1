package eventrec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedeventsv1 "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// env is a real etcd and kube-apiserver: the Events are written to it.
var env *testenv.Environment

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(scheme())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	return s
}

// rig is a Broadcaster on the real API server with a fake clock, and the
// namespace and object its events are about.
type rig struct {
	b      *Broadcaster
	sink   *countingSink
	clock  *clocktesting.FakeClock
	logs   *logBuffer
	ns     string
	object *corev1.ConfigMap
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "eventrec")
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	cl, err := typedeventsv1.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	sink := &countingSink{EventSink: &events.EventSinkImpl{Interface: cl}}
	b := NewBroadcaster(sink, scheme(), logs.logger())
	fc := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	b.clock = fc
	b.hostname = "host-a"
	return &rig{b: b, sink: sink, clock: fc, logs: logs, ns: ns, object: cm}
}

// start runs the broadcaster until the test ends.
func (r *rig) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.b.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// events lists the Events of the rig's namespace.
func (r *rig) events(t *testing.T) []eventsv1.Event {
	t.Helper()
	var l eventsv1.EventList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(r.ns)); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// waitEvents waits until the namespace holds n Events whose series count
// (1 for a single event) is count, and returns them.
func (r *rig) waitEvents(t *testing.T, n int, count int32) []eventsv1.Event {
	t.Helper()
	var got []eventsv1.Event
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = r.events(t)
		if len(got) == n && (n == 0 || seriesCount(&got[0]) == count) {
			return got
		}
	}
	t.Fatalf("want %d events with count %d, have %s", n, count, describe(got))
	return nil
}

// settle waits until the broadcaster has written every queued event.
func (r *rig) settle(t *testing.T, writes int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r.sink.total() >= writes {
			return
		}
	}
	t.Fatalf("want %d writes, have %d", writes, r.sink.total())
}

func seriesCount(ev *eventsv1.Event) int32 {
	if ev.Series == nil {
		return 1
	}
	return ev.Series.Count
}

func describe(evs []eventsv1.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "[%s %s %q count=%d] ", ev.Name, ev.Reason, ev.Note, seriesCount(&ev))
	}
	return fmt.Sprintf("%d: %s", len(evs), b.String())
}

// countingSink counts the writes and can fail the first ones as an
// unreachable API server does.
type countingSink struct {
	events.EventSink
	mu               sync.Mutex
	creates, patches int
	failures         int
	patchData        []string
	beforePatch      func()
}

func (s *countingSink) setBeforePatch(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforePatch = f
}

func (s *countingSink) fail() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	}
	return nil
}

func (s *countingSink) Create(ctx context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	s.mu.Lock()
	s.creates++
	s.mu.Unlock()
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.EventSink.Create(ctx, ev)
}

func (s *countingSink) Patch(ctx context.Context, ev *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	s.mu.Lock()
	s.patches++
	s.patchData = append(s.patchData, string(data))
	before := s.beforePatch
	s.mu.Unlock()
	if before != nil {
		before()
	}
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.EventSink.Patch(ctx, ev, data)
}

func (s *countingSink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates + s.patches
}

func (s *countingSink) data() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.patchData...)
}

func (s *countingSink) counts() (creates, patches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates, s.patches
}

// cached is how many events the cache remembers.
func (b *Broadcaster) cached() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.cache)
}

// logBuffer keeps the log lines of a broadcaster.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestRecorder_WritesTheEventAsClientGoDoes(t *testing.T) {
	r := newRig(t)
	r.start(t)
	r.b.NewRecorder("sluice").Eventf(r.object, nil, corev1.EventTypeWarning, "Halted", "Analysis", "Halt advancement %s: %d failed checks", "podinfo", 2)

	got := r.waitEvents(t, 1, 1)[0]
	if !strings.HasPrefix(got.Name, "podinfo.") {
		t.Errorf("name %q: want podinfo.<hex>, as client-go names events", got.Name)
	}
	if got.Type != corev1.EventTypeWarning || got.Reason != "Halted" || got.Action != "Analysis" ||
		got.Note != "Halt advancement podinfo: 2 failed checks" {
		t.Errorf("type/reason/action/note = %s/%s/%s/%q", got.Type, got.Reason, got.Action, got.Note)
	}
	if got.ReportingController != "sluice" || got.ReportingInstance != "sluice-host-a" {
		t.Errorf("reporting controller/instance = %s/%s, want sluice/sluice-host-a", got.ReportingController, got.ReportingInstance)
	}
	want := corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: r.ns, Name: "podinfo",
		UID: r.object.UID, ResourceVersion: r.object.ResourceVersion}
	if got.Regarding != want {
		t.Errorf("regarding = %+v, want %+v", got.Regarding, want)
	}
	if got.Related != nil || got.Series != nil {
		t.Errorf("related %v, series %v: want neither", got.Related, got.Series)
	}
	if !got.EventTime.Time.Equal(r.clock.Now()) {
		t.Errorf("eventTime %v, want the clock's %v", got.EventTime, r.clock.Now())
	}
	if !strings.Contains(r.logs.String(), `"reason"="Halted"`) {
		t.Errorf("the event is not logged at V(1):\n%s", r.logs)
	}
}

func TestRecorder_RepeatsBecomeOneSeries(t *testing.T) {
	r := newRig(t)
	r.start(t)
	rec := r.b.NewRecorder("sluice")
	// The note is not part of the key (nor is it in client-go's).
	for i := range 3 {
		rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "weight %d", i*10)
		r.clock.Step(time.Second)
	}
	r.settle(t, 2)
	got := r.waitEvents(t, 1, 2)[0]
	if got.Note != "weight 0" {
		t.Errorf("note %q: the series is the first event's", got.Note)
	}
	if creates, patches := r.sink.counts(); creates != 1 || patches != 1 {
		t.Errorf("creates %d, patches %d: want 1 and 1 (the third repeat is counted in memory)", creates, patches)
	}
	if data := r.sink.data(); len(data) != 1 || !strings.HasPrefix(data[0], `{"series":{"count":2,"lastObservedTime":"2026-12-07T12:00:01.`) {
		t.Errorf("patch %q: want the series alone, as client-go's two-way merge patch", data)
	}

	// Quiet for the finish time: the final count is written, the entry
	// forgotten, and the next one starts a new Event.
	r.clock.Step(finishTime + time.Second)
	r.b.finish(context.Background())
	got = r.waitEvents(t, 1, 3)[0]
	if !got.Series.LastObservedTime.Time.Equal(time.Date(2026, 12, 7, 12, 0, 2, 0, time.UTC)) {
		t.Errorf("lastObservedTime %v, want the third repeat's", got.Series.LastObservedTime)
	}
	if n := r.b.cached(); n != 0 {
		t.Errorf("%d entries cached after the series ended, want 0", n)
	}
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "again")
	r.settle(t, 4)
	if evs := r.events(t); len(evs) != 2 {
		t.Errorf("want a new Event after the series ended, have %s", describe(evs))
	}
}

func TestRecorder_OtherObjectVersionIsAnotherEvent(t *testing.T) {
	r := newRig(t)
	r.start(t)
	rec := r.b.NewRecorder("sluice")
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
	r.settle(t, 1)
	r.object.Data = map[string]string{"a": "b"}
	if err := env.Client.Update(context.Background(), r.object); err != nil {
		t.Fatal(err)
	}
	// Events are named after the object and the time (as client-go's are).
	r.clock.Step(time.Millisecond)
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "two")
	// Another reason, another controller, a related object: each its own.
	r.clock.Step(time.Millisecond)
	r.b.NewRecorder("sluice-gitsync").Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "three")
	r.clock.Step(time.Millisecond)
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Progressing", "Reconcile", "four")
	r.clock.Step(time.Millisecond)
	rec.Eventf(r.object, r.object, corev1.EventTypeNormal, "Progressing", "Reconcile", "five")
	r.settle(t, 5)
	evs := r.waitEvents(t, 5, 1)
	for _, ev := range evs {
		if ev.Series != nil {
			t.Errorf("event %q is a series: %s", ev.Note, describe(evs))
		}
	}
}

func TestRecorder_SeriesOfAVanishedEventIsCreated(t *testing.T) {
	r := newRig(t)
	r.start(t)
	rec := r.b.NewRecorder("sluice")
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
	first := r.waitEvents(t, 1, 1)[0]
	// Events expire (the API server's --event-ttl) or are deleted.
	if err := env.Client.Delete(context.Background(), &first); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(t, 0, 0)
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "two")
	got := r.waitEvents(t, 1, 2)[0]
	if got.Name != first.Name || got.Note != "two" {
		t.Errorf("recreated %s %q, want the first's name %s with this occurrence's note", got.Name, got.Note, first.Name)
	}
}

func TestRecorder_RetriesWhileTheAPIServerIsUnreachable(t *testing.T) {
	r := newRig(t)
	r.b.retryDelay = time.Millisecond
	r.sink.failures = 3
	r.start(t)
	r.b.NewRecorder("sluice").Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
	// Each retry waits on the fake clock.
	for deadline := time.Now().Add(15 * time.Second); r.sink.total() < 4 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.clock.Step(time.Second)
	}
	r.waitEvents(t, 1, 1)
	if creates, _ := r.sink.counts(); creates != 4 {
		t.Errorf("creates %d, want 3 failed and 1 written", creates)
	}
}

func TestRecorder_GivesUpOnARejectedEvent(t *testing.T) {
	r := newRig(t)
	r.start(t)
	gone := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ghost", Namespace: "no-such-namespace", UID: "u"}}
	r.b.NewRecorder("sluice").Eventf(gone, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
	r.settle(t, 1)
	time.Sleep(200 * time.Millisecond)
	r.clock.Step(time.Minute)
	time.Sleep(50 * time.Millisecond)
	if creates, _ := r.sink.counts(); creates != 1 {
		t.Errorf("creates %d: a rejected event is not retried", creates)
	}
	if !strings.Contains(r.logs.String(), "The API server rejected an event") {
		t.Errorf("the rejection is not logged:\n%s", r.logs)
	}
}

func TestRecorder_RefusesWhatClientGoRefuses(t *testing.T) {
	r := newRig(t)
	rec := r.b.NewRecorder("sluice")
	rec.Eventf(r.object, nil, "Critical", "Synced", "Reconcile", "one")
	// An object of a kind the scheme does not know has no reference.
	rec.Eventf(&unknownKind{}, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "two")
	for _, q := range r.b.queues {
		if len(q) != 0 {
			t.Fatalf("an event was queued")
		}
	}
	if logs := r.logs.String(); !strings.Contains(logs, "Unsupported event type") || !strings.Contains(logs, "Could not construct a reference") {
		t.Errorf("the refusals are not logged:\n%s", logs)
	}
}

// unknownKind is an object the scheme does not know.
type unknownKind struct{ corev1.ConfigMap }

func (u *unknownKind) GetObjectKind() schema.ObjectKind { return &metav1.TypeMeta{} }
func (u *unknownKind) DeepCopyObject() runtime.Object   { return u }

func TestRecorder_DropsWhenTheQueueIsFullAndSaysSo(t *testing.T) {
	r := newRig(t)
	rec := r.b.NewRecorder("sluice")
	// Not started: the queues fill up.
	for range workers*queueSize + 50 {
		rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
		r.clock.Step(time.Millisecond)
	}
	// Isomorphic events go to one queue: 256 are kept, the rest dropped.
	if n := r.b.dropped.Load(); n != int64(workers*queueSize+50-queueSize) {
		t.Errorf("dropped %d", n)
	}
	r.start(t)
	r.waitEvents(t, 1, 2)
	// The drop is logged by the worker that writes the next event.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(r.logs.String(), "Events dropped") {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(r.logs.String(), fmt.Sprintf(`"dropped"=%d`, workers*queueSize+50-queueSize)) {
		t.Errorf("the drop is not logged with its count:\n%s", r.logs)
	}
}

func TestRecorder_WritesWhatIsQueuedAtShutdown(t *testing.T) {
	r := newRig(t)
	rec := r.b.NewRecorder("sluice")
	for i := range 3 {
		rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Reason"+fmt.Sprint(i), "Reconcile", "one")
		r.clock.Step(time.Millisecond)
	}
	// The manager stops before the workers got to the queue.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if evs := r.events(t); len(evs) != 3 {
		t.Errorf("want the 3 queued events written, have %s\n%s", describe(evs), r.logs)
	}
}

func TestRecorder_FinishForgetsOldSingleEventsOnly(t *testing.T) {
	r := newRig(t)
	rec := r.b.NewRecorder("sluice")
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Old", "Reconcile", "one")
	r.clock.Step(finishTime - time.Minute)
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Young", "Reconcile", "two")
	r.start(t)
	r.settle(t, 2)
	r.clock.Step(2 * time.Minute)
	r.b.finish(context.Background())
	if n := r.b.cached(); n != 1 {
		t.Errorf("%d cached, want the young one only", n)
	}
	if _, patches := r.sink.counts(); patches != 0 {
		t.Errorf("%d patches: a single event has no series to write", patches)
	}
}

func TestRecorder_FinishKeepsASeriesThatWentOn(t *testing.T) {
	r := newRig(t)
	r.start(t)
	rec := r.b.NewRecorder("sluice")
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
	rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "two")
	r.waitEvents(t, 1, 2)
	r.clock.Step(finishTime + time.Second)
	// A repeat lands between the collection and the write of the final
	// count: the series is open again, and stays.
	r.sink.setBeforePatch(func() {
		ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: r.ns}, Type: corev1.EventTypeNormal,
			Reason: "Synced", Action: "Reconcile", ReportingController: "sluice", ReportingInstance: "sluice-host-a",
			Regarding: corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: r.ns, Name: "podinfo",
				UID: r.object.UID, ResourceVersion: r.object.ResourceVersion}}
		r.b.observe(keyOf(ev), ev)
	})
	r.b.finish(context.Background())
	if n := r.b.cached(); n != 1 {
		t.Errorf("%d cached: the series went on, it must stay", n)
	}
}

func TestRecorder_RefreshWritesOpenSeriesAndForgetsVanishedOnes(t *testing.T) {
	r := newRig(t)
	r.start(t)
	rec := r.b.NewRecorder("sluice")
	for range 4 {
		rec.Eventf(r.object, nil, corev1.EventTypeNormal, "Synced", "Reconcile", "one")
		r.clock.Step(time.Second)
	}
	r.waitEvents(t, 1, 2)
	r.settle(t, 2)
	r.b.refresh(context.Background())
	ev := r.waitEvents(t, 1, 4)[0]
	if n := r.b.cached(); n != 1 {
		t.Fatalf("%d cached after a refresh, want the series", n)
	}
	if err := env.Client.Delete(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(t, 0, 0)
	r.b.refresh(context.Background())
	if n := r.b.cached(); n != 0 {
		t.Errorf("%d cached: a series whose Event is gone is forgotten", n)
	}
	if evs := r.events(t); len(evs) != 0 {
		t.Errorf("the refresh re-created %s", describe(evs))
	}
}

func TestWrite_ClassifiesErrors(t *testing.T) {
	b := NewBroadcaster(nil, scheme(), logr.Discard())
	gr := schema.GroupResource{Group: "events.k8s.io", Resource: "events"}
	for _, tc := range []struct {
		name   string
		err    error
		patch  bool
		retry  bool
		writes int
	}{
		{"written", nil, false, false, 1},
		{"unreachable", errors.New("connection refused"), false, true, 1},
		{"rejected", apierrors.NewForbidden(gr, "x", errors.New("no")), false, false, 1},
		{"exists on create", apierrors.NewAlreadyExists(gr, "x"), false, false, 1},
		{"series vanished then exists", apierrors.NewAlreadyExists(gr, "x"), true, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &errSink{err: tc.err}
			if tc.patch {
				s.patchErr = apierrors.NewNotFound(gr, "x")
			}
			b.sink = s
			ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", ResourceVersion: "7"}}
			if got := b.write(context.Background(), ev, tc.patch); got != tc.retry {
				t.Errorf("retry = %v, want %v", got, tc.retry)
			}
			if s.calls != tc.writes {
				t.Errorf("%d calls, want %d", s.calls, tc.writes)
			}
			if tc.patch && ev.ResourceVersion != "" {
				t.Errorf("a create carries resourceVersion %q", ev.ResourceVersion)
			}
		})
	}
}

// errSink answers every create with err and every patch with patchErr.
type errSink struct {
	err, patchErr error
	calls         int
}

func (s *errSink) Create(context.Context, *eventsv1.Event) (*eventsv1.Event, error) {
	s.calls++
	return nil, s.err
}

func (s *errSink) Update(context.Context, *eventsv1.Event) (*eventsv1.Event, error) {
	return nil, errors.New("not used")
}

func (s *errSink) Patch(context.Context, *eventsv1.Event, []byte) (*eventsv1.Event, error) {
	s.calls++
	return nil, s.patchErr
}

func TestKeyOf_FieldsAreNotAmbiguous(t *testing.T) {
	a := &eventsv1.Event{Reason: "ab", Action: "c"}
	b := &eventsv1.Event{Reason: "a", Action: "bc"}
	if keyOf(a) == keyOf(b) {
		t.Error("fields run into each other")
	}
	c := &eventsv1.Event{Reason: "a", Related: &corev1.ObjectReference{}}
	d := &eventsv1.Event{Reason: "a"}
	if keyOf(c) != keyOf(d) {
		t.Error("an empty related reference is no related reference, as in client-go")
	}
}
