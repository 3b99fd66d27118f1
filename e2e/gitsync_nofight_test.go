//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// gitOpsFiles are the objects a user keeps in Git that Sluice also manages
// (the apex Service, the target's HPA, the HTTPRoute the Gateway API
// router takes over), next to the Deployment and its Canary. The route
// serves the apex Service before the Canary exists, as a user's would.
func gitOpsFiles(g Gomega, ns, host string, app stack.App) map[string]string {
	canary := "apiVersion: sluice.dev/v1beta1\nkind: Canary\n" + gatewayCanary(ns, host) +
		"  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}\n"
	g.Expect(canaryFromYAML(g, canary).Spec.AutoscalerRef).NotTo(BeNil())
	return map[string]string{
		"podinfo/deployment.yaml": appManifest(g, app),
		"podinfo/canary.yaml":     canary,
		"podinfo/service.yaml": fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: podinfo, namespace: %s}
spec:
  selector: {app: podinfo}
  ports: [{name: http, port: %d, targetPort: %d}]
`, ns, stack.AppPort, stack.AppPort),
		"podinfo/hpa.yaml": fmt.Sprintf(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: podinfo, namespace: %s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`, ns),
		"podinfo/httproute.yaml": fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: podinfo, namespace: %s}
spec:
  parentRefs: [{name: %s, namespace: %s}]
  hostnames: [%q]
  rules:
    - backendRefs: [{name: podinfo, port: %d}]
