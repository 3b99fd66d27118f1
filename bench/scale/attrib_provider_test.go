package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/apicount"
)

func TestProviderOf(t *testing.T) {
	cases := []struct {
		name, method, target, body string
		want                       string
	}{
		// Routing objects name their provider by their API group, even
		// without a canary in the path.
		{"HTTPRoute patch", "PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/bench-0/httproutes/app-0001", "", sluicev1beta1.ProviderGatewayAPI},
		{"HTTPRoute watch", "GET", "/apis/gateway.networking.k8s.io/v1/httproutes?watch=true", "", sluicev1beta1.ProviderGatewayAPI},
		{"VirtualService", "PATCH", "/apis/networking.istio.io/v1/namespaces/bench-0/virtualservices/app-0002", "", sluicev1beta1.ProviderIstio},
		{"DestinationRule list", "GET", "/apis/networking.istio.io/v1/destinationrules", "", sluicev1beta1.ProviderIstio},
		{"TraefikService", "PATCH", "/apis/traefik.io/v1alpha1/namespaces/bench-0/traefikservices/app-0003", "", sluicev1beta1.ProviderTraefik},
		// Shared kinds are the provider of the canary they are about: i mod 4.
		{"Canary status of app-0004", "PATCH", "/apis/sluice.dev/v1beta1/namespaces/bench-0/canaries/app-0004/status", "", sluicev1beta1.ProviderKubernetes},
		{"GET Canary app-0105", "GET", "/apis/sluice.dev/v1beta1/namespaces/bench-1/canaries/app-0105", "", sluicev1beta1.ProviderGatewayAPI},
		{"primary Deployment of app-0006", "PATCH", "/apis/apps/v1/namespaces/bench-0/deployments/app-0006-primary", "", sluicev1beta1.ProviderIstio},
		{"canary Service of app-0007", "PATCH", "/api/v1/namespaces/bench-0/services/app-0007-canary", "", sluicev1beta1.ProviderTraefik},
		{"event about app-0011", "POST", "/apis/events.k8s.io/v1/namespaces/bench-0/events", `{"regarding":{"kind":"Canary","name":"app-0011"}}`, sluicev1beta1.ProviderTraefik},
		// Nothing of one canary.
		{"Lease", "PUT", "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases/sluice", "", unattributed},
		{"Canary watch", "GET", "/apis/sluice.dev/v1beta1/canaries?watch=true", "", unattributed},
		{"Deployment list in a namespace", "GET", "/apis/apps/v1/namespaces/bench-0/deployments", "", unattributed},
		{"discovery", "GET", "/apis", "", unattributed},
		{"ConfigMap of another app", "GET", "/api/v1/namespaces/bench-0/configmaps/other", "", unattributed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
			verb, res := apicount.Classify(r)
			w := write{Key: attribute(r), Resource: verb + " " + res}
			if got := providerOf(w); got != c.want {
				t.Errorf("%s %s (%s): got %q, want %q", c.method, c.target, w.Resource, got, c.want)
			}
		})
	}
}

