package main

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
)

func TestAttribute(t *testing.T) {
	cases := []struct {
		method, target, body string
		want                 types.NamespacedName
	}{
		{"PATCH", "/apis/sluice.dev/v1beta1/namespaces/bench-0/canaries/app-0007/status", "", types.NamespacedName{Namespace: "bench-0", Name: "app-0007"}},
		{"PATCH", "/apis/apps/v1/namespaces/bench-1/deployments/app-0107-primary", "", types.NamespacedName{Namespace: "bench-1", Name: "app-0107"}},
		{"PATCH", "/api/v1/namespaces/bench-1/services/app-0107-canary", "", types.NamespacedName{Namespace: "bench-1", Name: "app-0107"}},
		{"POST", "/apis/events.k8s.io/v1/namespaces/bench-0/events", `{"metadata":{"name":"app-0003.1876"},"regarding":{"kind":"Canary","name":"app-0003"}}`, types.NamespacedName{Namespace: "bench-0", Name: "app-0003"}},
		{"POST", "/api/v1/namespaces/bench-0/events", `{"involvedObject":{"name":"app-0004-primary"}}`, types.NamespacedName{Namespace: "bench-0", Name: "app-0004"}},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases/sluice", "", types.NamespacedName{}},
		{"POST", "/apis/events.k8s.io/v1/namespaces/sluice-system/events", `{"regarding":{"name":"sluice"}}`, types.NamespacedName{}},
	}
	// client-go's event sink sends events as protobuf.
	ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "app-0011.18a2b3c4d5e6f708", Namespace: "bench-0"},
		Regarding: corev1.ObjectReference{Kind: "Canary", Name: "app-0011", Namespace: "bench-0"}, Reason: "Progressing"}
	var pb bytes.Buffer
	if err := protobuf.NewSerializer(nil, nil).Encode(ev, &pb); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		method, target, body string
		want                 types.NamespacedName
	}{"POST", "/apis/events.k8s.io/v1/namespaces/bench-0/events", pb.String(), types.NamespacedName{Namespace: "bench-0", Name: "app-0011"}})
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
		if got := attribute(r); got != c.want {
			t.Errorf("%s %s: got %v, want %v", c.method, c.target, got, c.want)
		}
		// The body is still there for the API server.
		if rest, _ := io.ReadAll(r.Body); string(rest) != c.body {
			t.Errorf("%s %s: body forwarded %q, want %q", c.method, c.target, rest, c.body)
		}
	}
}

func TestAttributeSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a := types.NamespacedName{Namespace: "bench-0", Name: "app-0001"}
	b := types.NamespacedName{Namespace: "bench-0", Name: "app-0002"}
	// Canary a: start at 0, steps at 10, 20, 30, 40 (promotion), done at 60.
	tracks := map[types.NamespacedName]*track{
		a: {start: at(0), steps: []time.Time{at(10), at(20), at(30), at(40)}, done: at(60)},
		b: {start: at(0), steps: []time.Time{at(10)}}, // unfinished, too few steps
	}
	w := func(s float64, k types.NamespacedName, res string) write {
		return write{At: at(s), Key: k, Resource: res}
	}
	ws := []write{
		w(0, a, "PATCH deployments.apps"), w(0, a, "PATCH canaries.sluice.dev/status"), // start
		w(10, a, "PATCH canaries.sluice.dev/status"), w(10.1, a, "CREATE events.events.k8s.io"), // step 1
		w(20, a, "PATCH httproutes.gateway.networking.k8s.io"), w(20, a, "PATCH canaries.sluice.dev/status"), w(20.2, a, "CREATE events.events.k8s.io"), // step 2
		w(30, a, "PATCH httproutes.gateway.networking.k8s.io"), w(30, a, "PATCH canaries.sluice.dev/status"), w(30.2, a, "CREATE events.events.k8s.io"), // step 3
		w(40, a, "PATCH deployments.apps"), w(40, a, "PATCH canaries.sluice.dev/status"), // promotion
		w(60, a, "PATCH canaries.sluice.dev/status"),
		w(20, b, "PATCH canaries.sluice.dev/status"),
		w(25, types.NamespacedName{}, "UPDATE leases.coordination.k8s.io"),
	}
	s := attributeSteps(ws, tracks, 10*time.Second)
	if s.steps != 2 || s.writes != 6 || s.perStep() != 3 {
		t.Fatalf("steps %d writes %d per step %.2f, want 2, 6, 3", s.steps, s.writes, s.perStep())
	}
	if len(s.perCanary) != 1 || s.perCanary[0] != 3 {
		t.Fatalf("per canary %v, want [3]", s.perCanary)
	}
	if s.byResource["CREATE events.events.k8s.io"] != 2 || s.byResource["PATCH httproutes.gateway.networking.k8s.io"] != 2 {
		t.Fatalf("by resource %v", s.byResource)
	}
	if len(s.release) != 1 || s.release[0] != 13 {
		t.Fatalf("release writes %v, want [13] (b is unfinished)", s.release)
	}
}
