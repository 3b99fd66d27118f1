package gitsync

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
)

// Reasons of the Helm failures of a GitSync with spec.helm.
const (
	// ReasonHelmRenderFailed: the chart could not be fetched or rendered
	// (not found, no version in range, repository error, template error,
	// values refused by the chart's schema). Nothing is applied or pruned.
	ReasonHelmRenderFailed = "HelmRenderFailed"
	// ReasonHelmValuesFailed: a ConfigMap, Secret or key of
	// spec.helm.valuesFrom is missing or does not hold values.
	ReasonHelmValuesFailed = "HelmValuesFailed"
)

// helmState is the reconciler's Helm renderer (with its archive cache) and
// the API server version that .Capabilities reports, read once.
type helmState struct {
	renderer helm.Renderer
	mu       sync.Mutex
	version  string
}

// helmRelease is what a render of spec.helm produced, recorded in
// status.helm once the objects are applied.
type helmRelease struct {
	chart, version, valuesDigest string
	hooks                        int
	// hookList are the hooks GitSync runs (helm_hooks.go).
	hookList []helm.Hook
}

// helmBuild renders spec.helm into the objects to apply (nil, nil, nil
// without spec.helm: the kustomize build follows). It records the version
// attempted in status; a failure applies nothing and prunes nothing.
func (r *GitSyncReconciler) helmBuild(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, checkout string) (*helmRelease, []*unstructured.Unstructured, error) {
	h := gs.Spec.Helm
	if h == nil {
		status.Helm = nil
		return nil, nil, nil
	}
	values, err := r.helmValues(ctx, gs)
	if err != nil {
		return nil, nil, fail(ReasonHelmValuesFailed, false, err)
	}
	digest, err := helm.ValuesDigest(values)
	if err != nil {
		return nil, nil, fail(ReasonHelmValuesFailed, true, err)
	}
	creds, err := r.helmCredentials(ctx, gs)
	if err != nil {
		return nil, nil, fail(ReasonCredentialsFailed, false, err)
	}
	ns := gs.Namespace
	if gs.Spec.TargetNamespace != "" {
		ns = gs.Spec.TargetNamespace
	}
	name := h.ReleaseName
	if name == "" {
		name = gs.Name
	}
	c := h.Chart
	req := helm.Request{
		Source:      helm.Source{OCI: c.OCI, Path: c.Path, Version: c.Version},
		Credentials: creds,
		CheckoutDir: checkout,
		ReleaseName: name,
		Namespace:   ns,
		Values:      values,
		CRDs:        string(h.CRDs),
		KubeVersion: r.kubeVersion(ctx),
	}
	if c.Repository != nil {
		req.Source.Repository, req.Source.Name = c.Repository.URL, c.Repository.Name
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Rendering chart", "repository", req.Source.Repository, "chart", req.Source.Name, "oci", c.OCI, "path", c.Path, "version", c.Version)
	fctx, cancel := context.WithTimeout(ctx, gs.TimeoutOrDefault())
	defer cancel()
	res, err := r.helm.renderer.Render(fctx, req)
	if res != nil {
		if status.Helm == nil {
			status.Helm = &sluicev1beta1.GitSyncHelmStatus{}
		}
		status.Helm.LastAttemptedChartVersion = res.ChartVersion
	}
	if err != nil {
		// Only what may pass by itself (network, 5xx) is retried with backoff;
		// the rest waits for a change, or the next interval (a new version).
		return nil, nil, fail(ReasonHelmRenderFailed, !helm.IsTransient(err), err)
	}
	return &helmRelease{chart: res.ChartName, version: res.ChartVersion, valuesDigest: digest, hooks: res.SkippedHooks, hookList: res.Hooks}, res.Objects, nil
}

// recordHelm records the release applied in status.helm.
func recordHelm(status *sluicev1beta1.GitSyncStatus, rel *helmRelease) {
	if rel == nil {
		return
	}
	if status.Helm == nil {
		status.Helm = &sluicev1beta1.GitSyncHelmStatus{}
	}
	status.Helm.ChartName = rel.chart
	status.Helm.ChartVersion = rel.version
	status.Helm.LastAttemptedChartVersion = rel.version
	status.Helm.ValuesDigest = rel.valuesDigest
	status.Helm.SkippedHooks = int32(min(rel.hooks, 1<<30)) //nolint:gosec // G115: bounded just above.
}

// helmValues merges spec.helm.valuesFrom in order, then spec.helm.values.
// Errors name the object and key, never a value.
func (r *GitSyncReconciler) helmValues(ctx context.Context, gs *sluicev1beta1.GitSync) (map[string]any, error) {
	values := map[string]any{}
	for i, ref := range gs.Spec.Helm.ValuesFrom {
		key := ref.ValuesKey
		if key == "" {
			key = "values.yaml"
		}
		data, found, err := r.valuesData(ctx, gs.Namespace, ref.Kind, ref.Name, key)
		if err != nil {
			return nil, fmt.Errorf("spec.helm.valuesFrom[%d]: %w", i, err)
		}
		if !found {
			if ref.Optional {
				continue
			}
			return nil, fmt.Errorf("spec.helm.valuesFrom[%d]: %s %s has no key %q (set optional: true to skip it)", i, ref.Kind, ref.Name, key)
		}
		if ref.TargetPath != "" {
			if err := helm.SetString(values, ref.TargetPath, string(data)); err != nil {
				return nil, fmt.Errorf("spec.helm.valuesFrom[%d]: %w", i, err)
			}
			continue
		}
		v, err := helm.ParseValues(data)
		if err != nil {
			return nil, fmt.Errorf("spec.helm.valuesFrom[%d]: key %q of %s %s: %w", i, key, ref.Kind, ref.Name, err)
		}
		values = helm.Merge(values, v)
	}
	if gs.Spec.Helm.Values != nil && len(gs.Spec.Helm.Values.Raw) > 0 {
		v := map[string]any{}
		if err := json.Unmarshal(gs.Spec.Helm.Values.Raw, &v); err != nil {
			return nil, fmt.Errorf("spec.helm.values: %w", err)
		}
		values = helm.Merge(values, v)
	}
	return values, nil
}

// valuesData reads a key of a ConfigMap or Secret; a missing object is
// found=false (the caller decides with optional).
func (r *GitSyncReconciler) valuesData(ctx context.Context, ns, kind, name, key string) ([]byte, bool, error) {
	nn := types.NamespacedName{Namespace: ns, Name: name}
	switch kind {
	case "Secret":
		s := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, nn, s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("failed to read Secret %s: %w", name, err)
		}
		d, ok := s.Data[key]
		return d, ok, nil
	default:
		cm := &corev1.ConfigMap{}
		if err := r.APIReader.Get(ctx, nn, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("failed to read ConfigMap %s: %w", name, err)
		}
		if d, ok := cm.Data[key]; ok {
			return []byte(d), true, nil
		}
		d, ok := cm.BinaryData[key]
		return d, ok, nil
	}
}

