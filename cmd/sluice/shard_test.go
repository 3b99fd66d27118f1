package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// writeCounter counts the successful writes (POST, PUT, PATCH, DELETE) one
// manager makes to each object of a resource, e.g. "canaries/web" (status
// writes count for their object), through the transport of its rest.Config.
type writeCounter struct {
	mu     sync.Mutex
	writes map[string]int
}

func (c *writeCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err != nil || req.Method == http.MethodGet || resp.StatusCode >= 300 {
				return resp, err
			}
			if key := objectOf(req.URL.Path); key != "" {
				c.mu.Lock()
				c.writes[key]++
				c.mu.Unlock()
			}
			return resp, err
		})
	}
	return cfg
}

// objectOf turns /apis/sluice.dev/v1beta1/namespaces/ns/canaries/web[/status]
// into "canaries/web"; other paths into "".
func objectOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "namespaces" && i+3 < len(parts) && (parts[i+2] == "canaries" || parts[i+2] == "gitsyncs") {
			return parts[i+2] + "/" + parts[i+3]
		}
	}
	return ""
}

func (c *writeCounter) of(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes[key]
}

// startShard runs the whole manager (the same run as cmd/sluice) as shard
// key, leader-elected with its Lease in ns, through a write counter.
func startShard(t *testing.T, g Gomega, ns, key string, mutate func(*Options)) *writeCounter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.LeaderElectionNamespace = ns
	opts.ShardKey = key
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	opts.GitCacheDir = t.TempDir()
	if mutate != nil {
		mutate(&opts)
	}
	g.Expect(opts.Validate()).To(Succeed())
	counter := &writeCounter{writes: map[string]int{}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, counter.wrap(env.Config)) }()
	t.Cleanup(func() {
		cancel()
		g.Eventually(done, 20*time.Second).Should(Receive(BeNil()))
	})
	return counter
}

func shardedWebYAML(name, image string) string {
	return strings.NewReplacer("name: web", "name: "+name, "app: web", "app: "+name, "web:1.0", image).Replace(webYAML("1.0"))
}

