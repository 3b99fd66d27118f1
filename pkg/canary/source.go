package canary

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A release records the Git revision that started it (status.source), so
// that commit statuses and delivery figures name the commit. GitSync
// annotates what each revision created or changed (pkg/gitsync/source.go)
// with the revision and the content hash of what it applied: the engine
// takes a source only from an object whose content hash is the content this
// release brought, so a source is never carried to a release it did not
// start. The annotation lands just after GitSync's apply, often after the
// release started: the update wakes the Canary (the target and the tracked
// configs are watched) and the next reconcile records it.

// GitSource is what the GitSync source annotations of one object say.
type GitSource struct {
	GitSyncName      string
	GitSyncNamespace string
	Revision         string
	CommitTime       *metav1.Time
	AppliedTime      *metav1.Time
	// ContentHash is the pod template hash or config checksum the
	// annotations describe.
	ContentHash string
}

// Sources are the GitSync source annotations that can name the commit of a
// release.
type Sources struct {
	// Target is the target's; nil when it carries none.
	Target *GitSource
	// Configs are the tracked configs', by key ("configmap/<name>").
	Configs map[string]*GitSource
	// PromotedConfigs are the checksums of the primary's config copies (the
	// data last promoted), by key: a tracked config whose checksum is its
	// copy's was not changed by the release.
	PromotedConfigs map[string]string
}

// sourceOf reads the source annotations of an object; nil when it has none,
// or they are incomplete (no revision, content hash or GitSync owner labels).
func sourceOf(o metav1.Object) *GitSource {
	a, l := o.GetAnnotations(), o.GetLabels()
	s := &GitSource{
		GitSyncName:      l[sluicev1beta1.GitSyncNameLabel],
		GitSyncNamespace: l[sluicev1beta1.GitSyncNamespaceLabel],
		Revision:         a[sluicev1beta1.GitSyncRevisionAnnotation],
		ContentHash:      a[sluicev1beta1.GitSyncContentHashAnnotation],
		CommitTime:       parseTime(a[sluicev1beta1.GitSyncCommitTimeAnnotation]),
		AppliedTime:      parseTime(a[sluicev1beta1.GitSyncAppliedTimeAnnotation]),
	}
	if s.GitSyncName == "" || s.GitSyncNamespace == "" || s.Revision == "" || s.ContentHash == "" {
		return nil
	}
	// Bounded as status.source is: an annotation is anybody's to write.
	if len(s.GitSyncName) > 253 || len(s.GitSyncNamespace) > 63 || len(s.Revision) > 512 {
		return nil
	}
	return s
}

func parseTime(v string) *metav1.Time {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// observeSources reads the source annotations of the target and of its
// tracked configs, and the checksums of the primary's config copies. The
// configs' metadata comes from the metadata-only cache.
func (r *CanaryReconciler) observeSources(ctx context.Context, s *scope) (Sources, error) {
	out := Sources{Target: sourceOf(s.target)}
	for _, ref := range s.configs.refs {
		meta, err := r.configMeta(ctx, s.canary.Namespace, ref, ref.name)
		if err != nil {
			return out, err
		}
		if meta == nil {
			continue
		}
		src := sourceOf(meta)
		if src == nil {
			continue
		}
		copyMeta, err := r.configMeta(ctx, s.canary.Namespace, ref, ref.name+"-primary")
		if err != nil {
			return out, err
		}
		if out.Configs == nil {
			out.Configs, out.PromotedConfigs = map[string]*GitSource{}, map[string]string{}
		}
		out.Configs[ref.key()] = src
		if copyMeta != nil {
			out.PromotedConfigs[ref.key()] = copyMeta.Annotations[sluicev1beta1.SpecHashAnnotation]
		}
	}
	return out, nil
}

// configMeta reads a config's metadata from the cache; nil when it is gone.
func (r *CanaryReconciler) configMeta(ctx context.Context, ns string, ref configRef, name string) (*metav1.PartialObjectMetadata, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kindOf(ref)))
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get %s %s: %w", kindOf(ref), name, err)
	}
	return meta, nil
}

// setSource records the source of the release under way, once: the target's
// annotations when they describe the pod template this release brought,
// a tracked config's when they describe the data this release brought; of
// several, the newest commit. A source of an earlier release is dropped
// when a release starts: status.source always describes status.revision.
func (x *decider) setSource() {
	st := x.st
	if st.Source != nil && st.Source.Release == st.Revision {
		return
	}
	st.Source = nil
	if st.Revision == "" {
		return
	}
	var best *GitSource
	consider := func(s *GitSource) {
		if best == nil || newerCommit(s, best) {
			best = s
		}
	}
	if t := x.o.Sources.Target; t != nil && st.LastAppliedSpec != st.LastPromotedSpec &&
		t.ContentHash == st.LastAppliedSpec && t.ContentHash == x.o.Target.TemplateHash {
		consider(t)
	}
	keys := make([]string, 0, len(st.TrackedConfigs))
	for k := range st.TrackedConfigs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same observation gives the same source
	for _, k := range keys {
		sum := st.TrackedConfigs[k]
		c := x.o.Sources.Configs[k]
		promoted, hasCopy := x.o.Sources.PromotedConfigs[k]
		if c == nil || c.ContentHash != sum || x.o.Target.Configs[k] != sum || !hasCopy || promoted == sum {
			continue
		}
		consider(c)
	}
	if best == nil {
		return
	}
	st.Source = &sluicev1beta1.ReleaseSource{
		GitSyncName: best.GitSyncName, GitSyncNamespace: best.GitSyncNamespace,
		Revision: best.Revision, CommitTime: best.CommitTime, AppliedTime: best.AppliedTime,
		Release: st.Revision,
	}
}

// newerCommit tells whether a was committed after b (a known time is newer
// than none; the applied time decides between equal commit times).
func newerCommit(a, b *GitSource) bool {
	if !timeEqual(a.CommitTime, b.CommitTime) {
		return timeAfter(a.CommitTime, b.CommitTime)
	}
	return timeAfter(a.AppliedTime, b.AppliedTime)
}

func timeEqual(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

func timeAfter(a, b *metav1.Time) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	}
	return a.After(b.Time)
}
