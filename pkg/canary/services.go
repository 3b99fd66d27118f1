package canary

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// sidecars are containers whose ports port discovery leaves out.
var sidecars = map[string]bool{"istio-proxy": true, "envoy": true, "linkerd-proxy": true}

// servicePorts are the ports of the generated Services: the main port, and
// with portDiscovery every other container port of the target.
func servicePorts(c *sluicev1beta1.Canary, tmpl *corev1.PodTemplateSpec) []corev1.ServicePort {
	s := c.Spec.Service
	target := s.TargetPort
	if target.IntVal == 0 && target.StrVal == "" {
		target = intstr.FromInt32(s.Port)
	}
	main := corev1.ServicePort{Name: c.PortName(), Port: s.Port, TargetPort: target, Protocol: corev1.ProtocolTCP}
	if s.AppProtocol != "" {
		main.AppProtocol = &s.AppProtocol
	}
	ports := []corev1.ServicePort{main}
	if !s.PortDiscovery {
		return ports
	}
	for _, ctr := range tmpl.Spec.Containers {
		if sidecars[ctr.Name] {
			continue
		}
		for _, p := range ctr.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			name := p.Name
			if name == "" {
				name = fmt.Sprintf("tcp-%d", p.ContainerPort)
			}
			if slices.ContainsFunc(ports, func(sp corev1.ServicePort) bool {
				return sp.Name == name || sp.Port == p.ContainerPort || sp.TargetPort.IntVal == p.ContainerPort || (p.Name != "" && sp.TargetPort.StrVal == p.Name)
			}) {
				continue
			}
			ports = append(ports, corev1.ServicePort{Name: name, Port: p.ContainerPort, TargetPort: intstr.FromInt32(p.ContainerPort), Protocol: corev1.ProtocolTCP})
		}
	}
	return ports
}

// ensureServices creates or updates <svc>, <svc>-primary and <svc>-canary.
// The apex Service selects the primary's pods; with the kubernetes provider
// its selector is the router's once created, so a blue/green switch holds.
// An apex Service that already existed is taken over but not owned, so it is
// never garbage-collected with the Canary.
func (r *CanaryReconciler) ensureServices(ctx context.Context, s *scope) error {
	apex, primary, canary := s.canary.ServiceNames()
	sm := s.canary.Spec.Service
	ports := servicePorts(s.canary, s.target.podTemplate())
	primarySel := map[string]string{s.label: s.value + "-primary"}
	canarySel := map[string]string{s.label: s.value}
	keepApexSelector := s.provider == sluicev1beta1.ProviderKubernetes
	if err := r.ensureService(ctx, s, apex, primarySel, ports, sm.Apex, keepApexSelector); err != nil {
		return err
	}
	if err := r.ensureService(ctx, s, primary, primarySel, ports, sm.Primary, false); err != nil {
		return err
	}
	return r.ensureService(ctx, s, canary, canarySel, ports, sm.Canary, false)
}

