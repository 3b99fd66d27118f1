package main

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/e2e/stack"
)

// The Canary's analysis, shown to the user as it runs.
const (
	stepWeight  = 20
	maxWeight   = 60
	interval    = "5s"
	minSuccess  = 99
	maxLatency  = 500
	threshold   = 2
	metricRange = "15s"
)

// release is one version of the demo app, as its pods will behave.
type release struct {
	Version   string
	ErrorRate float64
	LatencyMS int
}

// manifests are the files of the demo repository: a Namespace, the app's
// Deployment and its Canary, as a platform team would keep them in Git.
func manifests(host string, r release) (map[string]string, error) {
	ns := corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: namespace},
	}
	nsYAML, err := yaml.Marshal(ns)
	if err != nil {
		return nil, err
	}
	deploy, err := deploymentYAML(r)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"apps/namespace.yaml":          string(nsYAML),
		"apps/podinfo/deployment.yaml": deploy,
		"apps/podinfo/canary.yaml":     canaryYAML(host),
	}, nil
}

func deploymentYAML(r release) (string, error) {
	d := stack.App{Namespace: namespace, Name: app, Replicas: 2, Version: r.Version, ErrorRate: r.ErrorRate, LatencyMS: r.LatencyMS}.Deployment()
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	out, err := yaml.Marshal(d)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func canaryYAML(host string) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: %[1]s
  progressDeadlineSeconds: 120
  service:
    port: %[3]d
    targetPort: %[3]d
    hosts: [%[4]q]
    gatewayRefs:
      - name: %[5]s
        namespace: %[6]s
  analysis:
    interval: %[7]s
    threshold: %[8]d
    stepWeight: %[9]d
    maxWeight: %[10]d
    metrics:
      - name: request-success-rate
        interval: %[11]s
        thresholdRange: {min: %[12]d}
      - name: request-duration
        interval: %[11]s
        thresholdRange: {max: %[13]d}
`, app, namespace, stack.AppPort, host, stack.GatewayName, stack.GatewayNamespace,
		interval, threshold, stepWeight, maxWeight, metricRange, minSuccess, maxLatency)
}
