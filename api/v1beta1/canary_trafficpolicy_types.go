package v1beta1

// TrafficPolicy is the Istio DestinationRule traffic policy applied to both
// the primary and the canary destinations.
type TrafficPolicy struct {
	// connectionPool limits the connections and requests to the upstream.
	// +optional
	ConnectionPool *ConnectionPoolSettings `json:"connectionPool,omitempty"`
	// loadBalancer chooses the load-balancing algorithm.
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`
	// outlierDetection ejects unhealthy hosts from the load-balancing pool.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// tls configures TLS for connections to the upstream.
	// +optional
	TLS *ClientTLSSettings `json:"tls,omitempty"`
}

// ConnectionPoolSettings are connection pool limits.
type ConnectionPoolSettings struct {
	// tcp are the limits common to HTTP and TCP connections.
	// +optional
	TCP *TCPSettings `json:"tcp,omitempty"`
	// http are the limits of HTTP/1.1 and HTTP/2 connections.
	// +optional
	HTTP *HTTPSettings `json:"http,omitempty"`
}

// TCPSettings are TCP connection pool settings.
type TCPSettings struct {
	// maxConnections is the maximum number of HTTP/1.1 or TCP connections to
	// a destination host.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`
	// connectTimeout is the TCP connection timeout, e.g. 10s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ConnectTimeout string `json:"connectTimeout,omitempty"`
	// maxConnectionDuration is the maximum lifetime of a connection, e.g. 1h.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	MaxConnectionDuration string `json:"maxConnectionDuration,omitempty"`
	// idleTimeout closes a TCP connection idle for this long, e.g. 1h.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	IdleTimeout string `json:"idleTimeout,omitempty"`
}

// HTTPSettings are HTTP connection pool settings.
type HTTPSettings struct {
	// h2UpgradePolicy says whether HTTP/1.1 connections to the destination are
	// upgraded to HTTP/2: DEFAULT, DO_NOT_UPGRADE or UPGRADE.
	// +kubebuilder:validation:Enum=DEFAULT;DO_NOT_UPGRADE;UPGRADE
	// +optional
	H2UpgradePolicy string `json:"h2UpgradePolicy,omitempty"`
	// http1MaxPendingRequests is the maximum number of requests queued while
	// waiting for a connection.
	// +kubebuilder:validation:Minimum=0
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`
	// http2MaxRequests is the maximum number of active requests to a destination.
	// +kubebuilder:validation:Minimum=0
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`
	// idleTimeout closes an upstream connection without active requests for
	// this long, e.g. 1h.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// maxRequestsPerConnection is the maximum number of requests per connection
	// to a backend; 1 disables keep-alive.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`
	// maxRetries is the maximum number of retries outstanding to all hosts at a
	// given time.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`
	// maxConcurrentStreams is the maximum number of concurrent streams per
	// HTTP/2 connection.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConcurrentStreams int32 `json:"maxConcurrentStreams,omitempty"`
	// useClientProtocol connects to the upstream with the client's protocol
	// (HTTP/1.1 or HTTP/2).
	// +optional
	UseClientProtocol bool `json:"useClientProtocol,omitempty"`
}

// LoadBalancerSettings choose the load-balancing algorithm.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.simple) && has(self.consistentHash))",message="trafficPolicy.loadBalancer takes either simple or consistentHash, not both"
type LoadBalancerSettings struct {
	// simple is the load-balancing algorithm; it excludes consistentHash.
	// +kubebuilder:validation:Enum=UNSPECIFIED;ROUND_ROBIN;LEAST_CONN;RANDOM;PASSTHROUGH;LEAST_REQUEST
	// +optional
	Simple string `json:"simple,omitempty"`
	// consistentHash balances by a hash of the request, for soft session
	// affinity; it excludes simple.
	// +optional
	ConsistentHash *ConsistentHashLB `json:"consistentHash,omitempty"`
	// localityLbSetting configures locality-weighted load balancing.
	// +optional
	LocalityLbSetting *LocalityLoadBalancerSetting `json:"localityLbSetting,omitempty"`
	// warmupDurationSecs is the slow-start duration of new endpoints, e.g. 60s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	WarmupDurationSecs string `json:"warmupDurationSecs,omitempty"`
}

