package gitsync_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// privateManagerLabel on a GitSync hands it to the manager of one test
// (startManager) instead of the suite's.
const privateManagerLabel = "test.sluice.dev/manager"

// requests counts the requests a manager sends, by verb.
type requests struct {
	mu     sync.Mutex
	writes []string
	// watched are the resources a watch was opened on.
	watched map[string]bool
}

func (c *requests) RoundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		c.writes = append(c.writes, req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery)
	case http.MethodGet:
		if req.URL.Query().Get("watch") == "true" {
			parts := strings.Split(req.URL.Path, "/")
			c.watched[parts[len(parts)-1]] = true
		}
	}
	c.mu.Unlock()
	return next.RoundTrip(req)
}

// Writes returns the write requests since the last reset, and resets.
func (c *requests) Writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.writes
	c.writes = nil
	return out
}

func (c *requests) Watching(resource string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watched[resource]
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// startManager runs a GitSync reconciler on a manager of its own, whose
// requests are counted, for the GitSyncs labelled privateManagerLabel=id.
// stop stops it (as a restart would); it is stopped at the end of the test anyway.
func startManager(t *testing.T, id string, clk clock.PassiveClock) (c *requests, stop func()) {
	t.Helper()
	c = &requests{watched: map[string]bool{}}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) { return c.RoundTrip(rt, r) })
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&sluicev1beta1.GitSync{}: {Label: labels.SelectorFromSet(labels.Set{privateManagerLabel: id})},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &gitsync.GitSyncReconciler{Fetcher: gitsync.NewFetcher(t.TempDir()), SkipNameValidation: true, Clock: clk}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Log("manager:", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

// private makes a GitSync the private manager's, with a one-hour interval:
// only a watch can explain a correction within seconds.
func private(id string) func(*sluicev1beta1.GitSync) {
	return func(gs *sluicev1beta1.GitSync) {
		gs.Labels = map[string]string{privateManagerLabel: id}
		gs.Spec.Interval = &metav1.Duration{Duration: time.Hour}
	}
}

// syncs is the number of successful syncs of a GitSync (its duration histogram).
func syncs(g Gomega, ns, name string) uint64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "sluice_gitsync_sync_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["name"] == name && l["namespace"] == ns && l["result"] == "success" {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func waitReady(g *WithT, ns, name string) {
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, name)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait, 100*time.Millisecond).Should(Succeed())
}

// waitWatching waits until the manager watches resource, then a moment for
// the watch to be served: a change made before would be in its initial list.
func waitWatching(g *WithT, c *requests, resource string) {
	g.Eventually(func() bool { return c.Watching(resource) }, wait, 50*time.Millisecond).Should(BeTrue(), "no watch on "+resource)
	time.Sleep(300 * time.Millisecond)
}

// TestGitSync_DriftWatch_CorrectsWithinSeconds: with a one-hour interval, a
// field changed and an object deleted by hand are put back within seconds,
// counted and named, and only they are re-applied.
func TestGitSync_DriftWatch_CorrectsWithinSeconds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	c, _ := startManager(t, ns, nil)
	r := newGitServer(t, "", "").newRepo(t, "watch")
	r.write("initial", map[string]string{
		"config.yaml": configMapYAML("settings", "v1"),
		"other.yaml":  configMapYAML("other", "x"),
		"web.yaml":    deploymentYAML("web", "ghcr.io/example/web:1.0.0", 2),
	})
	newGitSync(t, ns, "app", r.URL, private(ns))
	waitReady(g, ns, "app")
	waitWatching(g, c, "configmaps")
	applied := getGitSync(g, ns, "app").Status.LastAppliedTime
	time.Sleep(time.Until(applied.Add(1100 * time.Millisecond))) // status times have second precision

	// A field changed by hand.
	c.Writes()
	cm := configMap(g, ns, "settings")
	cm.Data["value"] = "edited by hand"
	g.Expect(env.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit"))).To(Succeed())
	start := time.Now()
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
	}, wait, 50*time.Millisecond).Should(Succeed())
	t.Logf("a changed field was put back in %s", time.Since(start))
	g.Eventually(func(g Gomega) {
		g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeEquivalentTo(1))
		g.Expect(strings.Join(driftEvents(g, ns), "\n")).To(ContainSubstring("ConfigMap/" + ns + "/settings was changed outside Git and put back"))
		g.Expect(getGitSync(g, ns, "app").Status.LastAppliedTime).NotTo(Equal(applied), "a correction is an apply")
	}, wait, 100*time.Millisecond).Should(Succeed())
	for _, w := range c.Writes() {
		g.Expect(w).NotTo(SatisfyAny(ContainSubstring("/configmaps/other"), ContainSubstring("/deployments/web")),
			"an object nobody changed was re-applied: %s", w)
	}

	// A deleted object.
	g.Expect(env.Client.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})).To(Succeed())
	start = time.Now()
	g.Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(d.DeletionTimestamp).To(BeNil())
	}, wait, 50*time.Millisecond).Should(Succeed())
	t.Logf("a deleted object was put back in %s", time.Since(start))
	g.Eventually(func(g Gomega) {
		g.Expect(driftCount(g, ns, "app", "Deployment")).To(BeEquivalentTo(1))
		g.Expect(strings.Join(driftEvents(g, ns), "\n")).To(ContainSubstring("Deployment/" + ns + "/web was deleted outside Git and put back"))
	}, wait, 100*time.Millisecond).Should(Succeed())
	g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeEquivalentTo(1))
}