// shardedCanaryYAML is a blue/green Canary of Deployment name, in shard key.
func shardedCanaryYAML(name, key string, iterations int) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata:
  name: %s
  labels: {%s: %s}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: %s}
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 2s, threshold: 2, iterations: %d}
`, name, sluicev1beta1.ShardLabel, key, name, iterations)
}

// TestRun_ShardsSplitCanariesAndHandOver runs two shards of the manager on
// one API server with 20 Canaries, ten labelled for each: every Canary is
// written by its own shard only, and each shard holds its own Lease. Then a
// Canary is relabelled from shard a to shard b in the middle of a release:
// a lets it go without finalising it (its primary stays, its finalizer
// stays), b continues the release from its status, and the history of the
// release shows every iteration once, an interval apart.
func TestRun_ShardsSplitCanariesAndHandOver(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "shards")
	g.Expect(err).NotTo(HaveOccurred())
	shards := map[string]*writeCounter{"a": startShard(t, g, ns, "a", nil), "b": startShard(t, g, ns, "b", nil)}

	const n, iterations = 20, 6
	keyOf := func(i int) string { return []string{"a", "b"}[i%2] }
	for i := range n {
		name := fmt.Sprintf("web-%02d", i)
		createYAML(g, ns, shardedWebYAML(name, "ghcr.io/example/web:1.0"))
		createYAML(g, ns, shardedCanaryYAML(name, keyOf(i), iterations))
	}
	for i := range n {
		g.Eventually(canaryPhase(ns, fmt.Sprintf("web-%02d", i)), 90*time.Second, 250*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))
	}
	for i := range n {
		key, name := keyOf(i), fmt.Sprintf("canaries/web-%02d", i)
		other := map[string]string{"a": "b", "b": "a"}[key]
		g.Expect(shards[key].of(name)).To(BeNumerically(">", 0), "%s was not written by its shard %s", name, key)
		g.Expect(shards[other].of(name)).To(BeZero(), "%s (shard %s) was written by shard %s", name, key, other)
	}
	for _, key := range []string{"a", "b"} {
		lease := &coordinationv1.Lease{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sluice-leader-election-" + key}, lease)).To(Succeed())
		g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil(), "shard %s holds no Lease", key)
	}

	// A release of web-00 (shard a), handed over to b after two iterations.
	const name = "web-00"
	dep := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, dep)).To(Succeed())
	dep.Spec.Template.Spec.Containers[0].Image = "ghcr.io/example/web:2.0"
	g.Expect(env.Client.Update(ctx, dep)).To(Succeed())
	c := &sluicev1beta1.Canary{}
	g.Eventually(func() int32 {
		_ = env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c)
		return c.Status.Iterations
	}, 60*time.Second, 100*time.Millisecond).Should(BeNumerically(">=", 2))
	g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
	c.Labels[sluicev1beta1.ShardLabel] = "b"
	g.Expect(env.Client.Update(ctx, c)).To(Succeed())
	handedAt := c.Status.Iterations
	// A reconcile of a that was under way when the label changed ends
	// within a second (its status patch would conflict); after it, a
	// writes nothing more to the Canary.
	time.Sleep(time.Second)
	aWrites, bWrites := shards["a"].of("canaries/"+name), shards["b"].of("canaries/"+name)

	g.Eventually(canaryPhase(ns, name), 90*time.Second, 100*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	g.Expect(shards["a"].of("canaries/"+name)).To(Equal(aWrites), "shard a kept writing the Canary after it moved to b")
	g.Expect(shards["b"].of("canaries/"+name)).To(BeNumerically(">", bWrites), "shard b did not take the Canary over")

	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c)).To(Succeed())
	g.Expect(c.Finalizers).To(ContainElement(sluicev1beta1.CanaryFinalizer), "the Canary lost its finalizer in the handover")
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-primary"}, &appsv1.Deployment{})).To(Succeed(), "the primary is gone")
	// Every iteration of the release ran once, about an interval apart: b went
	// on from a's last step, neither repeating it nor running it early.
	var steps []sluicev1beta1.CanaryStep
	for _, s := range c.Status.History {
		if s.Phase == sluicev1beta1.CanaryPhaseProgressing && strings.HasPrefix(s.Message, "Blue/green iteration") {
			steps = append(steps, s)
		}
	}
	g.Expect(steps).To(HaveLen(iterations), "history: %+v", c.Status.History)
	for i, s := range steps {
		g.Expect(s.Iteration).To(Equal(int32(i+1)), "history: %+v", c.Status.History)
		if i > 0 {
			gap := s.Time.Sub(steps[i-1].Time.Time)
			// Step times are stored to the second: 2s apart reads as 1s at worst.
			g.Expect(gap).To(BeNumerically(">=", time.Second), "iterations %d and %d (handed over at %d) ran %s apart", i, i+1, handedAt, gap)
		}
	}
}

// TestRun_ShardsSplitGitSyncs: two GitSyncs of one repository, one per
// shard, are each synced and written by their own shard only.
func TestRun_ShardsSplitGitSyncs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "shard-gitsync")
	g.Expect(err).NotTo(HaveOccurred())
	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(srv.Close)
	repo, err := srv.NewRepo("apps")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Write("two apps", map[string]string{
		"a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-a, namespace: " + ns + "}\ndata: {k: a}\n",
		"b/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-b, namespace: " + ns + "}\ndata: {k: b}\n",
	})
	g.Expect(err).NotTo(HaveOccurred())
	shards := map[string]*writeCounter{"a": startShard(t, g, ns, "a", nil), "b": startShard(t, g, ns, "b", nil)}
	for _, key := range []string{"a", "b"} {
		g.Expect(env.Client.Create(ctx, &sluicev1beta1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sync-" + key, Labels: map[string]string{sluicev1beta1.ShardLabel: key}},
			Spec:       sluicev1beta1.GitSyncSpec{URL: repo.URL, Path: key, Ref: &sluicev1beta1.GitRef{Branch: "main"}, Interval: &metav1.Duration{Duration: time.Minute}},
		})).To(Succeed())
	}
	for _, key := range []string{"a", "b"} {
		g.Eventually(func() error {
			return env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "from-" + key}, &corev1.ConfigMap{})
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		gs := &sluicev1beta1.GitSync{}
		g.Eventually(func() metav1.ConditionStatus {
			_ = env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sync-" + key}, gs)
			for _, c := range gs.Status.Conditions {
				if c.Type == sluicev1beta1.ReadyCondition {
					return c.Status
				}
			}
			return ""
		}, 30*time.Second, 200*time.Millisecond).Should(Equal(metav1.ConditionTrue))
	}
	g.Expect(shards["a"].of("gitsyncs/sync-a")).To(BeNumerically(">", 0))
	g.Expect(shards["b"].of("gitsyncs/sync-b")).To(BeNumerically(">", 0))
	g.Expect(shards["a"].of("gitsyncs/sync-b")).To(BeZero(), "shard a wrote shard b's GitSync")
	g.Expect(shards["b"].of("gitsyncs/sync-a")).To(BeZero(), "shard b wrote shard a's GitSync")
}
