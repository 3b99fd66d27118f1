package apicount

import (
	"net/http/httptest"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		method, target, verb, resource string
	}{
		{"GET", "/api/v1/namespaces/ns/configmaps/app-config", "GET", "configmaps"},
		{"GET", "/api/v1/namespaces/ns/configmaps", "LIST", "configmaps"},
		{"GET", "/api/v1/configmaps?watch=true&resourceVersion=5", "WATCH", "configmaps"},
		{"GET", "/api/v1/namespaces/ns", "GET", "namespaces"},
		{"PATCH", "/apis/sluice.dev/v1beta1/namespaces/ns/canaries/app/status", "PATCH", "canaries.sluice.dev/status"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases/sluice", "UPDATE", "leases.coordination.k8s.io"},
		{"POST", "/apis/events.k8s.io/v1/namespaces/ns/events", "CREATE", "events.events.k8s.io"},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments/app", "DELETE", "deployments.apps"},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments", "DELETECOLLECTION", "deployments.apps"},
		{"PATCH", "/api/v1/namespaces/ns/configmaps/app?dryRun=All&fieldManager=sluice", "PATCH(dry-run)", "configmaps"},
		{"GET", "/apis", "LIST", "discovery"},
		{"GET", "/version", "LIST", "discovery"},
	}
	for _, c := range cases {
		verb, res := Classify(httptest.NewRequest(c.method, c.target, nil))
		if verb != c.verb || res != c.resource {
			t.Errorf("%s %s: got %s %s, want %s %s", c.method, c.target, verb, res, c.verb, c.resource)
		}
	}
}

func TestCounts(t *testing.T) {
	before := Counts{"GET configmaps": 2, "UPDATE leases.coordination.k8s.io": 1}
	after := Counts{"GET configmaps": 5, "UPDATE leases.coordination.k8s.io": 4, "PATCH canaries.sluice.dev/status": 2, "WATCH services": 1, "PATCH(dry-run) configmaps": 3}
	d := after.Sub(before)
	if d.Reads() != 4 || d.Writes() != 5 || d.DryRuns() != 3 {
		t.Fatalf("reads %d writes %d dry runs %d, want 4, 5 and 3: %v", d.Reads(), d.Writes(), d.DryRuns(), d)
	}
	if got := d.Without("leases.coordination.k8s.io").Writes(); got != 2 {
		t.Fatalf("writes without leases = %d, want 2", got)
	}
}