// TestGitSync_DriftWatch_NoOpIntervalWritesNothing: syncs at the same
// revision with nothing drifted send no write request at all: no apply,
// no dry-run, no status patch.
func TestGitSync_DriftWatch_NoOpIntervalWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	c, _ := startManager(t, ns, nil)
	r := newGitServer(t, "", "").newRepo(t, "noop")
	r.write("initial", map[string]string{
		"config.yaml": configMapYAML("settings", "v1"),
		"web.yaml":    deploymentYAML("web", "ghcr.io/example/web:1.0.0", 2),
	})
	newGitSync(t, ns, "app", r.URL, private(ns), func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Interval = &metav1.Duration{Duration: time.Second}
	})
	waitReady(g, ns, "app")
	waitWatching(g, c, "deployments")
	// The syncs before the watches were up compared everything.
	n := syncs(g, ns, "app")
	g.Eventually(func(g Gomega) { g.Expect(syncs(g, ns, "app")).To(BeNumerically(">=", n+2)) }, wait, 100*time.Millisecond).Should(Succeed())
	applied := getGitSync(g, ns, "app").Status.LastAppliedTime

	c.Writes()
	n = syncs(g, ns, "app")
	g.Eventually(func(g Gomega) { g.Expect(syncs(g, ns, "app")).To(BeNumerically(">=", n+3)) }, wait, 100*time.Millisecond).Should(Succeed())
	writes := c.Writes()
	sort.Strings(writes)
	g.Expect(writes).To(BeEmpty(), "write requests in no-op intervals")
	g.Expect(getGitSync(g, ns, "app").Status.LastAppliedTime).To(Equal(applied), "lastAppliedTime moves only on an apply")
}

// TestGitSync_DriftWatch_EngineOwnedFieldsAreNotDrift: the engine scaling a
// Canary's target and the router switching its Service's selector write
// fields Sluice owns during a release: nothing is re-applied.
func TestGitSync_DriftWatch_EngineOwnedFieldsAreNotDrift(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	canary := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(`
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}
`), &canary.Object)).To(Succeed())
	canary.SetNamespace(ns)
	g.Expect(env.Client.Create(ctx, canary)).To(Succeed())
	c, _ := startManager(t, ns, nil)
	r := newGitServer(t, "", "").newRepo(t, "engine")
	r.write("initial", map[string]string{
		"web.yaml": deploymentYAML("web", "ghcr.io/example/web:1.0.0", 3),
		"svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
	})
	newGitSync(t, ns, "app", r.URL, private(ns))
	waitReady(g, ns, "app")
	waitWatching(g, c, "services")
	waitWatching(g, c, "deployments")

	c.Writes()
	scale := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec":     map[string]any{"replicas": int64(0)},
	}}
	g.Expect(env.Client.Patch(ctx, scale, client.Apply, client.FieldOwner(sluicev1beta1.FieldManagerEngine), client.ForceOwnership)).To(Succeed()) //nolint:staticcheck // the engine applies this way
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec":     map[string]any{"selector": map[string]any{"app": "web-primary"}},
	}}
	g.Expect(env.Client.Patch(ctx, route, client.Apply, client.FieldOwner(sluicev1beta1.FieldManagerRouter), client.ForceOwnership)).To(Succeed()) //nolint:staticcheck // as the kubernetes router does
	g.Consistently(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(0))
		s := &corev1.Service{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, s)).To(Succeed())
		g.Expect(s.Spec.Selector).To(HaveKeyWithValue("app", "web-primary"))
	}, 3*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(c.Writes()).To(BeEmpty(), "the engine's fields made GitSync write")
	g.Expect(driftCount(g, ns, "app", "Deployment")).To(BeZero())
	g.Expect(driftCount(g, ns, "app", "Service")).To(BeZero())
}