// ConsistentHashLB hashes requests onto endpoints by exactly one key.
//
// +kubebuilder:validation:XValidation:rule="[has(self.httpHeaderName), has(self.httpCookie), has(self.useSourceIp), has(self.httpQueryParameterName)].filter(x, x).size() == 1",message="trafficPolicy.loadBalancer.consistentHash takes exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName"
type ConsistentHashLB struct {
	// httpHeaderName hashes on the value of this request header.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`
	// httpCookie hashes on the value of this cookie.
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`
	// useSourceIp hashes on the client's source IP address.
	// +optional
	UseSourceIP *bool `json:"useSourceIp,omitempty"`
	// httpQueryParameterName hashes on the value of this query parameter.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	HTTPQueryParameterName string `json:"httpQueryParameterName,omitempty"`
	// minimumRingSize is the minimum number of virtual nodes of the hash ring.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinimumRingSize int64 `json:"minimumRingSize,omitempty"`
}

// HTTPCookie is the cookie used for consistent hashing.
type HTTPCookie struct {
	// name of the cookie.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Name string `json:"name,omitempty"`
	// path of the cookie.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Path string `json:"path,omitempty"`
	// ttl is the lifetime of the cookie, e.g. 1h.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TTL string `json:"ttl,omitempty"`
}

// LocalityLoadBalancerSetting configures locality-weighted load balancing.
type LocalityLoadBalancerSetting struct {
	// distribute spreads the traffic from an originating locality over
	// localities, by weight.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +listType=atomic
	Distribute []LocalityLoadBalancerDistribute `json:"distribute,omitempty"`
	// failover names the region traffic goes to when the endpoints of a region
	// are unhealthy.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +listType=atomic
	Failover []LocalityLoadBalancerFailover `json:"failover,omitempty"`
	// enabled turns locality load balancing on or off for this destination.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// LocalityLoadBalancerDistribute maps an originating locality to weights.
type LocalityLoadBalancerDistribute struct {
	// from is the originating locality, region/zone/sub_zone; it may end with *.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	From string `json:"from,omitempty"`
	// to maps destination localities to the percentage of traffic each receives.
	// +optional
	To map[string]int32 `json:"to,omitempty"`
}

// LocalityLoadBalancerFailover names the region to fail over to.
type LocalityLoadBalancerFailover struct {
	// from is the originating region.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	From string `json:"from,omitempty"`
	// to is the region traffic goes to when the endpoints in from are unhealthy.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	To string `json:"to,omitempty"`
}

// OutlierDetection ejects unhealthy hosts from the load-balancing pool.
type OutlierDetection struct {
	// baseEjectionTime is the minimum ejection time, e.g. 30s: a host is
	// ejected for this time multiplied by the number of times it was ejected.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`
	// consecutive5xxErrors is the number of 5xx errors in a row that ejects a host.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Consecutive5xxErrors *int32 `json:"consecutive5xxErrors,omitempty"`
	// consecutiveErrors is deprecated in Istio; use consecutive5xxErrors.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty"`
	// consecutiveGatewayErrors is the number of gateway errors (502, 503, 504)
	// in a row that ejects a host.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// consecutiveLocalOriginFailures is the number of locally originated
	// failures in a row that ejects a host; it applies with
	// splitExternalLocalOriginErrors.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveLocalOriginFailures *int32 `json:"consecutiveLocalOriginFailures,omitempty"`
	// interval is the time between ejection sweeps, e.g. 10s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Interval string `json:"interval,omitempty"`
	// maxEjectionPercent is the maximum percentage of hosts that can be ejected.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
	// minHealthPercent is the percentage of healthy hosts below which outlier
	// detection is disabled.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
	// splitExternalLocalOriginErrors counts local failures (connection
	// timeouts, resets) apart from the errors the upstream returns.
	// +optional
	SplitExternalLocalOriginErrors bool `json:"splitExternalLocalOriginErrors,omitempty"`
}

// ClientTLSSettings are TLS settings for connections to the upstream.
//
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'MUTUAL' || has(self.credentialName) || (has(self.clientCertificate) && has(self.privateKey))",message="trafficPolicy.tls mode MUTUAL needs clientCertificate and privateKey (or credentialName)"
type ClientTLSSettings struct {
	// mode is DISABLE, SIMPLE (TLS), MUTUAL (mutual TLS with clientCertificate
	// and privateKey) or ISTIO_MUTUAL (mutual TLS with Istio's certificates).
	// +kubebuilder:validation:Enum=DISABLE;SIMPLE;MUTUAL;ISTIO_MUTUAL
	// +optional
	Mode string `json:"mode,omitempty"`
	// clientCertificate is a file path, required when mode is MUTUAL.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// privateKey is a file path, required when mode is MUTUAL.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	PrivateKey string `json:"privateKey,omitempty"`
	// caCertificates is a file path of the CA certificates that verify the
	// server certificate.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	CACertificates string `json:"caCertificates,omitempty"`
	// credentialName names a Secret holding the client certificate (Istio gateways).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
	// subjectAltNames lists the subject alternative names accepted in the
	// server certificate.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=atomic
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// sni is the server name sent in the TLS handshake.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SNI string `json:"sni,omitempty"`
	// insecureSkipVerify skips the verification of the server certificate and
	// its subject alternative names.
	// +optional
	InsecureSkipVerify *bool `json:"insecureSkipVerify,omitempty"`
}
