package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AppPort is the port the stack's demo workloads declare.
const AppPort = 9898

// App describes a podinfo-like workload: a Deployment whose pods (played by
// the stack) answer with Version, failing ErrorRate of the requests after
// LatencyMS milliseconds.
type App struct {
	Namespace string
	Name      string
	Replicas  int32
	Version   string
	ErrorRate float64
	LatencyMS int
}

// Deployment returns the workload's Deployment, labelled app=<name>.
func (a App) Deployment() *appsv1.Deployment {
	labels := map[string]string{"app": a.Name}
	replicas := a.Replicas
	if replicas == 0 {
		replicas = 1
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: a.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "ghcr.io/sluice-cd/demo:" + a.Version,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: AppPort}},
					Env:   a.Env(),
				}}},
			},
		},
	}
}

// Env returns the env vars the stack's pods obey.
func (a App) Env() []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: EnvVersion, Value: a.Version},
		{Name: EnvErrorRate, Value: strconv.FormatFloat(a.ErrorRate, 'f', -1, 64)},
		{Name: EnvLatencyMS, Value: strconv.Itoa(a.LatencyMS)},
	}
}

// Release changes the workload's version, error rate and latency in the
// Deployment d (image tag and env), as a new release would.
func (a App) Release(d *appsv1.Deployment) {
	c := &d.Spec.Template.Spec.Containers[0]
	c.Image = "ghcr.io/sluice-cd/demo:" + a.Version
	c.Env = a.Env()
}

// Service returns a ClusterIP Service selecting the workload's pods.
func (a App) Service() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: a.Namespace},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": a.Name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: AppPort, TargetPort: intstr.FromInt32(AppPort)}},
		},
	}
}

// WaitServing waits until the stack's pods listen on the ClusterIP of the
// Service ns/name (port AppPort).
func (s *Stack) WaitServing(ctx context.Context, ns, name string, timeout time.Duration) error {
	return waitServing(ctx, s.Client, s.Pods, ns, name, timeout)
}

// waitServing waits until pods listen on the ClusterIP of the Service
// ns/name of the cluster of c.
func waitServing(ctx context.Context, c client.Client, pods *Pods, ns, name string, timeout time.Duration) error {
	svc := &corev1.Service{}
	return poll(ctx, timeout, func() (bool, error) {
		if err := c.Get(ctx, objectKey(ns, name), svc); err != nil || svc.Spec.ClusterIP == "" {
			return false, nil
		}
		want := fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, AppPort)
		for _, a := range pods.Addresses() {
			if a == want {
				return true, nil
			}
		}
		return false, nil
	})
}

// Query runs an instant PromQL query against the stack's Prometheus and
// returns the first sample's value; ok is false when the result is empty.
func (s *Stack) Query(ctx context.Context, q string) (value float64, ok bool, err error) {
	return query(ctx, s.Prometheus.URL, q)
}

// query runs an instant PromQL query against the Prometheus at base.
func query(ctx context.Context, base, q string) (value float64, ok bool, err error) {
	u := base + "/api/v1/query?query=" + url.QueryEscape(q)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("failed to query prometheus: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return 0, false, fmt.Errorf("failed to decode the prometheus answer: %w", err)
	}
	if body.Status != "success" {
		return 0, false, fmt.Errorf("prometheus query %q failed: %s", q, body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, false, nil
	}
	str, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, false, fmt.Errorf("prometheus returned a non-number %q: %w", str, err)
	}
	return v, true, nil
}
