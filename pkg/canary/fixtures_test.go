package canary_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/router"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	istiorouter "github.com/sluice-cd/sluice/pkg/router/istio"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	traefikrouter "github.com/sluice-cd/sluice/pkg/router/traefik"
	"github.com/sluice-cd/sluice/pkg/testenv"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// env is a real control plane with kube-controller-manager, the scheduler and
// kwok, so workloads get pods that become ready and owned objects are
// garbage-collected.
var (
	env    *testenv.Environment
	scheme = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	_ = gatewayv1.Install(scheme)
	if os.Getenv("SLUICE_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	}
	flag.Parse()
	if fuzzWorker := flag.Lookup("test.fuzzworker"); fuzzWorker != nil && fuzzWorker.Value.String() == "true" {
		// A fuzz worker only runs FuzzDecide (Decide is pure). A control
		// plane started here would outlive the worker, which the fuzzer
		// kills, and keep its output open: the fuzzer would never end.
		os.Exit(m.Run())
	}
	var err error
	env, err = testenv.Start(scheme, testenv.WithControllers(), testenv.WithProviderCRDs(), testenv.WithCRDPaths("bin/crds/knative"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// fixture is one test's namespace, its own manager running the canary
// controller on that namespace, and a webhook server.
type fixture struct {
	t      *testing.T
	g      *WithT
	ns     string
	ctx    context.Context
	stop   func()
	hooks  *hookServer
	routes *routesRouter
	alerts *recordingAnnouncer
}

// recordingAnnouncer records announcements (pkg/notify is tested on its own).
type recordingAnnouncer struct {
	mu   sync.Mutex
	seen []string
}

func (a *recordingAnnouncer) Announce(c *sluicev1beta1.Canary, e canary.Event, severity string, _ []sluicev1beta1.CheckResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, c.Name+"/"+e.Reason+"/"+severity)
}

func (a *recordingAnnouncer) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

type fixtureOption func(*canary.CanaryReconciler)

// builtins are the real routers' builtin metrics, for metric checkers in tests.
func builtins() *router.Registry {
	r := router.NewRegistry()
	kubernetesrouter.Register(r)
	gatewayapirouter.Register(r)
	istiorouter.Register(r)
	traefikrouter.Register(r)
	return r
}

func withMetrics(m canary.MetricChecker) fixtureOption {
	return func(r *canary.CanaryReconciler) { r.Metrics = m }
}

func withMaxConcurrentRollouts(n int) fixtureOption {
	return func(r *canary.CanaryReconciler) { r.MaxConcurrentRollouts = n }
}

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(120 * time.Second) // generous: kwok pods on a loaded 2-core machine
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	ns, err := env.Namespace(ctx, "canary")
	g.Expect(err).NotTo(HaveOccurred())
	f := &fixture{t: t, g: g, ns: ns, ctx: ctx, hooks: newHookServer(), routes: &routesRouter{c: env.Client}, alerts: &recordingAnnouncer{}}
	t.Cleanup(f.hooks.Close)
	t.Cleanup(cancel)
	f.stop = f.startManager(opts...)
	t.Cleanup(func() { f.stop() })
	return f
}

// newManager makes a manager whose cache holds the fixture's namespace only,
// with no metrics or probe listeners.
func (f *fixture) newManager() ctrl.Manager {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// The transform the manager runs with (cmd/sluice), so every engine
		// test also proves the engine needs no other manager's entries.
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{f.ns: {}}, DefaultTransform: canary.CacheTransform},
	})
	f.g.Expect(err).NotTo(HaveOccurred())
	return mgr
}

// startManager runs a manager for the fixture's namespace and returns its stop.
func (f *fixture) startManager(opts ...fixtureOption) func() {
	mgr := f.newManager()
	routers := router.NewRegistry()
	kubernetesrouter.Register(routers)
	gatewayapirouter.Register(routers)
	// A weighted router that keeps its routes in a ConfigMap, standing in
	// for a mesh: the engine's decisions are what these tests check.
	routers.Register(func(client.Client) router.Router { return f.routes }, sluicev1beta1.ProviderIstio)
	r := &canary.CanaryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("sluice"), Routers: routers, Webhooks: webhooks.New(),
		Metrics: noMetrics{}, DefaultProvider: sluicev1beta1.ProviderKubernetes,
		MaxConcurrentReconciles: 2, SkipNameValidation: true,
		Announcer: f.alerts, EventHooks: webhooks.NewEventQueue(webhooks.New(), logr.Discard(), 100, 2),
	}
	for _, o := range opts {
		o(r)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	f.g.Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			f.t.Errorf("manager: %v", err)
		}
	}()
	return func() { cancel(); <-done }
}

