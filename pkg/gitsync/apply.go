package gitsync

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// FieldManager is the server-side apply field manager of GitSync, distinct
// from the engine's and the routers' so the API server tells their fields apart.
const FieldManager = sluicev1beta1.FieldManagerGitSync

// ownerGroup is the prefix of the ownership labels: <group>/name and <group>/namespace.
const ownerGroup = "gitsync.sluice.dev"

// Applier applies built objects, prunes and waits for health.
type Applier struct {
	// Client applies, prunes and polls; it may impersonate a ServiceAccount.
	Client client.Client
	// Mapper tells namespaced kinds from cluster-scoped ones.
	Mapper meta.RESTMapper
	// Canaries reads the Canaries that Prepare steps aside for (the
	// controller's own cache); Client when nil.
	Canaries client.Reader
	// DefaultProvider is the canary engine's --default-provider: it tells
	// which routing objects a Canary without spec.provider owns.
	DefaultProvider string
}

// Result is what one apply did.
type Result struct {
	Inventory []sluicev1beta1.GitSyncInventoryEntry
	ChangeSet *ssa.ChangeSet
	Pruned    []sluicev1beta1.GitSyncInventoryEntry
}

func (a *Applier) manager() *ssa.ResourceManager {
	poller := polling.NewStatusPoller(a.Client, a.Mapper, polling.Options{})
	return ssa.NewResourceManager(a.Client, poller, ssa.Owner{Field: FieldManager, Group: ownerGroup})
}

// Prepare sets namespaces and ownership labels and drops the -primary
// objects of a Canary (the engine's). The fields the engine owns on the
// other objects are left to it by Apply (see ignoreRules).
func (a *Applier) Prepare(ctx context.Context, gs *sluicev1beta1.GitSync, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	crdScopes := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			s, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crdScopes[schema.GroupKind{Group: g, Kind: k}] = s == "Namespaced"
		}
	}
	canaries := &canaryLister{reader: a.canaryReader()}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced, err := a.namespaced(gvk, crdScopes)
		if err != nil {
			return nil, err
		}
		switch {
		case !namespaced:
			o.SetNamespace("")
		case gs.Spec.TargetNamespace != "":
			o.SetNamespace(gs.Spec.TargetNamespace)
		case o.GetNamespace() == "":
			o.SetNamespace(gs.Namespace)
		}
		if namespaced && gvk.Group == "apps" && (gvk.Kind == "Deployment" || gvk.Kind == "DaemonSet") {
			list, err := canaries.list(ctx, o.GetNamespace())
			if err != nil {
				return nil, err
			}
			if isPrimary(o, list) {
				continue
			}
		}
		out = append(out, o)
	}
	ssa.NewResourceManager(a.Client, nil, ssa.Owner{Field: FieldManager, Group: ownerGroup}).SetOwnerLabels(out, gs.Name, gs.Namespace)
	return out, nil
}

func (a *Applier) canaryReader() client.Reader {
	if a.Canaries != nil {
		return a.Canaries
	}
	return a.Client
}

func (a *Applier) namespaced(gvk schema.GroupVersionKind, crdScopes map[schema.GroupKind]bool) (bool, error) {
	if s, ok := crdScopes[gvk.GroupKind()]; ok {
		return s, nil
	}
	m, err := a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, fmt.Errorf("unknown kind %s: %w", gvk, err)
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// isPrimary tells whether the workload is the -primary copy of a Canary's target.
func isPrimary(o *unstructured.Unstructured, canaries []sluicev1beta1.Canary) bool {
	base, ok := strings.CutSuffix(o.GetName(), "-primary")
	if !ok {
		return false
	}
	for _, c := range canaries {
		if c.Spec.TargetRef.Name == base {
			return true
		}
	}
	return false
}

// Apply applies objs with server-side apply, staged (CRDs and Namespaces
// first); it is run every interval, which also corrects drift.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) (*ssa.ChangeSet, error) {
	opts := ssa.DefaultApplyOptions()
	opts.WaitTimeout = time.Minute
	rules, err := a.ignoreRules(ctx, &canaryLister{reader: a.canaryReader()}, objs)
	if err != nil {
		return nil, err
	}
	opts.DriftIgnoreRules = rules
	// The CRDs of a chart with spec.helm.crds Create are created, never updated.
	opts.IfNotPresentSelector = map[string]string{sluicev1beta1.GitSyncSSAAnnotation: sluicev1beta1.GitSyncSSAIfNotPresent}
	cs, err := a.manager().ApplyAllStaged(ctx, objs, opts)
	if err != nil {
		return cs, fmt.Errorf("apply failed: %w", err)
	}
	return cs, nil
}

