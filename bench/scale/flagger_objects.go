package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// flaggerCanaryGVK is Flagger's Canary; the benchmark renders it
// unstructured rather than importing Flagger's API types into the module.
var flaggerCanaryGVK = schema.GroupVersionKind{Group: "flagger.app", Version: "v1beta1", Kind: "Canary"}

// flaggerProvider maps a Sluice provider to Flagger's spelling of the same
// router: Flagger names the Gateway API provider by its API version.
func flaggerProvider(p string) string {
	if p == sluicev1beta1.ProviderGatewayAPI {
		return "gatewayapi:v1"
	}
	return p
}

// flaggerCanary renders the Flagger Canary that matches f.canary(k,
// provider) field for field: same target, port, interval, threshold,
// iterations or weights, builtin metric and progress deadline.
func (f *fleet) flaggerCanary(k types.NamespacedName, provider string) *unstructured.Unstructured {
	analysis := map[string]any{
		"interval":  f.interval.String(),
		"threshold": int64(2),
		"metrics": []any{map[string]any{
			"name":           sluicev1beta1.MetricRequestSuccessRate,
			"interval":       time.Minute.String(),
			"thresholdRange": map[string]any{"min": float64(99)},
		}},
	}
	service := map[string]any{"port": int64(80), "targetPort": int64(8080)}
	if provider == sluicev1beta1.ProviderKubernetes {
		analysis["iterations"] = int64(f.iterations)
	} else {
		analysis["stepWeight"], analysis["maxWeight"] = int64(f.stepWeight), int64(f.maxWeight)
	}
	if provider == sluicev1beta1.ProviderGatewayAPI {
		// group and kind spelled out: they are the CRD's defaults, so the
		// object reads back as written.
		service["gatewayRefs"] = []any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "bench-gateway"}}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"namespace": k.Namespace, "name": k.Name},
		"spec": map[string]any{
			"provider":                flaggerProvider(provider),
			"targetRef":               map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": k.Name},
			"service":                 service,
			"progressDeadlineSeconds": int64(1800),
			"analysis":                analysis,
		},
	}}
	u.SetGroupVersionKind(flaggerCanaryGVK)
	return u
}

// createFlagger makes the Flagger fleet: the same namespaces, ConfigMaps and
// Deployments as create, with a Flagger Canary in place of Sluice's.
func (f *fleet) createFlagger(ctx context.Context, workers int) error {
	for ns := 0; ns*perNamespace < f.n; ns++ {
		o := f.namespace(ns)
		if err := f.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create namespace %s: %w", o.GetName(), err)
		}
	}
	return parallel(ctx, f.n, workers, func(i int) error {
		k := f.key(i)
		for _, o := range []client.Object{f.configMap(k), f.deployment(k, "1"), f.flaggerCanary(k, f.provider(i))} {
			if err := f.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("failed to create %T %s: %w", o, k, err)
			}
		}
		return nil
	})
}

func (f *fleet) namespace(i int) client.Object {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(fmt.Sprintf("%s-%d", f.prefix(), i))
	return u
}

// maxCRDFile bounds the read of Flagger's CRD file (about 100 KiB in v1.44).
const maxCRDFile = 8 << 20

// readCRDs decodes the CustomResourceDefinitions of a multi-document YAML
// file, skipping empty documents.
func readCRDs(r io.Reader) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(io.LimitReader(r, maxCRDFile)), 4096)
	var out []*apiextensionsv1.CustomResourceDefinition
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		err := dec.Decode(crd)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to decode a CRD: %w", err)
		}
		if crd.Name == "" {
			continue
		}
		if crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("unexpected %s %q in a CRD file", crd.Kind, crd.Name)
		}
		out = append(out, crd)
	}
}

// installFlaggerCRDs creates the CRDs of the file hack/tools.sh flagger
// copied from the Flagger module and waits until each is established.
func installFlaggerCRDs(ctx context.Context, c client.Client, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read Flagger's CRDs (run hack/tools.sh flagger): %w", err)
	}
	crds, err := readCRDs(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, crd := range crds {
		if err := c.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, got); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s was not established: %w", crd.Name, err)
		}
	}
	return nil
}