func TestCanaryIndex(t *testing.T) {
	for name, want := range map[string]int{"app-0000": 0, "app-0007": 7, "app-1234": 1234} {
		if got, ok := canaryIndex(name); !ok || got != want {
			t.Errorf("%s: got %d, %v; want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "app-", "app-x1", "web-0001", "app--1"} {
		if _, ok := canaryIndex(name); ok {
			t.Errorf("%s: taken for a canary", name)
		}
	}
}

func TestSplitRecorded(t *testing.T) {
	rec := []write{
		{Resource: "GET canaries.sluice.dev"}, {Resource: "PATCH canaries.sluice.dev/status"},
		{Resource: "WATCH httproutes.gateway.networking.k8s.io"}, {Resource: "CREATE events.events.k8s.io"},
		{Resource: "LIST deployments.apps"}, {Resource: "DELETE pods"},
	}
	writes, reads := splitRecorded(rec)
	if len(writes) != 3 || len(reads) != 3 {
		t.Fatalf("writes %v reads %v, want 3 and 3", writes, reads)
	}
	for _, w := range writes {
		if verb, _, _ := strings.Cut(w.Resource, " "); !apicount.IsWrite(verb) {
			t.Errorf("%s counted as a write", w.Resource)
		}
	}
}

func TestByProvider(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	k := types.NamespacedName{Namespace: "bench-0", Name: "app-0000"} // kubernetes
	g := types.NamespacedName{Namespace: "bench-0", Name: "app-0001"} // gatewayapi
	steps := []time.Time{at(10), at(20), at(30), at(40)}
	tracks := map[types.NamespacedName]*track{
		k: {provider: sluicev1beta1.ProviderKubernetes, start: at(0), steps: steps, done: at(60)},
		g: {provider: sluicev1beta1.ProviderGatewayAPI, start: at(0), steps: steps, done: at(60)},
	}
	w := func(s float64, key types.NamespacedName, res string) write {
		return write{At: at(s), Key: key, Resource: res}
	}
	writes := []write{
		w(0, k, "PATCH deployments.apps"), w(20, k, "PATCH canaries.sluice.dev/status"), w(30, k, "PATCH canaries.sluice.dev/status"),
		w(0, g, "PATCH deployments.apps"),
		// step 2 and 3 of g: status, route, event each
		w(20, g, "PATCH canaries.sluice.dev/status"), w(20, types.NamespacedName{Namespace: "bench-0", Name: "app-0001"}, "PATCH httproutes.gateway.networking.k8s.io"), w(20.2, g, "CREATE events.events.k8s.io"),
		w(30, g, "PATCH canaries.sluice.dev/status"), w(30, g, "PATCH httproutes.gateway.networking.k8s.io"), w(30.2, g, "CREATE events.events.k8s.io"),
		w(25, types.NamespacedName{}, "UPDATE leases.coordination.k8s.io"),
	}
	reads := []write{
		w(10, k, "GET canaries.sluice.dev"), w(20, k, "GET canaries.sluice.dev"),
		w(10, g, "GET canaries.sluice.dev"),
		w(5, types.NamespacedName{}, "WATCH httproutes.gateway.networking.k8s.io"),
		w(5, types.NamespacedName{}, "WATCH canaries.sluice.dev"),
	}
	idle := []write{
		w(0, types.NamespacedName{}, "UPDATE leases.coordination.k8s.io"), w(2, types.NamespacedName{}, "UPDATE leases.coordination.k8s.io"),
		w(1, types.NamespacedName{}, "WATCH virtualservices.networking.istio.io"),
		w(3, types.NamespacedName{Namespace: "bench-0", Name: "app-0003"}, "GET canaries.sluice.dev"),
	}
	figs := byProvider(writes, reads, idle, tracks, 10*time.Second)
	if len(figs) != len(providers)+1 {
		t.Fatalf("got %d rows, want one per provider and one unattributed", len(figs))
	}
	want := []struct {
		provider                      string
		canaries, steps, reads, write int
		stepMean, idle                float64
	}{
		{sluicev1beta1.ProviderKubernetes, 1, 4, 2, 3, 1, 0},
		{sluicev1beta1.ProviderGatewayAPI, 1, 4, 2, 7, 3, 0},
		{sluicev1beta1.ProviderIstio, 0, 0, 0, 0, 0, 1},
		{sluicev1beta1.ProviderTraefik, 0, 0, 0, 0, 0, 1},
		{unattributed, 0, 0, 1, 1, 0, 2},
	}
	for i, wt := range want {
		p := figs[i]
		if p.provider != wt.provider || p.canaries != wt.canaries || p.steps != wt.steps || p.reads != wt.reads || p.writes != wt.write ||
			p.sw.perStep() != wt.stepMean || float64(p.idle) != wt.idle {
			t.Errorf("row %d: got %+v, want %+v", i, p, wt)
		}
	}
	if got := figs[1].readsPerStep(); got != 0.5 {
		t.Errorf("gatewayapi reads per step %.2f, want 0.5 (its route watch and its Canary GET over 4 steps)", got)
	}
	if got := figs[1].writesPerStep(); got != 1.75 {
		t.Errorf("gatewayapi writes per step %.2f, want 1.75", got)
	}

	// The table prints every provider and the unattributed row.
	var out bytes.Buffer
	printProviders(&out, &result{label: "no limit", idleMeasured: true, idleFor: 4 * time.Second,
		writes: writes, reads: reads, idleReqs: idle, tracks: tracks}, 10*time.Second)
	for _, s := range []string{"kubernetes", "gatewayapi", "istio", "traefik", unattributed, "3.00 / 3.00", "1 (0.250)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}