func (r *CanaryReconciler) ensureService(ctx context.Context, s *scope, name string, selector map[string]string,
	ports []corev1.ServicePort, md *sluicev1beta1.CustomMetadata, keepSelector bool) error {
	c := s.canary
	labels := map[string]string{s.label: name}
	annotations := map[string]string{}
	if md != nil {
		maps.Copy(labels, md.Labels)
		maps.Copy(annotations, md.Annotations)
	}
	spec := corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector, Ports: ports}
	if c.Spec.Service.TrafficDistribution != "" {
		td := c.Spec.Service.TrafficDistribution
		spec.TrafficDistribution = &td
	}
	hash := hashBytes(fmt.Appendf(nil, "%v|%v|%v|%v|%v|%v", spec.Selector, spec.Ports, labels, annotations, c.Spec.Service.TrafficDistribution, keepSelector), 16)

	live := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, live)
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return fmt.Errorf("failed to get Service %s: %w", name, err)
	// The hash says whether the engine's own rendering changed; the selector
	// is compared too, so one that someone else changed (a hand edit, an
	// apply from Git) is put back.
	case live.Annotations[sluicev1beta1.SpecHashAnnotation] == hash && (keepSelector || maps.Equal(live.Spec.Selector, selector)):
		return nil
	}
	want := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace}, Spec: spec}
	unmanaged := unmanagedKeys(c)
	want.Labels = mergeManaged(nil, labels, unmanaged.labels)
	want.Annotations = mergeManaged(nil, annotations, unmanaged.annotations)
	want.Annotations[sluicev1beta1.SpecHashAnnotation] = hash
	if live == nil {
		if c.Spec.Service.Headless {
			want.Spec.ClusterIP = corev1.ClusterIPNone
		}
		if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
			return err
		}
		return r.applyOwned(ctx, want, nil)
	}
	// What the engine applied once it must apply every time, or the API
	// server removes it: the owner reference of a Service it created, the
	// cluster IP of a headless one. An apex Service that was there before is
	// taken over, not owned, and its type stays the user's.
	if metav1.IsControlledBy(live, c) {
		if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
			return err
		}
		if live.Spec.ClusterIP == corev1.ClusterIPNone {
			want.Spec.ClusterIP = corev1.ClusterIPNone
		}
	} else {
		want.Spec.Type = ""
	}
	// With the kubernetes provider the router owns the apex selector once
	// it has applied it; until then the engine keeps applying the one it
	// set, so that leaving it out does not remove it.
	if keepSelector {
		want.Spec.Selector = nil
		if !ownsField(live, sluicev1beta1.FieldManagerRouter, "f:spec", "f:selector") {
			want.Spec.Selector = live.Spec.Selector
		}
	}
	want.Spec.Ports = mergePorts(live.Spec.Ports, ports)
	return r.applyOwned(ctx, want, live)
}

type unmanagedSet struct{ labels, annotations map[string]bool }

func unmanagedKeys(c *sluicev1beta1.Canary) unmanagedSet {
	u := unmanagedSet{labels: map[string]bool{}, annotations: map[string]bool{}}
	if m := c.Spec.Service.UnmanagedMetadata; m != nil {
		for _, k := range m.Labels {
			u.labels[k] = true
		}
		for _, k := range m.Annotations {
			u.annotations[k] = true
		}
	}
	return u
}

// mergeManaged sets the wanted keys on existing metadata and leaves the
// unmanaged keys as they are.
func mergeManaged(existing, want map[string]string, unmanaged map[string]bool) map[string]string {
	out := maps.Clone(existing)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range want {
		if !unmanaged[k] {
			out[k] = v
		}
	}
	return out
}

// mergePorts keeps the node ports the API server assigned.
func mergePorts(existing, want []corev1.ServicePort) []corev1.ServicePort {
	out := slices.Clone(want)
	for i := range out {
		for _, e := range existing {
			if e.Name == out[i].Name && e.Port == out[i].Port {
				out[i].NodePort = e.NodePort
			}
		}
	}
	return out
}

// restoreApex points the apex Service at the target's pods and removes the
// Canary from its owners, so that deleting the Canary leaves it serving.
func (r *CanaryReconciler) restoreApex(ctx context.Context, s *scope) error {
	apex, _, _ := s.canary.ServiceNames()
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.canary.Namespace, Name: apex}, svc); err != nil {
		return client.IgnoreNotFound(err)
	}
	base := svc.DeepCopy()
	svc.Spec.Selector = map[string]string{s.label: s.value}
	svc.OwnerReferences = slices.DeleteFunc(svc.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == s.canary.UID })
	delete(svc.Annotations, sluicev1beta1.SpecHashAnnotation)
	if err := r.Client.Patch(ctx, svc, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("failed to point Service %s back at the target: %w", apex, err)
	}
	return nil
}