// noMetrics fails the test if a metric is checked: these Canaries have none.
type noMetrics struct{}

func (noMetrics) Check(_ context.Context, _ *sluicev1beta1.Canary, _ string, m sluicev1beta1.CanaryMetric) sluicev1beta1.CheckResult {
	return sluicev1beta1.CheckResult{Name: m.Name, Kind: "metric", Outcome: sluicev1beta1.CheckError, Message: "no metrics in engine tests"}
}

// deployment creates a Deployment whose pods kwok runs on the fake node.
func (f *fixture) deployment(name, version string, replicas int32, mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/app:" + version,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	for _, m := range mutate {
		m(d)
	}
	f.g.Expect(env.Client.Create(f.ctx, d)).To(Succeed())
	return d
}

// canary creates a Canary for a target with a one-second analysis interval.
func (f *fixture) canary(name, target string, mutate ...func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:                sluicev1beta1.ProviderKubernetes,
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			Service:                 sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			ProgressDeadlineSeconds: ptr.To[int32](110), // kwok pods on a loaded 2-core machine can take a minute
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2, Iterations: 2,
			},
		},
	}
	for _, m := range mutate {
		m(c)
	}
	f.g.Expect(env.Client.Create(f.ctx, c)).To(Succeed())
	return c
}

// get reads an object straight from the API server.
func (f *fixture) get(obj client.Object, name string) error {
	return env.Client.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, obj)
}

// phase returns a function that reads a Canary's phase, for Eventually.
func (f *fixture) phase(name string) func() (sluicev1beta1.CanaryPhase, error) {
	return func() (sluicev1beta1.CanaryPhase, error) {
		c := &sluicev1beta1.Canary{}
		err := f.get(c, name)
		return c.Status.Phase, err
	}
}

func (f *fixture) waitPhase(name string, p sluicev1beta1.CanaryPhase) *sluicev1beta1.Canary {
	f.t.Helper()
	f.g.Eventually(f.phase(name)).Should(Equal(p), func() string {
		return fmt.Sprintf("canary %s never reached %s: %s", name, p, f.describe(name))
	})
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, name)).To(Succeed())
	return c
}

// describe summarises a Canary for failure messages.
func (f *fixture) describe(name string) string {
	c := &sluicev1beta1.Canary{}
	if err := f.get(c, name); err != nil {
		return err.Error()
	}
	data, _ := json.Marshal(c.Status)
	reasons, _ := f.eventReasons(name)()
	return string(data) + " events: " + strings.Join(reasons, ",")
}

// condition returns a Canary's condition of a type.
func (f *fixture) condition(name, t string) *metav1.Condition {
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, name)).To(Succeed())
	return meta.FindStatusCondition(c.Status.Conditions, t)
}

// update retries a mutation of an object on conflict.
func (f *fixture) update(obj client.Object, name string, mutate func(), opts ...client.UpdateOption) {
	f.t.Helper()
	f.g.Eventually(func() error {
		if err := f.get(obj, name); err != nil {
			return err
		}
		mutate()
		return env.Client.Update(f.ctx, obj, opts...)
	}).Should(Succeed())
}

func (f *fixture) setImage(name, version string) {
	d := &appsv1.Deployment{}
	f.update(d, name, func() { d.Spec.Template.Spec.Containers[0].Image = "example.com/app:" + version })
}

func (f *fixture) annotate(name, key, value string) {
	c := &sluicev1beta1.Canary{}
	f.update(c, name, func() {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[key] = value
	})
}

// replicas reads a Deployment's spec.replicas.
func (f *fixture) replicas(name string) func() (int32, error) {
	return func() (int32, error) {
		d := &appsv1.Deployment{}
		err := f.get(d, name)
		return ptr.Deref(d.Spec.Replicas, 1), err
	}
}

// image reads the image a Deployment runs.
func (f *fixture) image(name string) func() (string, error) {
	return func() (string, error) {
		d := &appsv1.Deployment{}
		err := f.get(d, name)
		if err != nil {
			return "", err
		}
		return d.Spec.Template.Spec.Containers[0].Image, nil
	}
}

