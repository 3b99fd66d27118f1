package canary

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/revision"
)

// Config kinds, as used in the keys of status.trackedConfigs ("configmap/<name>").
const (
	kindConfigMap = "configmap"
	kindSecret    = "secret"
)

// configRef is a ConfigMap or Secret referenced by a pod template.
type configRef struct {
	kind     string
	name     string
	optional bool
}

func (r configRef) key() string { return r.kind + "/" + r.name }

// referencedConfigs lists the ConfigMaps and Secrets a pod spec uses, through
// volumes (also projected), env and envFrom of every container.
func referencedConfigs(spec *corev1.PodSpec) []configRef {
	seen := map[string]configRef{}
	add := func(kind, name string, optional *bool) {
		if name == "" {
			return
		}
		r := configRef{kind: kind, name: name, optional: optional != nil && *optional}
		if prev, ok := seen[r.key()]; ok {
			r.optional = r.optional && prev.optional
		}
		seen[r.key()] = r
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			add(kindConfigMap, v.ConfigMap.Name, v.ConfigMap.Optional)
		}
		if v.Secret != nil {
			add(kindSecret, v.Secret.SecretName, v.Secret.Optional)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					add(kindConfigMap, s.ConfigMap.Name, s.ConfigMap.Optional)
				}
				if s.Secret != nil {
					add(kindSecret, s.Secret.Name, s.Secret.Optional)
				}
			}
		}
	}
	for _, c := range allContainers(spec) {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				add(kindConfigMap, e.ConfigMapRef.Name, e.ConfigMapRef.Optional)
			}
			if e.SecretRef != nil {
				add(kindSecret, e.SecretRef.Name, e.SecretRef.Optional)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				add(kindConfigMap, r.Name, r.Optional)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				add(kindSecret, r.Name, r.Optional)
			}
		}
	}
	out := make([]configRef, 0, len(seen))
	for _, r := range seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// renameConfigs points the references of a pod spec at the primary's copies.
// renames maps "configmap/<name>" and "secret/<name>" to the copy's name.
func renameConfigs(spec *corev1.PodSpec, renames map[string]string) {
	if len(renames) == 0 {
		return
	}
	cm := func(n *string) {
		if to, ok := renames[kindConfigMap+"/"+*n]; ok {
			*n = to
		}
	}
	sec := func(n *string) {
		if to, ok := renames[kindSecret+"/"+*n]; ok {
			*n = to
		}
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.ConfigMap != nil {
			cm(&v.ConfigMap.Name)
		}
		if v.Secret != nil {
			sec(&v.Secret.SecretName)
		}
		if v.Projected != nil {
			for j := range v.Projected.Sources {
				s := &v.Projected.Sources[j]
				if s.ConfigMap != nil {
					cm(&s.ConfigMap.Name)
				}
				if s.Secret != nil {
					sec(&s.Secret.Name)
				}
			}
		}
	}
	for _, c := range allContainers(spec) {
		for j := range c.EnvFrom {
			if r := c.EnvFrom[j].ConfigMapRef; r != nil {
				cm(&r.Name)
			}
			if r := c.EnvFrom[j].SecretRef; r != nil {
				sec(&r.Name)
			}
		}
		for j := range c.Env {
			if vf := c.Env[j].ValueFrom; vf != nil {
				if vf.ConfigMapKeyRef != nil {
					cm(&vf.ConfigMapKeyRef.Name)
				}
				if vf.SecretKeyRef != nil {
					sec(&vf.SecretKeyRef.Name)
				}
			}
		}
	}
}

// trackingDisabled tells whether an object opted out of config tracking.
func trackingDisabled(annotations map[string]string) bool {
	return annotations[sluicev1beta1.ConfigTrackingAnnotation] == "disabled" ||
		annotations[sluicev1beta1.FlaggerConfigTrackingAnnotation] == "disabled"
}

// trackedConfigs is the outcome of observing the configs of a target.
type trackedConfigs struct {
	refs      []configRef       // tracked (existing, not opted out)
	checksums map[string]string // key → checksum
	versions  map[string]string // key → resourceVersion
}

// renames maps each tracked config to the name of its primary copy.
func (t trackedConfigs) renames() map[string]string {
	out := map[string]string{}
	for _, r := range t.refs {
		out[r.key()] = r.name + "-primary"
	}
	return out
}