// TestGitSync_DriftWatch_SafetyNet: a change the watches do not count (one
// made under GitSync's own field manager name) is put back by the full
// comparison once spec.driftCheckInterval has passed, not before.
func TestGitSync_DriftWatch_SafetyNet(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	clk := clocktesting.NewFakePassiveClock(time.Now())
	c, _ := startManager(t, ns, clk)
	r := newGitServer(t, "", "").newRepo(t, "net")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "app", r.URL, private(ns), func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Interval = &metav1.Duration{Duration: time.Second}
		gs.Spec.DriftCheckInterval = &metav1.Duration{Duration: 10 * time.Minute}
	})
	waitReady(g, ns, "app")
	waitWatching(g, c, "configmaps")

	cm := configMap(g, ns, "settings")
	cm.Data["value"] = "edited under GitSync's name"
	g.Expect(env.Client.Update(ctx, cm, client.FieldOwner(gitsync.FieldManager))).To(Succeed())
	n := syncs(g, ns, "app")
	g.Eventually(func(g Gomega) { g.Expect(syncs(g, ns, "app")).To(BeNumerically(">=", n+3)) }, wait, 100*time.Millisecond).Should(Succeed())
	g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("edited under GitSync's name"), "the watches should not have seen it")

	clk.SetTime(clk.Now().Add(10 * time.Minute))
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
		g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeEquivalentTo(1))
	}, wait, 100*time.Millisecond).Should(Succeed())
}

// TestGitSync_DriftWatch_RestartComparesEverything: what happened while no
// manager ran is found by the first sync after a restart, which compares
// everything (the watches' knowledge is in memory only).
func TestGitSync_DriftWatch_RestartComparesEverything(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	_, stop := startManager(t, ns, nil)
	r := newGitServer(t, "", "").newRepo(t, "restart")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "app", r.URL, private(ns))
	waitReady(g, ns, "app")
	stop()

	g.Expect(env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}})).To(Succeed())
	startManager(t, ns, nil)
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
		g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeEquivalentTo(1))
	}, wait, 100*time.Millisecond).Should(Succeed())
}

// TestGitSync_DriftWatch_RemovedObjectIsNotWatched: an object removed from
// Git and kept (prune off) is no longer GitSync's: a change to it is left
// alone, while a change to an object still in Git is put back.
func TestGitSync_DriftWatch_RemovedObjectIsNotWatched(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	c, _ := startManager(t, ns, nil)
	r := newGitServer(t, "", "").newRepo(t, "removed")
	r.write("initial", map[string]string{
		"a.yaml": configMapYAML("a", "1"),
		"b.yaml": configMapYAML("b", "1"),
	})
	newGitSync(t, ns, "app", r.URL, private(ns), func(gs *sluicev1beta1.GitSync) { gs.Spec.Prune = ptr.To(false) })
	waitReady(g, ns, "app")
	waitWatching(g, c, "configmaps")

	sha := r.remove("drop b", "b.yaml")
	gs := getGitSync(g, ns, "app")
	gs.Annotations = map[string]string{sluicev1beta1.GitSyncSyncRequestedAnnotation: fmt.Sprint(time.Now().UnixNano())}
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
		g.Expect(gs.Status.Inventory).To(HaveLen(1))
	}, wait, 100*time.Millisecond).Should(Succeed())

	for _, name := range []string{"b", "a"} {
		cm := configMap(g, ns, name)
		cm.Data["value"] = "edited"
		g.Expect(env.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit"))).To(Succeed())
	}
	g.Eventually(func(g Gomega) { g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("1")) }, wait, 50*time.Millisecond).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "b").Data["value"]).To(Equal("edited"))
	}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeEquivalentTo(1))
}
