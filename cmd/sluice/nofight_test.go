package main

import (
	"context"
	"encoding/json"
	"slices"
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
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The objects a user keeps in Git that the engine also manages.
var gitOpsFiles = map[string]string{
	"web/service.yaml": `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`,
	"web/hpa.yaml": `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`,
	"web/httproute.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gateway}]
  rules:
    - backendRefs: [{name: web, port: 80}]
`,
	"web/canary.yaml": `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  provider: gatewayapi
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: web}
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, threshold: 2, maxWeight: 50, stepWeight: 25}
`,
}

// writeLog records every version of the watched objects, in order.
type writeLog struct {
	mu       sync.Mutex
	versions map[string][]*unstructured.Unstructured // by "Kind/name"
}

func (l *writeLog) watch(t *testing.T, g Gomega, ctx context.Context, ns string, gvks ...schema.GroupVersionKind) {
	t.Helper()
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

// writers names the field managers whose managedFields entry a write
// renewed (a new entry or a new time): who wrote that version. A manager
// that only lost fields to another one keeps its time.
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
			out = append(out, e.Manager)
		}
	}
	return out
}

func field(u *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	data, _ := json.Marshal(v)
	return string(data)
}

// TestRun_GitSyncAndEngineDoNotFight: the apex Service, an HPA and an
// HTTPRoute live in Git next to the Deployment and its Canary through a
// whole release, with GitSync applying every second. GitSync never writes
// a field the engine or the router owns once they took the object over, so
// the apex selector moves once (to the primary) and stays, Git's rules never
// come back to the HTTPRoute, and the HPA is written once.
func TestRun_GitSyncAndEngineDoNotFight(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "nofight")
	g.Expect(err).NotTo(HaveOccurred())
	log := &writeLog{}
	log.watch(t, g, ctx, ns,
		schema.GroupVersionKind{Version: "v1", Kind: "Service"},
		schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
		schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"})

	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("nofight")
	g.Expect(err).NotTo(HaveOccurred())
	files := map[string]string{"web/deployment.yaml": webYAML("1.0")}
	for k, v := range gitOpsFiles {
		files[k] = v
	}
	_, err = repo.Write("web 1.0", files)
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, g, func(o *Options) {
		o.GitURL, o.GitPath, o.GitInterval = repo.URL, "web", time.Second
		o.GitSyncNamespace = ns
		o.GitCacheDir = t.TempDir()
	})

	g.Eventually(canaryPhase(ns, "web"), 90*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))
	g.Eventually(func() int32 {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil || d.Spec.Replicas == nil {
			return -1
		}
		return *d.Spec.Replicas
	}, 30*time.Second).Should(BeZero())
	_, err = repo.Write("web 2.0", map[string]string{"web/deployment.yaml": webYAML("2.0")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(canaryPhase(ns, "web"), 30*time.Second, 100*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseProgressing))
	g.Eventually(canaryPhase(ns, "web"), 120*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	time.Sleep(4 * time.Second) // a few more GitSync intervals after the release

	// GitSync writes an object Sluice manages only when it creates it or
	// Git changes it (the new image), and never an engine-owned field.
	c := &sluicev1beta1.Canary{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, c)).To(Succeed())
	for _, owned := range c.EngineOwnedFields("") {
		versions := log.of(owned.Kind + "/" + owned.Name)
		g.Expect(versions).NotTo(BeEmpty(), owned.Kind+"/"+owned.Name)
		gitWrites := 0
		for i := 1; i < len(versions); i++ {
			if !slices.Contains(writers(versions[i-1], versions[i]), sluicev1beta1.FieldManagerGitSync) {
				continue
			}
			gitWrites++
			for _, p := range owned.Paths {
				path := splitPointer(p)
				g.Expect(field(versions[i], path...)).To(Equal(field(versions[i-1], path...)),
					"GitSync rewrote %s of %s/%s (version %d)", p, owned.Kind, owned.Name, i)
			}
		}
		t.Logf("%s/%s: %d versions, %d written by GitSync after creation", owned.Kind, owned.Name, len(versions), gitWrites)
		if owned.Kind == "Deployment" {
			g.Expect(gitWrites).To(BeNumerically("<=", 1), "only the new image")
		} else {
			g.Expect(gitWrites).To(BeZero(), owned.Kind+"/"+owned.Name)
		}
	}

	// The apex selector moved once, to the primary, and stayed.
	var selectors []string
	for _, v := range log.of("Service/web") {
		if s := field(v, "spec", "selector"); len(selectors) == 0 || selectors[len(selectors)-1] != s {
			selectors = append(selectors, s)
		}
	}
	g.Expect(selectors).To(Equal([]string{`{"app":"web"}`, `{"app":"web-primary"}`}))

	// Git's rules never came back to the HTTPRoute once the router took it over.
	gitRules, took := "", false
	for i, v := range log.of("HTTPRoute/web") {
		rules := field(v, "spec", "rules")
		if i == 0 {
			gitRules = rules
			continue
		}
		if rules != gitRules {
			took = true
		}
		g.Expect(took && rules == gitRules).To(BeFalse(), "GitSync put Git's rules back (version %d)", i)
	}
	g.Expect(took).To(BeTrue(), "the router never took the HTTPRoute over")

	// The HPA's spec was written once, by GitSync.
	for _, v := range log.of("HorizontalPodAutoscaler/web") {
		g.Expect(v.GetGeneration()).To(BeEquivalentTo(1))
	}
}

// splitPointer splits a JSON pointer into unstructured field names.
func splitPointer(p string) []string {
	if p == "" || p == "/" {
		return nil
	}
	parts := []string{}
	cur := []byte{}
	for i := 1; i < len(p); i++ {
		switch {
		case p[i] == '/':
			parts = append(parts, string(cur))
			cur = cur[:0]
		case p[i] == '~' && i+1 < len(p) && p[i+1] == '1':
			cur = append(cur, '/')
			i++
		case p[i] == '~' && i+1 < len(p) && p[i+1] == '0':
			cur = append(cur, '~')
			i++
		default:
			cur = append(cur, p[i])
		}
	}
	return append(parts, string(cur))
}
