// Package helm renders Helm charts for GitSync: it fetches a chart from an
// HTTP(S) Helm repository, an OCI registry or a Git checkout, resolves its
// version constraint, and renders it with the Helm SDK into objects that
// GitSync applies like kustomize output. It never talks to the cluster and
// keeps no release state: the GitSync's status is the release record.
package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// CRD policies of Request.CRDs, as spec.helm.crds.
const (
	CRDsCreate        = "Create"
	CRDsCreateReplace = "CreateReplace"
	CRDsSkip          = "Skip"
)

// IfNotPresentAnnotation and IfNotPresentValue mark the CRDs of the Create
// policy: the applier creates them when missing and never updates them.
const (
	IfNotPresentAnnotation = sluicev1beta1.GitSyncSSAAnnotation
	IfNotPresentValue      = sluicev1beta1.GitSyncSSAIfNotPresent
)

// maxCachedArchives bounds the archive cache (at most 16 MiB each).
const maxCachedArchives = 32

// Source is where a chart comes from: exactly one of Repository (with
// Name), OCI and Path.
type Source struct {
	// Repository is an HTTP(S) Helm repository URL and Name the chart in it.
	Repository, Name string
	// OCI is oci://registry/repository/chart, without a tag.
	OCI string
	// Path is a chart directory relative to Request.CheckoutDir.
	Path string
	// Version is a semver constraint; empty means the highest stable version.
	Version string
}

// Request is one render.
type Request struct {
	Source      Source
	Credentials *Credentials
	// CheckoutDir is the Git checkout that Source.Path is relative to.
	CheckoutDir string
	// ReleaseName and Namespace are .Release.Name and .Release.Namespace.
	ReleaseName, Namespace string
	// Values are the user-supplied values (merged over the chart's).
	Values map[string]any
	// CRDs is CRDsCreate (when empty), CRDsCreateReplace or CRDsSkip.
	CRDs string
	// KubeVersion is .Capabilities.KubeVersion, e.g. v1.34.1; Helm's default when empty.
	KubeVersion string
}

// Result is a rendered release.
type Result struct {
	// Objects are the chart's CRDs (per the policy) then its rendered manifests, hooks apart.
	Objects []*unstructured.Unstructured
	// ChartName and ChartVersion are the chart rendered.
	ChartName, ChartVersion string
	// Hooks are the hooks GitSync runs (install, upgrade and test events),
	// in Helm's kind order; see ForEvent for the order of one event.
	Hooks []Hook
	// SkippedHooks counts the hooks of events GitSync does not run (rollback).
	SkippedHooks int
}

// Renderer renders charts; it is safe for concurrent use and keeps
// downloaded archives in memory by URL and digest.
type Renderer struct {
	// MaxIndexSize bounds a repository index; DefaultMaxIndexSize when 0.
	MaxIndexSize int64
	// MaxChartSize bounds a chart archive; DefaultMaxChartSize when 0.
	MaxChartSize int64

	mu    sync.Mutex
	cache map[string][]byte
	order []string
}

func (r *Renderer) maxIndexSize() int64 {
	if r.MaxIndexSize > 0 {
		return r.MaxIndexSize
	}
	return DefaultMaxIndexSize
}

func (r *Renderer) maxChartSize() int64 {
	if r.MaxChartSize > 0 {
		return r.MaxChartSize
	}
	return DefaultMaxChartSize
}

func (r *Renderer) cached(key string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.cache[key]
	return b, ok
}

// store keeps an archive; loaded charts are not kept because rendering
// changes them (disabled dependencies are removed).
func (r *Renderer) store(key string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[string][]byte{}
	}
	if _, ok := r.cache[key]; ok {
		return
	}
	if len(r.order) >= maxCachedArchives {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	r.cache[key] = b
	r.order = append(r.order, key)
}

// Render fetches the chart of req and renders it. When the chart was
// fetched but did not render, the Result names it (no objects) beside the error.
func (r *Renderer) Render(ctx context.Context, req Request) (*Result, error) {
	f, err := r.fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	// Dependencies not vendored in charts/ are downloaded (dependencies.go).
	if err := r.resolveDependencies(ctx, f.chart, req); err != nil {
		return &Result{ChartName: f.chart.Name(), ChartVersion: f.chart.Metadata.Version}, err
	}
	res, err := render(ctx, f.chart, req)
	if err != nil {
		return &Result{ChartName: f.chart.Name(), ChartVersion: f.chart.Metadata.Version}, err
	}
	return res, nil
}