`, ns, stack.GatewayName, stack.GatewayNamespace, host, stack.AppPort),
	}
}

// TestGitSync_EngineAndGitSyncDoNotFight is scenario 17: the Deployment,
// the apex Service, an HPA and the HTTPRoute live in Git, applied by a
// GitSync every second with a full drift comparison every second, through
// a whole release under live traffic through Traefik. Every version of
// these objects is recorded with the field managers that wrote it: GitSync
// writes none of the fields the engine owns (the target's replicas, the
// apex selector and ports, the route's parentRefs, hostnames and rules),
// the apex selector moves once to the primary and stays, the route's
// canary weight only climbs the ladder and goes back to 0 at the promotion
// (Git's single backend never comes back), the HPA is written once, and
// no request fails.
func TestGitSync_EngineAndGitSyncDoNotFight(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	p := newPodinfo(ctx, g, "scenario17")
	log := &writeLog{}
	log.watch(ctx, g, p.ns,
		schema.GroupVersionKind{Version: "v1", Kind: "Service"},
		schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
		schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"})

	// Given podinfo 1.0.0, its Canary, apex Service, HPA and HTTPRoute in Git
	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("nofight")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Write("podinfo 1.0.0", gitOpsFiles(g, p.ns, p.host, p.v1))
	g.Expect(err).NotTo(HaveOccurred())
	// and a GitSync applying them every second, correcting drift as it goes
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "apps"},
		Spec: sluicev1beta1.GitSyncSpec{
			URL: repo.URL, Path: "podinfo",
			Interval:           &metav1.Duration{Duration: time.Second},
			DriftCheckInterval: &metav1.Duration{Duration: time.Second},
		},
	}
	g.Expect(env.Client.Create(ctx, gs)).To(Succeed())
	waitPhase(ctx, g, p.key, sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
	// The route can be initialized within a second of its creation by
	// GitSync, before Traefik has loaded it at all (404 for its host): a
	// probe waits until Traefik serves it, then every request counts.
	p.serve(ctx, g, 10, time.Minute).Stop()
	load := p.serve(ctx, g, 40, 6*time.Minute)
	defer load.Stop()

	// and the engine has settled: the target scaled to zero, the primary serving.
	g.Eventually(func() int32 {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, p.key, d); err != nil || d.Spec.Replicas == nil {
			return -1
		}
		return *d.Spec.Replicas
	}, time.Minute, 200*time.Millisecond).Should(BeZero())

	// When 1.1.0 is committed
	v2 := p.v1
	v2.Version = "1.1.0"
	_, err = repo.Write("podinfo 1.1.0", map[string]string{"podinfo/deployment.yaml": appManifest(g, v2)})
	g.Expect(err).NotTo(HaveOccurred())

	// Then the release runs to promotion
	r := watchRollout(ctx, t, p.key, load, 5*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	t.Logf("phases %v; traffic observed while Progressing:%s", r.phases, describeSplits(r))
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", r.final.Status)
	g.Expect(r.progressing.ByVersion["1.1.0"]).To(BeNumerically(">", 0), "the canary never served while Progressing")
	// and GitSync goes on applying for a few more intervals.
	time.Sleep(5 * time.Second)
	counts := load.Counts()
	load.Stop()
	applied := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), applied)).To(Succeed())
	g.Expect(applied.Status.LastAppliedRevision).To(HavePrefix("main@sha1:"))

	// Who wrote what: every version of every object, by field manager.
	for _, key := range log.keys() {
		t.Logf("%s: %s", key, log.describe(key))
	}
	// No request failed, before, during or after the release.
	t.Logf("traffic: %s", counts)
	g.Expect(counts.Errors()).To(BeZero(), "requests failed: %s; samples %+v", counts, load.ErrorSamples())
	// GitSync writes an object Sluice manages only when it creates it or
	// Git changes it (the new image), and never a field the engine owns.
	for _, owned := range r.final.EngineOwnedFields("") {
		key := owned.Kind + "/" + owned.Name
		versions := log.of(key)
		g.Expect(versions).NotTo(BeEmpty(), key)
		gitWrites := 0
		for i := 1; i < len(versions); i++ {
			if !slices.Contains(writers(versions[i-1], versions[i]), sluicev1beta1.FieldManagerGitSync) {
				continue
			}
			gitWrites++
			for _, ptr := range owned.Paths {
				path := splitPointer(ptr)
				g.Expect(field(versions[i], path...)).To(Equal(field(versions[i-1], path...)),
					"GitSync rewrote %s of %s (version %d): %s", ptr, key, i, log.describe(key))
			}
		}
		if owned.Kind == "Deployment" {
			g.Expect(gitWrites).To(BeNumerically("<=", 1), "GitSync wrote %s more than for the new image: %s", key, log.describe(key))
		} else {
			g.Expect(gitWrites).To(BeZero(), "GitSync wrote %s after creating it: %s", key, log.describe(key))
		}
	}

	// The apex selector moved once, to the primary, and stayed.
	g.Expect(changes(log.of("Service/podinfo"), "spec", "selector")).
		To(Equal([]string{`{"app":"podinfo"}`, `{"app":"podinfo-primary"}`}), log.history("Service/podinfo", "spec", "selector"))
	// The target went to zero at initialization, up for the release, and
	// back to zero after the promotion: no flip in between.
	g.Expect(changes(log.of("Deployment/podinfo"), "spec", "replicas")).To(Equal([]string{"2", "0", "2", "0"}),
		log.history("Deployment/podinfo", "spec", "replicas"))
	// The route: Git's single backend, then the router's weights climbing
	// the ladder the Canary recorded, then the primary alone again; Git's
	// rules never came back and no weight went down mid-release.
	weights := canaryWeights(log.of("HTTPRoute/podinfo"))
	var ladder []int32
	for _, w := range r.final.Status.History {
		if w.Phase == sluicev1beta1.CanaryPhaseProgressing && w.Weight > 0 && (len(ladder) == 0 || ladder[len(ladder)-1] != w.Weight) {
			ladder = append(ladder, w.Weight)
		}
	}
	want := append(append([]int32{-1, 0}, ladder...), 0)
	g.Expect(weights).To(Equal(want), "canary weights on the route, in order (-1: Git's rules): %s", log.history("HTTPRoute/podinfo", "spec", "rules"))
	// The HPA's spec was written once, by GitSync.
	for _, v := range log.of("HorizontalPodAutoscaler/podinfo") {
		g.Expect(v.GetGeneration()).To(BeEquivalentTo(1), log.describe("HorizontalPodAutoscaler/podinfo"))
	}
}

// canaryWeights is the canary backend's weight in each version of an
// HTTPRoute that changed it, in order: -1 for a route with no canary
// backend (Git's rules).
func canaryWeights(versions []*unstructured.Unstructured) []int32 {
	var out []int32
	for _, v := range versions {
		w := int32(-1)
		rules, _, _ := unstructured.NestedSlice(v.Object, "spec", "rules")
		if len(rules) > 0 {
			refs, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "backendRefs")
			for _, ref := range refs {
				m := ref.(map[string]any)
				if m["name"] == "podinfo-canary" {
					n, _, _ := unstructured.NestedInt64(m, "weight")
					w = int32(n)
				}
			}
		}
		if len(out) == 0 || out[len(out)-1] != w {
			out = append(out, w)
		}
	}
	return out
}

// changes lists the successive values of a field across versions, each
// once per run.
func changes(versions []*unstructured.Unstructured, path ...string) []string {
	var out []string
	for _, v := range versions {
		if s := field(v, path...); len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// writeLog records every version of the watched objects, in order.
type writeLog struct {
	mu       sync.Mutex
	versions map[string][]*unstructured.Unstructured // by "Kind/name"
}

func (l *writeLog) watch(ctx context.Context, g Gomega, ns string, gvks ...schema.GroupVersionKind) {
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	l.versions = map[string][]*unstructured.Unstructured{}
	for _, gvk := range gvks {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		w, err := wc.Watch(ctx, list, client.InNamespace(ns))
		g.Expect(err).NotTo(HaveOccurred())
		go func() {
			defer w.Stop()
			for ev := range w.ResultChan() {
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				l.mu.Lock()
				key := gvk.Kind + "/" + u.GetName()
				l.versions[key] = append(l.versions[key], u.DeepCopy())
				l.mu.Unlock()
			}
		}()
	}
}

func (l *writeLog) of(key string) []*unstructured.Unstructured {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.versions[key])
}

func (l *writeLog) keys() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.versions))
	for k := range l.versions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// describe counts the writes to an object by field manager (a write
// renews its writer's managedFields entry) and its spec generations.
func (l *writeLog) describe(key string) string {
	versions := l.of(key)
	by := map[string]int{}
	var prev *unstructured.Unstructured
	for _, v := range versions {
		for _, w := range writers(prev, v) {
			by[w]++
		}
		prev = v
	}
	var parts []string
	for w, n := range by {
		parts = append(parts, fmt.Sprintf("%s %d", w, n))
	}
	sort.Strings(parts)
	gen := int64(0)
	if prev != nil {
		gen = prev.GetGeneration()
	}
	return fmt.Sprintf("%d versions, generation %d, writes by manager: %s", len(versions), gen, strings.Join(parts, ", "))
}

// history lists, for failure messages, each version of an object: who
// wrote it and the field at path.
func (l *writeLog) history(key string, path ...string) string {
	var b strings.Builder
	var prev *unstructured.Unstructured
	for i, v := range l.of(key) {
		fmt.Fprintf(&b, "\n  %d (generation %d) by %v: %s", i, v.GetGeneration(), writers(prev, v), field(v, path...))
		prev = v
	}
	return b.String()
}

// writers names the field managers whose managedFields entry a write
// renewed (a new entry or a new time): who wrote that version. A manager
// that only lost fields to another one keeps its time. The times have a
// second's precision, so a manager's second write within a second is not
// seen: the counts by manager are a lower bound, which is why the scenario
// also checks the exact sequence of values of each field that could flip.
func writers(prev, cur *unstructured.Unstructured) []string {
	key := func(e metav1.ManagedFieldsEntry) string {
		return e.Manager + "|" + string(e.Operation) + "|" + e.Subresource
	}
	old := map[string]metav1.ManagedFieldsEntry{}
	if prev != nil {
		for _, e := range prev.GetManagedFields() {
			old[key(e)] = e
		}
	}
	var out []string
	for _, e := range cur.GetManagedFields() {
		o, ok := old[key(e)]
		if !ok || !o.Time.Equal(e.Time) {
			name := e.Manager
			if e.Subresource != "" {
				name += "/" + e.Subresource
			}
			out = append(out, name)
		}
	}
	return out
}

func field(u *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	data, _ := json.Marshal(v)
	return string(data)
}

// splitPointer splits a JSON pointer into unstructured field names.
func splitPointer(p string) []string {
	if p == "" || p == "/" {
		return nil
	}
	var parts []string
	for _, s := range strings.Split(p[1:], "/") {
		parts = append(parts, strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
	}
	return parts
}
