package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The Dispatcher reads AlertProviders (cached, so list and watch) and their
// Secrets (uncached get).
// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	// Reader reads AlertProviders (the manager's cached client).
	Reader client.Reader
	// SecretReader reads the providers' Secrets (the manager's uncached
	// APIReader, so that Secrets are not cached cluster-wide).
	SecretReader client.Reader
	// Registerer receives the counters (controller-runtime's metrics.Registry);
	// nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs drops and failed deliveries.
	Logger logr.Logger
	// DefaultProvider, when set, receives every event of Canaries without
	// analysis.alerts.
	DefaultProvider *types.NamespacedName
	// Globals, set by the manager's flags (global.go), receive every event
	// of Canaries without analysis.alerts too.
	Globals []GlobalNotifier
	// ClusterName, when set, is shown in every notification (Flagger's
	// -cluster-name).
	ClusterName string
	// Workers deliver in parallel (default 4).
	Workers int
	// QueueSize bounds the events waiting for a worker (default 256); when
	// the queue is full, events are dropped and counted.
	QueueSize int
	// MaxAttempts bounds the attempts of one delivery (default 4).
	MaxAttempts int
	// Backoff is the first wait between attempts; it doubles (default 1s).
	Backoff time.Duration
	// Timeout bounds one attempt (default DefaultTimeout).
	Timeout time.Duration
	// DrainTimeout bounds the drain when Start's context ends (default 10s).
	DrainTimeout time.Duration
	// Clients shares HTTP connections (default: a new set).
	Clients *Clients
}

// job is one event for one provider.
type job struct {
	provider types.NamespacedName
	alert    string
	event    Event
}

// Dispatcher routes Canary events to their alerts and delivers them in the
// background. Dispatch never blocks.
type Dispatcher struct {
	opts  DispatcherOptions
	queue chan job
	log   logr.Logger

	mu      sync.RWMutex
	stopped bool
	wg      sync.WaitGroup
	// ctx ends in-flight deliveries when a drain times out.
	ctx    context.Context
	cancel context.CancelFunc

	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	dropped   prometheus.Counter
	// newNotifier is New, replaceable in tests.
	newNotifier func(ctx context.Context, reader client.Reader, p *sluicev1beta1.AlertProvider, opts ...Option) (Notifier, error)
}

// NewDispatcher starts a Dispatcher's workers and registers its counters:
// sluice_notifications_delivered_total{type,namespace},
// sluice_notifications_failed_total{type,namespace} and
// sluice_notifications_dropped_total (metrics.go).
func NewDispatcher(opts DispatcherOptions) (*Dispatcher, error) {
	if opts.Reader == nil {
		return nil, errors.New("notify: a Reader for AlertProviders is required")
	}
	if p := opts.DefaultProvider; p != nil && (p.Namespace == "" || p.Name == "") {
		return nil, fmt.Errorf("notify: the default AlertProvider must be namespace/name, got %q", p.String())
	}
	if err := validateGlobals(opts.Globals); err != nil {
		return nil, err
	}
	if opts.SecretReader == nil {
		opts.SecretReader = opts.Reader
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 4
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.Clients == nil {
		opts.Clients = NewClients()
	}
	d := &Dispatcher{
		opts:        opts,
		queue:       make(chan job, opts.QueueSize),
		log:         opts.Logger.WithName("notify"),
		delivered:   newDeliveredCounter(),
		failed:      newFailedCounter(),
		dropped:     newDroppedCounter(),
		newNotifier: New,
	}
	if opts.Registerer != nil {
		var err error
		if d.delivered, err = register(opts.Registerer, d.delivered); err != nil {
			return nil, err
		}
		if d.failed, err = register(opts.Registerer, d.failed); err != nil {
			return nil, err
		}
		if d.dropped, err = register(opts.Registerer, d.dropped); err != nil {
			return nil, err
		}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for range opts.Workers {
		d.wg.Add(1)
		go d.work()
	}
	return d, nil
}

// register registers c, or reuses the collector already registered under
// its name (a second Dispatcher on the same registry).
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("failed to register the notification metrics: %w", err)
	}
	return c, nil
}

