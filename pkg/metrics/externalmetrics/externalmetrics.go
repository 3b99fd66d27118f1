// Package externalmetrics reads the Kubernetes external metrics API
// (external.metrics.k8s.io/v1beta1), as Flagger's externalmetrics provider
// does: the metrics an adapter such as KEDA, the Datadog Cluster Agent or
// prometheus-adapter serves to HPAs, queried by name and label selector.
package externalmetrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/cloudhttp"
)

// KeyToken is Flagger's Secret key: a bearer token for the API server.
const KeyToken = "token"

// The controller reads external metrics of every namespace a template names.
// +kubebuilder:rbac:groups=external.metrics.k8s.io,resources=*,verbs=get;list

// Provider queries one API server's external metrics.
type Provider struct {
	client rest.Interface
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a client of the external metrics API. Without provider.address
// it is the manager's own API server and identity (in-cluster, or its
// kubeconfig); with one, only that address and the Secret's token are used,
// so the controller's own credentials never go to another host.
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	var token string
	if cfg.Secret != nil {
		if token = strings.TrimSpace(string(cfg.Secret[KeyToken])); token == "" {
			return nil, fmt.Errorf("%w: the Secret has no key %s (leave out secretRef to use the controller's own identity)", metrics.ErrInvalidConfig, KeyToken)
		}
	}
	var rc *rest.Config
	if cfg.Address == "" {
		own, err := ctrlconfig.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("%w: no address and no in-cluster or kubeconfig configuration: %w", metrics.ErrInvalidConfig, err)
		}
		rc = rest.CopyConfig(own)
		if token != "" {
			// The Secret's identity replaces the controller's.
			rc.BearerToken, rc.BearerTokenFile = token, ""
			rc.CertData, rc.CertFile, rc.KeyData, rc.KeyFile = nil, "", nil, ""
			rc.Username, rc.Password, rc.ExecProvider, rc.AuthProvider = "", "", nil, nil
		}
	} else {
		host, err := cloudhttp.Endpoint(cfg.Address, "")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", metrics.ErrInvalidConfig, err)
		}
		rc = &rest.Config{Host: host, BearerToken: token}
		rc.Insecure = cfg.InsecureSkipVerify
	}
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return cloudhttp.Wrap(rt, cfg.Headers) }
	// The same client as k8s.io/metrics' external_metrics.NewForConfig,
	// whose List takes no context: the request is made here, with one.
	rc.APIPath = "/apis"
	rc.GroupVersion = &v1beta1.SchemeGroupVersion
	rc.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	if rc.UserAgent == "" {
		rc.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to build the external metrics client: %w", metrics.ErrInvalidConfig, err)
	}
	return &Provider{client: client}, nil
}

// Query reads the metric named by query, Flagger's
// [<namespace>/]<metricName>[?labelSelector=<url-encoded selector>]
// (namespace default, as in Flagger), and returns the value of its one item.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	ns, name, selector, err := ParseQuery(query)
	if err != nil {
		return 0, err
	}
	list := &v1beta1.ExternalMetricValueList{}
	err = p.client.Get().Namespace(ns).Resource(name).
		VersionedParams(&metav1.ListOptions{LabelSelector: selector.String()}, metav1.ParameterCodec).
		Do(ctx).Into(list)
	if err != nil {
		return 0, fmt.Errorf("failed to read external metric %s in namespace %s: %w", name, ns, err)
	}
	switch len(list.Items) {
	case 0:
		return 0, fmt.Errorf("%w: the external metrics API has no value of %s", metrics.ErrNoData, name)
	case 1:
		return list.Items[0].Value.AsApproximateFloat64(), nil
	}
	series := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		series = append(series, it.MetricName+labels.Set(it.MetricLabels).String())
	}
	sort.Strings(series)
	return 0, &metrics.MultipleSeriesError{Series: series}
}

// ParseQuery splits Flagger's query into namespace (default "default"),
// metric name and label selector.
func ParseQuery(query string) (namespace, name string, selector labels.Selector, err error) {
	query = strings.TrimSpace(query)
	path, rawQuery, _ := strings.Cut(query, "?")
	path = strings.TrimPrefix(path, "/")
	namespace = "default"
	switch parts := strings.Split(path, "/"); len(parts) {
	case 1:
		name = parts[0]
	case 2:
		if parts[0] != "" {
			namespace = parts[0]
		}
		name = parts[1]
	default:
		return "", "", nil, fmt.Errorf("the query %q has too many slashes: expected [<namespace>/]<metricName>[?labelSelector=<selector>]", query)
	}
	if name == "" {
		return "", "", nil, errors.New("the query names no metric: expected [<namespace>/]<metricName>[?labelSelector=<selector>]")
	}
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", nil, fmt.Errorf("the query's parameters are not URL-encoded: %w", err)
	}
	selector = labels.Everything()
	if raw := params.Get("labelSelector"); raw != "" {
		if selector, err = labels.Parse(raw); err != nil {
			return "", "", nil, fmt.Errorf("the query's labelSelector %q is not a label selector: %w", raw, err)
		}
	}
	return namespace, name, selector, nil
}