// helmCredentials reads spec.helm.chart.secretRef; its values never leave
// the returned struct.
func (r *GitSyncReconciler) helmCredentials(ctx context.Context, gs *sluicev1beta1.GitSync) (*helm.Credentials, error) {
	ref := gs.Spec.Helm.Chart.SecretRef
	if ref == nil {
		return nil, nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %s (spec.helm.chart.secretRef) not found: %w", ref.Name, err)
		}
		return nil, fmt.Errorf("failed to read secret %s (spec.helm.chart.secretRef): %w", ref.Name, err)
	}
	return &helm.Credentials{
		Username:    string(s.Data["username"]),
		Password:    string(s.Data["password"]),
		BearerToken: string(s.Data["bearerToken"]),
		CertPEM:     s.Data[corev1.TLSCertKey],
		KeyPEM:      s.Data[corev1.TLSPrivateKeyKey],
		CAPEM:       s.Data["ca.crt"],
	}, nil
}

// kubeVersion is the API server's version for .Capabilities.KubeVersion,
// read once (again after a failure); Helm's default when it cannot be read.
func (r *GitSyncReconciler) kubeVersion(ctx context.Context) string {
	r.helm.mu.Lock()
	defer r.helm.mu.Unlock()
	if r.helm.version != "" || r.impersonator == nil || r.impersonator.config == nil {
		return r.helm.version
	}
	dc, err := discovery.NewDiscoveryClientForConfig(r.impersonator.config)
	if err == nil {
		var v *version.Info
		if v, err = dc.ServerVersion(); err == nil {
			r.helm.version = v.GitVersion
		}
	}
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot read the Kubernetes version for Helm's .Capabilities")
	}
	return r.helm.version
}
