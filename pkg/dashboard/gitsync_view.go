package dashboard

import (
	"context"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// maxHealthChecks bounds the live objects read for one GitSync page: past
// it, the page says the rest were not checked rather than stall on a large
// inventory.
const maxHealthChecks = 200

// ObjectHealth is the health of one inventory object, computed by kstatus
// (the computation GitSync's own health checks wait on) on the live object
// as the user can read it.
type ObjectHealth struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Status is a kstatus status (Current, InProgress, Failed, Terminating,
	// NotFound, Unknown), or Forbidden when the user may not read the object.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// inventoryHealth reads each inventory object with the user's client.
func (s *Server) inventoryHealth(ctx context.Context, inv []sluicev1beta1.GitSyncInventoryEntry) ([]ObjectHealth, string) {
	out := make([]ObjectHealth, 0, min(len(inv), maxHealthChecks))
	for i, e := range inv {
		if i == maxHealthChecks {
			return out, fmt.Sprintf("the health of %d more objects was not checked (the page checks the first %d)", len(inv)-i, maxHealthChecks)
		}
		out = append(out, s.objectHealth(ctx, e))
	}
	return out, ""
}

func (s *Server) objectHealth(ctx context.Context, e sluicev1beta1.GitSyncInventoryEntry) ObjectHealth {
	h := ObjectHealth{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
	gvk := schema.GroupVersionKind{Group: e.Group, Version: e.Version, Kind: e.Kind}
	key := client.ObjectKey{Namespace: e.Namespace, Name: e.Name}
	if e.Group == "" && e.Kind == "Secret" {
		// A Secret is healthy once it exists (kstatus): read its metadata
		// only, so its data never reaches the dashboard's memory.
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		if err := s.opts.Client.Get(ctx, key, m); err != nil {
			return healthOfError(h, err)
		}
		h.Status = string(status.CurrentStatus)
		return h
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := s.opts.Client.Get(ctx, key, u); err != nil {
		return healthOfError(h, err)
	}
	res, err := status.Compute(u)
	if err != nil {
		h.Status, h.Message = string(status.UnknownStatus), err.Error()
		return h
	}
	h.Status, h.Message = string(res.Status), res.Message
	return h
}

func healthOfError(h ObjectHealth, err error) ObjectHealth {
	switch {
	case apierrors.IsNotFound(err):
		h.Status, h.Message = string(status.NotFoundStatus), "the object is not in the cluster"
		return h
	case apierrors.IsForbidden(err):
		h.Status, h.Message = "Forbidden", "not allowed to read it"
		return h
	}
	h.Status, h.Message = string(status.UnknownStatus), statusMessage(err)
	return h
}