// observeConfigs finds the tracked configs of a pod spec and their checksums.
// Metadata comes from the metadata-only cache; data is read from the API
// server only when an object's resourceVersion differs from the one whose
// checksum status already holds.
func (r *CanaryReconciler) observeConfigs(ctx context.Context, c *sluicev1beta1.Canary, spec *corev1.PodSpec) (trackedConfigs, error) {
	out := trackedConfigs{checksums: map[string]string{}, versions: map[string]string{}}
	if r.DisableConfigTracking {
		return out, nil
	}
	for _, ref := range referencedConfigs(spec) {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kindOf(ref)))
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.name}, meta); err != nil {
			if apierrors.IsNotFound(err) {
				continue // the pods report it; nothing to track
			}
			return out, fmt.Errorf("failed to get %s %s: %w", kindOf(ref), ref.name, err)
		}
		if trackingDisabled(meta.Annotations) {
			continue
		}
		key := ref.key()
		sum, known := c.Status.TrackedConfigs[key]
		if !known || c.Status.TrackedConfigVersions[key] != meta.ResourceVersion {
			obj, err := r.readConfig(ctx, c.Namespace, ref)
			if err != nil {
				return out, err
			}
			sum = checksum(obj)
		}
		out.refs = append(out.refs, ref)
		out.checksums[key] = sum
		out.versions[key] = meta.ResourceVersion
	}
	return out, nil
}

func kindOf(ref configRef) string {
	if ref.kind == kindSecret {
		return "Secret"
	}
	return "ConfigMap"
}

// readConfig reads a config's data straight from the API server (configs are
// cached as metadata only, so Secrets' data is not held in memory).
func (r *CanaryReconciler) readConfig(ctx context.Context, ns string, ref configRef) (client.Object, error) {
	var obj client.Object = &corev1.ConfigMap{}
	if ref.kind == kindSecret {
		obj = &corev1.Secret{}
	}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.name}, obj); err != nil {
		return nil, fmt.Errorf("failed to read %s %s: %w", kindOf(ref), ref.name, err)
	}
	return obj, nil
}

// checksum hashes the data and binaryData of a ConfigMap, or the data of a
// Secret (see pkg/revision, which GitSync's content-hash annotation uses too).
func checksum(obj client.Object) string {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return revision.ConfigMapChecksum(o)
	case *corev1.Secret:
		return revision.SecretChecksum(o)
	}
	return revision.ConfigMapChecksum(&corev1.ConfigMap{})
}

// syncConfigCopies creates the primary's copies of the tracked configs, and
// when update is set (promotion) brings their data up to date.
func (r *CanaryReconciler) syncConfigCopies(ctx context.Context, c *sluicev1beta1.Canary, t trackedConfigs, update bool) error {
	for _, ref := range t.refs {
		sum := t.checksums[ref.key()]
		name := ref.name + "-primary"
		existing := &metav1.PartialObjectMetadata{}
		existing.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kindOf(ref)))
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, existing)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("failed to get %s %s: %w", kindOf(ref), name, err)
		case !update || existing.Annotations[sluicev1beta1.SpecHashAnnotation] == sum:
			continue
		}
		src, err := r.readConfig(ctx, c.Namespace, ref)
		if err != nil {
			return err
		}
		cp := copyConfig(src, name)
		cp.GetAnnotations()[sluicev1beta1.SpecHashAnnotation] = checksum(src)
		if err := controllerutil.SetControllerReference(c, cp, r.Scheme); err != nil {
			return err
		}
		var live client.Object
		if existing.ResourceVersion != "" { // found above
			live = existing
		}
		if live != nil && immutable(src) {
			// Immutable configs cannot be changed: replace the copy.
			if err := r.Client.Delete(ctx, existing); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("failed to replace immutable %s %s: %w", kindOf(ref), name, err)
			}
			live = nil
		}
		if err := r.applyOwned(ctx, cp, live); err != nil {
			return err
		}
	}
	return nil
}

func immutable(obj client.Object) bool {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return o.Immutable != nil && *o.Immutable
	case *corev1.Secret:
		return o.Immutable != nil && *o.Immutable
	}
	return false
}

// copyConfig copies a config's data (including binaryData) under a new name.
func copyConfig(src client.Object, name string) client.Object {
	meta := metav1.ObjectMeta{Name: name, Namespace: src.GetNamespace(), Labels: withoutGitOps(src.GetLabels()),
		Annotations: map[string]string{}}
	switch o := src.(type) {
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{ObjectMeta: meta, Data: o.Data, BinaryData: o.BinaryData, Immutable: o.Immutable}
	case *corev1.Secret:
		return &corev1.Secret{ObjectMeta: meta, Data: o.Data, Type: o.Type, Immutable: o.Immutable}
	}
	return nil
}
