package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// perNamespace is how many canaries share a namespace.
const perNamespace = 100

// fleet is the set of canaries under test.
type fleet struct {
	c        client.Client
	n        int
	interval time.Duration
	// Canary strategy (gatewayapi): weights stepWeight, 2×stepWeight … maxWeight.
	stepWeight, maxWeight int32
	// Blue/green (kubernetes): iterations.
	iterations int32
	// shards > 0 labels canary i for shard shardKey(i, shards).
	shards int
	// nsPrefix names the namespaces (<nsPrefix>-0, -1 …); "bench" when
	// empty. The Flagger fleet has its own, so neither controller sees the
	// other's objects.
	nsPrefix string
}

// name and namespace of canary i.
func (f *fleet) key(i int) types.NamespacedName {
	return types.NamespacedName{Namespace: fmt.Sprintf("%s-%d", f.prefix(), i/perNamespace), Name: fmt.Sprintf("app-%04d", i)}
}

func (f *fleet) prefix() string {
	if f.nsPrefix == "" {
		return "bench"
	}
	return f.nsPrefix
}

// providers are the providers of the fleet, a quarter each: canary i uses
// providers[i%4]. Istio and Traefik routing objects are unstructured,
// Gateway API ones typed: both kinds of cache are measured.
var providers = []string{sluicev1beta1.ProviderKubernetes, sluicev1beta1.ProviderGatewayAPI,
	sluicev1beta1.ProviderIstio, sluicev1beta1.ProviderTraefik}

func (f *fleet) provider(i int) string { return providers[i%len(providers)] }

// count is how many canaries of the fleet use provider p.
func (f *fleet) count(p string) int {
	n := 0
	for i := range f.n {
		if f.provider(i) == p {
			n++
		}
	}
	return n
}

// steps is the number of analysis steps of one release: one per weight (or
// iteration), plus the last check at max weight that starts the promotion.
func (f *fleet) steps(provider string) int {
	if provider == sluicev1beta1.ProviderKubernetes {
		return int(f.iterations) + 1
	}
	return int((f.maxWeight+f.stepWeight-1)/f.stepWeight) + 1
}

// drain is how long the engine keeps the canary's pods after promotion
// moved the traffic away (pkg/canary: one interval, at most 10 s).
func (f *fleet) drain() time.Duration { return min(f.interval, 10*time.Second) }

// ideal is the shortest release: every analysis step one interval after the
// previous one, then the drain, with pods that are ready at once.
func (f *fleet) ideal(provider string) time.Duration {
	return time.Duration(f.steps(provider))*f.interval + f.drain()
}

// create makes the namespaces and, per canary, a ConfigMap, a Deployment
// using it, and the Canary.
func (f *fleet) create(ctx context.Context, workers int) error {
	for ns := 0; ns*perNamespace < f.n; ns++ {
		o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", f.prefix(), ns)}}
		if err := f.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create namespace %s: %w", o.Name, err)
		}
	}
	return parallel(ctx, f.n, workers, func(i int) error {
		k := f.key(i)
		c := f.canary(k, f.provider(i))
		if f.shards > 0 {
			c.Labels = map[string]string{sluicev1beta1.ShardLabel: shardKey(i, f.shards)}
		}
		for _, o := range []client.Object{f.configMap(k), f.deployment(k, "1"), c} {
			if err := f.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("failed to create %T %s: %w", o, k, err)
			}
		}
		return nil
	})
}

// release sets a new image on every target at once.
func (f *fleet) release(ctx context.Context, workers int, version string) error {
	patch := []byte(fmt.Sprintf(`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"example.com/app:%s"}]`, version))
	return parallel(ctx, f.n, workers, func(i int) error {
		k := f.key(i)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name}}
		if err := f.c.Patch(ctx, d, client.RawPatch(types.JSONPatchType, patch)); err != nil {
			return fmt.Errorf("failed to set the image of %s: %w", k, err)
		}
		return nil
	})
}

func (f *fleet) configMap(k types.NamespacedName) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name + "-config"},
		Data: map[string]string{"GREETING": "hello"}}
}

func (f *fleet) deployment(k types.NamespacedName, version string) *appsv1.Deployment {
	labels := map[string]string{"app": k.Name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/app:" + version,
					Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: k.Name + "-config"}}}},
				}}},
			},
		},
	}
}

func (f *fleet) canary(k types.NamespacedName, provider string) *sluicev1beta1.Canary {
	a := &sluicev1beta1.CanaryAnalysis{
		Interval:  &metav1.Duration{Duration: f.interval},
		Threshold: 2,
		Metrics: []sluicev1beta1.CanaryMetric{{
			Name:           sluicev1beta1.MetricRequestSuccessRate,
			Interval:       &metav1.Duration{Duration: time.Minute},
			ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
		}},
	}
	svc := sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)}
	if provider == sluicev1beta1.ProviderKubernetes {
		a.Iterations = f.iterations
	} else {
		a.StepWeight, a.MaxWeight = f.stepWeight, f.maxWeight
	}
	if provider == sluicev1beta1.ProviderGatewayAPI {
		svc.GatewayRefs = []gatewayv1.ParentReference{{Name: "bench-gateway"}}
	}
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:                provider,
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: k.Name},
			Service:                 svc,
			ProgressDeadlineSeconds: ptr.To[int32](1800),
			Analysis:                a,
		},
	}
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	idx := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case idx <- i:
		case <-ctx.Done():
			close(idx)
			wg.Wait()
			return ctx.Err()
		}
	}
	close(idx)
	wg.Wait()
	return first
}