// Dispatch queues e for every alert of c that accepts its severity, or for
// the default provider when c has no alerts. It never blocks: when the queue
// is full the event is dropped and counted.
func (d *Dispatcher) Dispatch(c *sluicev1beta1.Canary, e Event) {
	if c == nil {
		return
	}
	// The caller may reuse c; the workers get their own copy.
	c = c.DeepCopy()
	if e.Canary == nil {
		e.Canary = c
	} else {
		e.Canary = e.Canary.DeepCopy()
	}
	failed := make([]sluicev1beta1.CheckResult, len(e.Failed))
	for i := range e.Failed {
		e.Failed[i].DeepCopyInto(&failed[i])
	}
	if e.Failed != nil {
		e.Failed = failed
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Cluster == "" {
		e.Cluster = d.opts.ClusterName
	}
	for _, j := range d.route(c, e) {
		d.enqueue(j)
	}
}

// route returns the jobs of an event: one per alert whose severity accepts
// the event's, or one for the default provider when c has no alerts.
func (d *Dispatcher) route(c *sluicev1beta1.Canary, e Event) []job {
	var alerts []sluicev1beta1.CanaryAlert
	if c.Spec.Analysis != nil {
		alerts = c.Spec.Analysis.Alerts
	}
	if len(alerts) == 0 {
		jobs := d.globalJobs(e)
		if d.opts.DefaultProvider != nil {
			jobs = append(jobs, job{provider: *d.opts.DefaultProvider, alert: "default", event: e})
		}
		return jobs
	}
	var jobs []job
	for _, a := range alerts {
		if !Accepts(a.Severity, e.Severity) {
			continue
		}
		ns := a.ProviderRef.Namespace
		if ns == "" {
			ns = c.Namespace
		}
		jobs = append(jobs, job{provider: types.NamespacedName{Namespace: ns, Name: a.ProviderRef.Name}, alert: a.Name, event: e})
	}
	return jobs
}

// DispatchTo queues e for one AlertProvider, for a caller that routes its
// events itself (GitSync's spec.alerts, rate-limited by their status). It
// never blocks: when the queue is full the event is dropped and counted.
func (d *Dispatcher) DispatchTo(provider types.NamespacedName, alert string, e Event) {
	if e.GitSync != nil {
		gi := *e.GitSync
		gi.Objects = append([]string(nil), gi.Objects...)
		e.GitSync = &gi
	}
	e.Pipeline = copyPipeline(e.Pipeline)
	if e.Canary != nil {
		e.Canary = e.Canary.DeepCopy()
	}
	e.Failed = append([]sluicev1beta1.CheckResult(nil), e.Failed...)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Cluster == "" {
		e.Cluster = d.opts.ClusterName
	}
	d.enqueue(job{provider: provider, alert: alert, event: e})
}

// subject names the object of an event for the logs.
func subject(e Event) []any {
	if e.GitSync != nil {
		return []any{"GitSync", klog.KRef(e.GitSync.Namespace, e.GitSync.Name)}
	}
	if e.Pipeline != nil {
		return []any{"Pipeline", klog.KRef(e.Pipeline.Namespace, e.Pipeline.Name), "stage", e.Pipeline.Stage}
	}
	return []any{"Canary", klog.KObj(e.Canary)}
}

func (d *Dispatcher) enqueue(j job) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.stopped {
		d.drop(j, "the dispatcher is stopped")
		return
	}
	select {
	case d.queue <- j:
	default:
		d.drop(j, "the notification queue is full")
	}
}

func (d *Dispatcher) drop(j job, why string) {
	d.dropped.Inc()
	d.log.WithValues(subject(j.event)...).Info("Dropping a notification: "+why, "alert", j.alert, "AlertProvider", j.provider, "reason", j.event.Reason)
}

// work delivers queued jobs until the queue is closed.
func (d *Dispatcher) work() {
	defer d.wg.Done()
	for j := range d.queue {
		d.deliver(d.ctx, j)
	}
}

// deliver resolves the provider, builds its notifier and posts, retrying
// transient errors with exponential backoff.
func (d *Dispatcher) deliver(ctx context.Context, j job) {
	log := d.log.WithValues(subject(j.event)...).WithValues("alert", j.alert, "AlertProvider", j.provider)
	typ := "unknown"
	wait := d.opts.Backoff
	var err error
	attempt := 1
	for ; ; attempt++ {
		var n Notifier
		var permanent bool
		if n, typ, permanent, err = d.notifier(ctx, j.provider); err == nil {
			if err = n.Post(ctx, j.event); err == nil {
				d.delivered.WithLabelValues(typ, namespaceOf(j)).Inc()
				log.V(1).Info("Delivered a notification", "type", typ, "attempts", attempt)
				return
			}
			permanent = IsPermanent(err)
		}
		if permanent || attempt >= d.opts.MaxAttempts || ctx.Err() != nil {
			break
		}
		log.V(1).Info("Retrying a notification", "type", typ, "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
	d.failed.WithLabelValues(typ, namespaceOf(j)).Inc()
	// Errors of this package and of the API server carry no credentials.
	log.Error(err, "Failed to deliver a notification", "type", typ, "attempts", attempt)
}

// notifier reads the AlertProvider and builds its notifier. A missing
// provider or an invalid configuration is permanent.
func (d *Dispatcher) notifier(ctx context.Context, key types.NamespacedName) (Notifier, string, bool, error) {
	if n, typ, ok, err := d.globalNotifier(ctx, key); ok {
		return n, typ, errors.Is(err, ErrUnsupportedType), err
	}
	var p sluicev1beta1.AlertProvider
	if err := d.opts.Reader.Get(ctx, key, &p); err != nil {
		return nil, "unknown", false, fmt.Errorf("failed to read AlertProvider %s: %w", key, err)
	}
	n, err := d.newNotifier(ctx, d.opts.SecretReader, &p, WithClients(d.opts.Clients), WithTimeout(d.opts.Timeout))
	if err != nil {
		// A missing Secret may appear later; a bad type or address will not.
		return nil, p.Spec.Type, errors.Is(err, ErrUnsupportedType), err
	}
	return n, p.Spec.Type, false, nil
}

// Stop stops accepting events and waits until the queued ones are delivered
// or ctx ends; then in-flight deliveries are cancelled.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.stopped {
		d.stopped = true
		close(d.queue)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-done
		return fmt.Errorf("notifications not drained: %w", ctx.Err())
	}
}

// Start implements manager.Runnable: it waits for ctx to end, then drains
// the queue for at most DrainTimeout.
func (d *Dispatcher) Start(ctx context.Context) error {
	<-ctx.Done()
	// ctx is done: draining gets its own deadline, and keeps ctx's values.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.DrainTimeout)
	defer cancel()
	return d.Stop(drain)
}

// NeedLeaderElection is false: the Dispatcher only sends what the engine
// (which runs on the leader) dispatches, and must drain on every replica.
func (d *Dispatcher) NeedLeaderElection() bool { return false }