// eventReasons lists the reasons of the events about a Canary.
func (f *fixture) eventReasons(name string) func() ([]string, error) {
	return func() ([]string, error) {
		list := &eventsv1.EventList{}
		if err := env.Client.List(f.ctx, list, client.InNamespace(f.ns)); err != nil {
			return nil, err
		}
		var out []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "Canary" && e.Regarding.Name == name {
				out = append(out, e.Reason)
			}
		}
		return out, nil
	}
}

// hookServer answers webhooks with a status code set per path, and records calls.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	codes map[string]int
	calls map[string][]map[string]any
}

func newHookServer() *hookServer {
	h := &hookServer{codes: map[string]int{}, calls: map[string][]map[string]any{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var payload map[string]any
		_ = json.Unmarshal(body, &payload)
		h.mu.Lock()
		h.calls[r.URL.Path] = append(h.calls[r.URL.Path], payload)
		code, ok := h.codes[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("answer of " + r.URL.Path))
	}))
	return h
}

func (h *hookServer) set(path string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.codes[path] = code
}

func (h *hookServer) count(path string) func() int {
	return func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.calls[path])
	}
}

func (h *hookServer) url(path string) string { return h.URL + path }

// routesRouter is a weighted router that keeps its routes in a ConfigMap
// <apex>-routes, with the history of every canary weight it was given.
type routesRouter struct{ c client.Client }

var (
	_ router.WeightedRouter        = (*routesRouter)(nil)
	_ router.MatchRouter           = (*routesRouter)(nil)
	_ router.MirrorRouter          = (*routesRouter)(nil)
	_ router.SessionAffinityRouter = (*routesRouter)(nil)
)

func (*routesRouter) SupportsWeights()         {}
func (*routesRouter) SupportsMatch()           {}
func (*routesRouter) SupportsMirror()          {}
func (*routesRouter) SupportsSessionAffinity() {}

func (r *routesRouter) key(c *sluicev1beta1.Canary) client.ObjectKey {
	apex, _, _ := c.ServiceNames()
	return client.ObjectKey{Namespace: c.Namespace, Name: apex + "-routes"}
}

func (r *routesRouter) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: r.key(c).Name, Namespace: c.Namespace},
		Data: map[string]string{"primary": "100", "canary": "0", "mirrored": "false", "history": ""}}
	if err := r.c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func (r *routesRouter) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, rt router.Routes) error {
	cm := &corev1.ConfigMap{}
	if err := r.c.Get(ctx, r.key(c), cm); err != nil {
		return err
	}
	w := strconv.Itoa(int(rt.CanaryWeight))
	if rt.Mirrored {
		w += "m"
	}
	prev := cm.Data["canary"]
	if cm.Data["mirrored"] == "true" {
		prev += "m"
	}
	if prev == w {
		return nil
	}
	cm.Data["primary"] = strconv.Itoa(int(rt.PrimaryWeight))
	cm.Data["canary"] = strconv.Itoa(int(rt.CanaryWeight))
	cm.Data["mirrored"] = strconv.FormatBool(rt.Mirrored)
	cm.Data["history"] = strings.TrimPrefix(cm.Data["history"]+","+w, ",")
	return r.c.Update(ctx, cm)
}

func (r *routesRouter) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	cm := &corev1.ConfigMap{}
	if err := r.c.Get(ctx, r.key(c), cm); err != nil {
		return router.Routes{}, err
	}
	p, _ := strconv.Atoi(cm.Data["primary"])
	w, _ := strconv.Atoi(cm.Data["canary"])
	return router.Routes{PrimaryWeight: int32(p), CanaryWeight: int32(w), Mirrored: cm.Data["mirrored"] == "true"}, nil
}

func (r *routesRouter) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	cm := &corev1.ConfigMap{}
	if err := r.c.Get(ctx, r.key(c), cm); err != nil {
		return client.IgnoreNotFound(err)
	}
	cm.Data["finalized"] = "true"
	return r.c.Update(ctx, cm)
}

// history reads the canary weights the router was given, in order.
func (f *fixture) history(apex string) func() (string, error) {
	return func() (string, error) {
		cm := &corev1.ConfigMap{}
		err := f.get(cm, apex+"-routes")
		return cm.Data["history"], err
	}
}
