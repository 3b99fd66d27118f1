package v1beta1

// TrafficPolicy is the Istio DestinationRule traffic policy applied to both
// the primary and the canary destinations.
type TrafficPolicy struct {
	// +optional
	ConnectionPool *ConnectionPoolSettings `json:"connectionPool,omitempty"`
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// +optional
	TLS *ClientTLSSettings `json:"tls,omitempty"`
}

// ConnectionPoolSettings are connection pool limits.
type ConnectionPoolSettings struct {
	// +optional
	TCP *TCPSettings `json:"tcp,omitempty"`
	// +optional
	HTTP *HTTPSettings `json:"http,omitempty"`
}

// TCPSettings are TCP connection pool settings.
type TCPSettings struct {
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ConnectTimeout string `json:"connectTimeout,omitempty"`
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	MaxConnectionDuration string `json:"maxConnectionDuration,omitempty"`
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	IdleTimeout string `json:"idleTimeout,omitempty"`
}

// HTTPSettings are HTTP connection pool settings.
type HTTPSettings struct {
	// +kubebuilder:validation:Enum=DEFAULT;DO_NOT_UPGRADE;UPGRADE
	// +optional
	H2UpgradePolicy string `json:"h2UpgradePolicy,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConcurrentStreams int32 `json:"maxConcurrentStreams,omitempty"`
	// +optional
	UseClientProtocol bool `json:"useClientProtocol,omitempty"`
}

// LoadBalancerSettings choose the load-balancing algorithm.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.simple) && has(self.consistentHash))",message="trafficPolicy.loadBalancer takes either simple or consistentHash, not both"
type LoadBalancerSettings struct {
	// +kubebuilder:validation:Enum=UNSPECIFIED;ROUND_ROBIN;LEAST_CONN;RANDOM;PASSTHROUGH;LEAST_REQUEST
	// +optional
	Simple string `json:"simple,omitempty"`
	// +optional
	ConsistentHash *ConsistentHashLB `json:"consistentHash,omitempty"`
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
	// +kubebuilder:validation:MaxLength=256
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`
	// +optional
	UseSourceIP *bool `json:"useSourceIp,omitempty"`
	// +kubebuilder:validation:MaxLength=256
	// +optional
	HTTPQueryParameterName string `json:"httpQueryParameterName,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinimumRingSize int64 `json:"minimumRingSize,omitempty"`
}

// HTTPCookie is the cookie used for consistent hashing.
type HTTPCookie struct {
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Name string `json:"name,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Path string `json:"path,omitempty"`
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TTL string `json:"ttl,omitempty"`
}

// LocalityLoadBalancerSetting configures locality-weighted load balancing.
type LocalityLoadBalancerSetting struct {
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +listType=atomic
	Distribute []LocalityLoadBalancerDistribute `json:"distribute,omitempty"`
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +listType=atomic
	Failover []LocalityLoadBalancerFailover `json:"failover,omitempty"`
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// LocalityLoadBalancerDistribute maps an originating locality to weights.
type LocalityLoadBalancerDistribute struct {
	// +kubebuilder:validation:MaxLength=253
	// +optional
	From string `json:"from,omitempty"`
	// +optional
	To map[string]int32 `json:"to,omitempty"`
}

// LocalityLoadBalancerFailover names the region to fail over to.
type LocalityLoadBalancerFailover struct {
	// +kubebuilder:validation:MaxLength=253
	// +optional
	From string `json:"from,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	To string `json:"to,omitempty"`
}

// OutlierDetection ejects unhealthy hosts from the load-balancing pool.
type OutlierDetection struct {
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	Consecutive5xxErrors *int32 `json:"consecutive5xxErrors,omitempty"`
	// consecutiveErrors is deprecated in Istio; use consecutive5xxErrors.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	ConsecutiveLocalOriginFailures *int32 `json:"consecutiveLocalOriginFailures,omitempty"`
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Interval string `json:"interval,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
	// +optional
	SplitExternalLocalOriginErrors bool `json:"splitExternalLocalOriginErrors,omitempty"`
}

// ClientTLSSettings are TLS settings for connections to the upstream.
//
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'MUTUAL' || has(self.credentialName) || (has(self.clientCertificate) && has(self.privateKey))",message="trafficPolicy.tls mode MUTUAL needs clientCertificate and privateKey (or credentialName)"
type ClientTLSSettings struct {
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
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	CACertificates string `json:"caCertificates,omitempty"`
	// credentialName names a Secret holding the client certificate (Istio gateways).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=atomic
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SNI string `json:"sni,omitempty"`
	// +optional
	InsecureSkipVerify *bool `json:"insecureSkipVerify,omitempty"`
}