// Prune deletes the objects of old missing from objs that carry the labels
// of gs and do not opt out with gitsync.sluice.dev/prune: disabled.
func (a *Applier) Prune(ctx context.Context, gs *sluicev1beta1.GitSync, old []sluicev1beta1.GitSyncInventoryEntry, objs []*unstructured.Unstructured) ([]sluicev1beta1.GitSyncInventoryEntry, error) {
	stale := Diff(old, Inventory(objs))
	if len(stale) == 0 {
		return nil, nil
	}
	m := a.manager()
	opts := ssa.DefaultDeleteOptions()
	opts.Inclusions = m.GetOwnerLabels(gs.Name, gs.Namespace)
	opts.Exclusions = map[string]string{sluicev1beta1.GitSyncPruneAnnotation: sluicev1beta1.GitSyncPruneDisabled}
	var pruned []sluicev1beta1.GitSyncInventoryEntry
	for _, e := range stale {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: e.Group, Version: e.Version, Kind: e.Kind})
		u.SetNamespace(e.Namespace)
		u.SetName(e.Name)
		entry, err := m.Delete(ctx, u, opts)
		if err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue
			}
			return pruned, fmt.Errorf("prune failed: %w", err)
		}
		if entry.Action == ssa.DeletedAction {
			pruned = append(pruned, e)
		}
	}
	return pruned, nil
}

// Wait waits until the objects are healthy (kstatus Current), within timeout.
func (a *Applier) Wait(ctx context.Context, set object.ObjMetadataSet, timeout time.Duration) error {
	if len(set) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := a.manager().WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: time.Second, Timeout: timeout, FailFast: true})
	if err != nil {
		return fmt.Errorf("health check failed: %w", err)
	}
	return nil
}

// HealthSet is what a sync waits for: every applied object with spec.wait,
// and the objects of spec.healthChecks.
func (a *Applier) HealthSet(gs *sluicev1beta1.GitSync, cs *ssa.ChangeSet) (object.ObjMetadataSet, error) {
	var set object.ObjMetadataSet
	if gs.Spec.Wait && cs != nil {
		set = append(set, cs.ToObjMetadataSet()...)
	}
	for i, hc := range gs.Spec.HealthChecks {
		gv, err := schema.ParseGroupVersion(hc.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("spec.healthChecks[%d].apiVersion %q: %w", i, hc.APIVersion, err)
		}
		gk := schema.GroupKind{Group: gv.Group, Kind: hc.Kind}
		m, err := a.Mapper.RESTMapping(gk, gv.Version)
		if err != nil {
			return nil, fmt.Errorf("spec.healthChecks[%d]: unknown kind %s: %w", i, gk, err)
		}
		ns := hc.Namespace
		switch {
		case m.Scope.Name() != meta.RESTScopeNameNamespace:
			ns = ""
		case ns == "":
			ns = gs.Namespace
			if gs.Spec.TargetNamespace != "" {
				ns = gs.Spec.TargetNamespace
			}
		}
		set = append(set, object.ObjMetadata{Namespace: ns, Name: hc.Name, GroupKind: gk})
	}
	return set.Unique(), nil
}
