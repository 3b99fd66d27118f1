package v1beta1

import (
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// CanaryService describes the generated Services and the routing objects.
//
// +kubebuilder:validation:XValidation:rule="!has(self.delegation) || !self.delegation || ((!has(self.hosts) || size(self.hosts) == 0) && (!has(self.gateways) || size(self.gateways) == 0))",message="spec.service.delegation generates a VirtualService without hosts or gateways: remove spec.service.hosts and spec.service.gateways, or set delegation to false"
type CanaryService struct {
	// name of the apex Service; defaults to targetRef.name. The primary and
	// canary Services are <name>-primary and <name>-canary.
	// +kubebuilder:validation:MaxLength=55
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`

	// port is the Service port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// portName is the name of the Service port. Defaults to http.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	PortName string `json:"portName,omitempty"`

	// targetPort is the container port (number or name). Defaults to port.
	// 0 is the unset value (a Go client always sends the field) and means the
	// default.
	// +kubebuilder:validation:XValidation:rule="type(self) == string ? self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self) <= 15 : (self >= 0 && self <= 65535)",message="spec.service.targetPort must be a port number (1-65535, or 0 for the Service port) or a container port name (a DNS label of at most 15 characters)"
	// +optional
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`

	// portDiscovery adds every port of the target's containers to the generated Services.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`

	// appProtocol of the Service port. With Istio, tcp selects TCP routes.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`

	// trafficDistribution of the generated Services.
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`

	// headless generates headless Services (clusterIP None).
	// +optional
	Headless bool `json:"headless,omitempty"`

	// timeout of HTTP or gRPC requests on the generated route, e.g. 30s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Timeout string `json:"timeout,omitempty"`

	// backendTimeout is the per-backend request timeout (Gateway API only).
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BackendTimeout string `json:"backendTimeout,omitempty"`

	// meshName is the App Mesh mesh name.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	MeshName string `json:"meshName,omitempty"`

	// backends are App Mesh virtual service backends.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	Backends []string `json:"backends,omitempty"`

	// hosts are the host names of the route (Istio VirtualService hosts,
	// Gateway API hostnames). The apex Service name is added for Istio.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	Hosts []string `json:"hosts,omitempty"`

	// delegation generates an Istio delegate VirtualService (no hosts, no gateways).
	// +optional
	Delegation bool `json:"delegation,omitempty"`

	// match conditions of the generated route.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	// +listType=atomic
	Match []HTTPMatchRequest `json:"match,omitempty"`

	// retries is the retry policy of the generated route.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`

	// rewrite rewrites the URI or authority of matched requests.
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`

	// mirror adds permanent request-mirror filters to the generated HTTPRoute
	// (Gateway API only; unrelated to mirroring during analysis).
	// +kubebuilder:validation:MaxItems=8
	// +optional
	// +listType=atomic
	Mirror []gatewayv1.HTTPRequestMirrorFilter `json:"mirror,omitempty"`

	// headers are request and response header operations.
	// +optional
	Headers *HeadersOperations `json:"headers,omitempty"`

	// gateways of the Istio VirtualService; defaults to mesh.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	Gateways []string `json:"gateways,omitempty"`

	// gatewayRefs are the parent Gateways of the generated HTTPRoute (Gateway API).
	// +kubebuilder:validation:MaxItems=32
	// +optional
	// +listType=atomic
	GatewayRefs []gatewayv1.ParentReference `json:"gatewayRefs,omitempty"`

	// gatewayAPI selects the kind of route the gatewayapi providers generate
	// (HTTPRoute or GRPCRoute) or a user-owned HTTPRoute they edit instead.
	// +optional
	GatewayAPI *GatewayAPIRouting `json:"gatewayAPI,omitempty"`

	// corsPolicy is the Cross-Origin Resource Sharing policy of the route.
	// +optional
	CorsPolicy *CorsPolicy `json:"corsPolicy,omitempty"`

	// trafficPolicy is applied to the primary and canary Istio DestinationRules.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`

	// apex is metadata added to the apex Service and the routing objects.
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`

	// primary is metadata added to the primary Service.
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`

	// canary is metadata added to the canary Service.
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`

	// unmanagedMetadata lists label and annotation keys on the generated
	// Services that Sluice must leave alone.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// CustomMetadata are labels and annotations to add to a generated object.
type CustomMetadata struct {
	// labels added to the generated object.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to the generated object.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmanagedMetadata lists metadata keys that Sluice does not manage.
type UnmanagedMetadata struct {
	// labels lists label keys on the generated Services that Sluice leaves alone.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	Labels []string `json:"labels,omitempty"`
	// annotations lists annotation keys on the generated Services that Sluice
	// leaves alone.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	Annotations []string `json:"annotations,omitempty"`
}

// StringMatch matches a string by at most one of exact, prefix, suffix or regex
// (RE2). An empty match matches any value.
//
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.suffix), has(self.regex)].filter(x, x).size() <= 1",message="a string match takes at most one of exact, prefix, suffix or regex"
type StringMatch struct {
	// exact matches a value equal to this string.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Exact string `json:"exact,omitempty"`
	// prefix matches a value that starts with this string.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// suffix matches a value that ends with this string.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Suffix string `json:"suffix,omitempty"`
	// regex matches a value against this RE2 regular expression.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Regex string `json:"regex,omitempty"`
}

// HTTPMatchRequest is a set of conditions on an HTTP request, with Istio's
// HTTPMatchRequest field names. All conditions must hold.
type HTTPMatchRequest struct {
	// name of the match, carried into the generated route.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
	// uri matches the request path.
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// scheme matches the URI scheme of the request, e.g. http or https.
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// method matches the HTTP method of the request, e.g. GET.
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// authority matches the request's authority (the Host header).
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// headers to match, by lower-case header name.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// port on the host being addressed.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// sourceLabels restrict the rule to workloads with these labels.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
	// gateways where the rule applies.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	Gateways []string `json:"gateways,omitempty"`
	// queryParams to match.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// ignoreUriCase makes the URI match case-insensitive.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// withoutHeaders matches requests that do not carry these headers.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// sourceNamespace restricts the rule to workloads in this namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// HTTPRetry is a retry policy.
type HTTPRetry struct {
	// attempts is the number of retries for a request.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// perTryTimeout is the timeout of each attempt, e.g. 2s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// retryOn lists the conditions that trigger a retry, comma-separated.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// HTTPRewrite rewrites the URI or the authority of a request.
type HTTPRewrite struct {
	// uri replaces the path of the request before it is forwarded: the matched
	// prefix, or with Gateway API the full path when type is ReplaceFullPath.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	URI string `json:"uri,omitempty"`
	// authority replaces the request's authority (the Host header) before it is
	// forwarded.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Authority string `json:"authority,omitempty"`
	// type of the URI rewrite for Gateway API: ReplacePrefixMatch (default) or ReplaceFullPath.
	// +kubebuilder:validation:Enum=ReplacePrefixMatch;ReplaceFullPath
	// +optional
	Type string `json:"type,omitempty"`
}

// HeadersOperations are header operations on requests and responses.
type HeadersOperations struct {
	// request are the header operations on requests, before they reach the
	// destination.
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`
	// response are the header operations on responses, before they return to
	// the client.
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations add, set and remove headers.
type HeaderOperations struct {
	// add appends these values to the headers named by the keys.
	// +optional
	Add map[string]string `json:"add,omitempty"`
	// set overwrites the headers named by the keys with these values.
	// +optional
	Set map[string]string `json:"set,omitempty"`
	// remove lists the names of the headers to remove.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Remove []string `json:"remove,omitempty"`
}

// CorsPolicy is a Cross-Origin Resource Sharing policy.
type CorsPolicy struct {
	// allowOrigin lists exact origins (deprecated in Istio; use allowOrigins).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=atomic
	AllowOrigin []string `json:"allowOrigin,omitempty"`
	// allowOrigins are patterns of allowed origins.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +listType=atomic
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`
	// allowMethods lists the HTTP methods allowed (Access-Control-Allow-Methods).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=atomic
	AllowMethods []string `json:"allowMethods,omitempty"`
	// allowHeaders lists the request headers allowed (Access-Control-Allow-Headers).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// exposeHeaders lists the response headers that browsers may read
	// (Access-Control-Expose-Headers).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// maxAge of the preflight response cache, e.g. 24h.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	MaxAge string `json:"maxAge,omitempty"`
	// allowCredentials says whether the caller may send credentials with the
	// actual request (Access-Control-Allow-Credentials).
	// +optional
	AllowCredentials *bool `json:"allowCredentials,omitempty"`
}
