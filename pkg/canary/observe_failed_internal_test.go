package canary

import (
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// The errors that mean the engine could not read (and must not decide) are
// told apart from those that mean a routing object is missing or not
// shaped as the router expects (routes unknown, repaired by the next action).
func TestIsReadFailure(t *testing.T) {
	route := schema.GroupResource{Group: "gateway.networking.k8s.io", Resource: "httproutes"}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "no error", err: nil, want: false},
		{name: "forbidden", err: apierrors.NewForbidden(route, "web", errors.New("RBAC")), want: true},
		{name: "forbidden, wrapped", err: fmt.Errorf("failed to get HTTPRoute web: %w", apierrors.NewForbidden(route, "web", errors.New("RBAC"))), want: true},
		{name: "unauthorized", err: apierrors.NewUnauthorized("token expired"), want: true},
		{name: "timeout", err: apierrors.NewTimeoutError("slow", 1), want: true},
		{name: "unavailable", err: apierrors.NewServiceUnavailable("etcd"), want: true},
		{name: "missing CRD", err: &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "traefik.io", Kind: "TraefikService"}}, want: true},
		{name: "discovery", err: &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{{Group: "x", Version: "v1"}: errors.New("down")}}, want: true},
		{name: "not found", err: apierrors.NewNotFound(route, "web"), want: false},
		{name: "not found, wrapped", err: fmt.Errorf("routeRef: HTTPRoute web not found: %w", apierrors.NewNotFound(route, "web")), want: false},
		{name: "no rule routes to the canary", err: errors.New("HTTPRoute web has no rule routing to the primary and the canary"), want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(isReadFailure(tt.err)).To(Equal(tt.want))
		})
	}
}