func (r *Renderer) fetch(ctx context.Context, req Request) (*fetched, error) {
	s := req.Source
	switch {
	case s.Repository != "":
		return r.fetchRepository(ctx, s.Repository, s.Name, s.Version, req.Credentials)
	case s.OCI != "":
		return r.fetchOCI(ctx, s.OCI, s.Version, req.Credentials)
	case s.Path != "":
		return loadPath(req.CheckoutDir, s.Path)
	}
	return nil, errors.New("the chart needs a repository, an OCI reference or a path")
}

// render does what Helm's install does client-only (helm template):
// dependencies, values coalesced and checked against values.schema.json,
// the templates rendered, NOTES.txt dropped, hooks taken apart. Helm's
// action package is not used: it brings Helm's release storage (SQL
// drivers), its Kubernetes client and its plugin runtime into Sluice.
func render(ctx context.Context, c *chart.Chart, req Request) (*Result, error) {
	name, version := c.Name(), c.Metadata.Version
	caps := common.DefaultCapabilities.Copy()
	if req.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(req.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("invalid Kubernetes version %q: %w", req.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	if c.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart %s %s requires kubeVersion %s, which is incompatible with Kubernetes %s", name, version, c.Metadata.KubeVersion, caps.KubeVersion.Version)
	}
	vals := req.Values
	if vals == nil {
		vals = map[string]any{}
	}
	if err := chartutil.ProcessDependencies(c, vals); err != nil {
		return nil, fmt.Errorf("chart %s %s: dependencies: %w", name, version, err)
	}
	opts := common.ReleaseOptions{Name: req.ReleaseName, Namespace: req.Namespace, Revision: 1, IsInstall: true}
	toRender, err := commonutil.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, false)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", name, version, err)
	}
	files, err := engine.Engine{}.RenderWithContext(ctx, c, toRender)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", name, version, err)
	}
	for k := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(files, k)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", name, version, err)
	}
	var manifest strings.Builder
	for _, m := range manifests {
		manifest.WriteString("---\n" + m.Content + "\n")
	}
	res := &Result{ChartName: name, ChartVersion: version}
	if res.Hooks, res.SkippedHooks, err = hooksOf(hooks, req.Namespace); err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", name, version, err)
	}
	if req.CRDs != CRDsSkip {
		for _, crd := range c.CRDObjects() {
			objs, err := decode(string(crd.File.Data))
			if err != nil {
				return nil, fmt.Errorf("chart %s %s: %s: %w", name, version, crd.Filename, err)
			}
			for _, o := range objs {
				a := o.GetAnnotations()
				if a == nil {
					a = map[string]string{}
				}
				// As Helm, never delete a chart's CRDs (with them, every
				// custom resource): not when the chart drops one, not with Skip.
				a[sluicev1beta1.GitSyncPruneAnnotation] = sluicev1beta1.GitSyncPruneDisabled
				if req.CRDs != CRDsCreateReplace {
					a[IfNotPresentAnnotation] = IfNotPresentValue
				}
				o.SetAnnotations(a)
			}
			res.Objects = append(res.Objects, objs...)
		}
	}
	objs, err := decode(manifest.String())
	if err != nil {
		return nil, fmt.Errorf("chart %s %s rendered invalid YAML: %w", name, version, err)
	}
	res.Objects = append(res.Objects, objs...)
	return res, nil
}

// decode splits a multi-document manifest into objects, skipping empty documents.
func decode(manifest string) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("an object without kind or apiVersion (name %q)", u.GetName())
		}
		out = append(out, u)
	}
}

// ValuesDigest is the sha256 of values in canonical JSON (sorted keys).
func ValuesDigest(values map[string]any) (string, error) {
	b, err := json.Marshal(values)
	if err != nil {
		return "", fmt.Errorf("failed to encode the values: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
