package main

import (
	"bytes"
	"context"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/apicount"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The manifests of a GitSync build (with GitSync's own Build) into k
// objects, a mix of the three kinds, all in the GitSync's namespace.
func TestFleet_FilesBuild(t *testing.T) {
	f := &fleet{prefix: "many", n: 3, k: 7}
	dir := t.TempDir()
	for p, c := range f.files(2, "v1") {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := gitsync.Build(dir, f.dir(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 7 {
		t.Fatalf("built %d objects, want 7", len(objs))
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if o.GetNamespace() != "many-002" {
			t.Errorf("%s/%s in namespace %q, want many-002", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	if kinds["ConfigMap"] != 3 || kinds["Service"] != 2 || kinds["Deployment"] != 2 {
		t.Errorf("kinds %v, want 3 ConfigMaps, 2 Services, 2 Deployments", kinds)
	}
}

// The push the benchmark sends is accepted by the real receiver, which
// requests a sync of the GitSync that follows the repository.
func TestPush_AcceptedByTheReceiver(t *testing.T) {
	f := &fleet{prefix: "many", n: 1, k: 1, interval: time.Minute, token: []byte("s3cret"),
		repo: &testenv.GitRepo{URL: "http://127.0.0.1:1234/fleet/.git"}}
	gs := f.gitSync(0)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: receiverSecret, Namespace: gs.Namespace}, Data: map[string][]byte{"token": f.token}}
	cl := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(gs, secret).Build()
	srv := httptest.NewServer(&gitsync.Receiver{Client: cl, APIReader: cl})
	defer srv.Close()
	body, err := pushPayload(f.repo.URL, strings.Repeat("a", 40), strings.Repeat("b", 40))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := push(context.Background(), srv.URL, gs.Namespace, gs.Name, f.token, body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "sync requested: app") {
		t.Errorf("answer %q, want a sync of app requested", answer)
	}
	got := &sluicev1beta1.GitSync{}
	if err := cl.Get(context.Background(), f.key(0), got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation] == "" {
		t.Error("the receiver did not request a sync")
	}
	// A wrong secret is refused, so the test above can fail.
	if _, err := push(context.Background(), srv.URL, gs.Namespace, gs.Name, []byte("wrong"), body); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a push signed with a wrong secret: %v, want 401", err)
	}
}

func TestHistogram(t *testing.T) {
	scrape := func(s string) histogram {
		h, err := parseHistogram(bytes.NewBufferString(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h0 := scrape(`# HELP sluice_gitsync_sync_duration_seconds x
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="0.5"} 1
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="1"} 1
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="2.5"} 1
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="+Inf"} 1
sluice_gitsync_sync_duration_seconds_sum{name="app",namespace="a",result="success"} 0.4
sluice_gitsync_sync_duration_seconds_count{name="app",namespace="a",result="success"} 1
sluice_gitsync_applied_objects{name="app",namespace="a"} 10
`)
	h1 := scrape(`sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="0.5"} 2
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="1"} 2
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="2.5"} 3
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="a",result="success",le="+Inf"} 3
sluice_gitsync_sync_duration_seconds_sum{name="app",namespace="a",result="success"} 2.4
sluice_gitsync_sync_duration_seconds_count{name="app",namespace="a",result="success"} 3
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="b",result="success",le="0.5"} 1
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="b",result="success",le="1"} 1
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="b",result="success",le="2.5"} 1
sluice_gitsync_sync_duration_seconds_bucket{name="app",namespace="b",result="success",le="+Inf"} 1
sluice_gitsync_sync_duration_seconds_sum{name="app",namespace="b",result="success"} 0.2
sluice_gitsync_sync_duration_seconds_count{name="app",namespace="b",result="success"} 1
`)
	d := h1.sub(h0)
	if d.count != 3 || math.Abs(d.sum-2.2) > 1e-9 {
		t.Fatalf("delta count %v sum %v, want 3 and 2.2", d.count, d.sum)
	}
	if lo, hi := d.slowest(); lo != 1 || hi != 2.5 {
		t.Errorf("slowest in (%v, %v], want (1, 2.5]", lo, hi)
	}
	if m := d.mean(); m < 733*time.Millisecond || m > 734*time.Millisecond {
		t.Errorf("mean %s, want 0.733s", m)
	}
	if !math.IsInf(func() float64 {
		_, hi := (histogram{buckets: map[float64]float64{1: 0, math.Inf(1): 1}}).slowest()
		return hi
	}(), 1) {
		t.Error("an observation above every bound is in (last, +Inf]")
	}
}

// Writes, not Lease renewals or dry runs, decide the no-op verdict; a
// figure over its goal is missed and says by how much.
func TestRows_Verdicts(t *testing.T) {
	r := &result{
		shape:        shape{label: "2×3", n: 2, k: 3},
		firstApply:   3 * time.Second,
		noopMeasured: true,
		noop: apicount.Counts{
			"UPDATE leases.coordination.k8s.io": 30, "PATCH(dry-run) configmaps": 6, "GET gitsyncs.sluice.dev": 2,
		},
		noopFor:       time.Minute,
		noopSyncs:     histogram{buckets: map[float64]float64{0.5: 2, 1: 2, math.Inf(1): 2}, sum: 0.6, count: 2},
		commitApplied: 1500 * time.Millisecond,
		drift:         40 * time.Second,
	}
	got := map[string]string{}
	for _, row := range rows([]*result{r}) {
		got[row.figure] = row.verdict
	}
	want := map[string]string{
		"no-op interval: API writes (Lease renewals apart)":     "met",
		"no-op sync: mean, slowest (histogram bucket)":          "met",
		"commit → applied (signed GitHub push to the receiver)": "met",
		"drift → corrected (one ConfigMap edited by hand)":      "MISSED by 38s (20.0×)",
	}
	for fig, v := range want {
		if got[fig] != v {
			t.Errorf("%s: verdict %q, want %q", fig, got[fig], v)
		}
	}
	r.noop["PATCH gitsyncs.sluice.dev/status"] = 2
	for _, row := range rows([]*result{r}) {
		if strings.HasPrefix(row.figure, "no-op interval: API writes") && row.verdict != "MISSED by 2 writes" {
			t.Errorf("two status patches: verdict %q, want MISSED by 2 writes", row.verdict)
		}
	}
}
