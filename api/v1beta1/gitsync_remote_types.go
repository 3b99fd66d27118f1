package v1beta1

// DefaultKubeConfigKey is the key of a kubeconfig Secret read when
// spec.kubeConfig.secretRef.key is empty (Flux's and Cluster API's "value").
const DefaultKubeConfigKey = "value"

// GitSyncKubeConfig names the kubeconfig of the cluster a GitSync applies to.
type GitSyncKubeConfig struct {
	// secretRef names a Secret in the GitSync's namespace holding a
	// kubeconfig (as Cluster API writes <cluster>-kubeconfig). Only inline
	// credentials are accepted: a kubeconfig with an exec or auth-provider
	// plugin, or one that reads files (tokenFile, client-certificate,
	// client-key, certificate-authority paths), is refused, because it
	// would run a program or read a file of the controller's pod.
	// +required
	SecretRef GitSyncKubeConfigSecretRef `json:"secretRef"`
}

// GitSyncKubeConfigSecretRef names a Secret and the key of its kubeconfig.
type GitSyncKubeConfigSecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
	// key of the kubeconfig in the Secret; "value" when empty, then "value.yaml".
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}
