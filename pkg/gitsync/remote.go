package gitsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// remoteClusters builds, once per kubeconfig Secret version, the REST
// config and Applier of another cluster (spec.kubeConfig). A changed
// Secret (a rotated credential) gets a new client at the next sync.
type remoteClusters struct {
	mu    sync.Mutex
	byKey map[types.NamespacedName]*remoteCluster
}

type remoteCluster struct {
	resourceVersion string
	applier         *Applier
	// imp makes the clients impersonating that cluster's ServiceAccounts.
	imp *impersonator
}

// errUnusableKubeConfig marks a kubeconfig that retrying cannot fix: only a
// change of the Secret can.
var errUnusableKubeConfig = errors.New("unusable kubeconfig")

// maxKubeConfig bounds the kubeconfig read from a Secret (Secrets are at
// most 1 MiB anyway; a kubeconfig is a few KiB).
const maxKubeConfig = 256 << 10

// remote returns the cluster of gs's spec.kubeConfig.
// Nothing in the kubeconfig reaches an error: only the Secret's name, the
// key and what is wrong with it.
func (r *GitSyncReconciler) remote(ctx context.Context, gs *sluicev1beta1.GitSync) (*remoteCluster, error) {
	ref := gs.Spec.KubeConfig.SecretRef
	key := types.NamespacedName{Namespace: gs.Namespace, Name: ref.Name}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kubeconfig Secret %s (spec.kubeConfig.secretRef) not found in namespace %s", ref.Name, gs.Namespace)
		}
		return nil, fmt.Errorf("failed to read kubeconfig Secret %s: %w", ref.Name, err)
	}
	r.remotes.mu.Lock()
	defer r.remotes.mu.Unlock()
	if c, ok := r.remotes.byKey[key]; ok && c.resourceVersion == s.ResourceVersion {
		return c, nil
	}
	data, k, err := kubeConfigData(s, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s: %w: %w", ref.Name, errUnusableKubeConfig, err)
	}
	cfg, err := RemoteConfig(data)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w: %w", ref.Name, k, errUnusableKubeConfig, err)
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w", ref.Name, k, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w", ref.Name, k, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: r.Client.Scheme(), Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w", ref.Name, k, err)
	}
	// The Canaries that Prepare steps aside for are the remote cluster's:
	// its engine owns their replicas and primaries.
	a := &Applier{Client: c, Mapper: mapper, Canaries: c, DefaultProvider: r.Applier.DefaultProvider}
	if r.remotes.byKey == nil {
		r.remotes.byKey = map[types.NamespacedName]*remoteCluster{}
	}
	rc := &remoteCluster{resourceVersion: s.ResourceVersion, applier: a, imp: &impersonator{config: cfg, scheme: r.Client.Scheme()}}
	r.remotes.byKey[key] = rc
	return rc, nil
}

// kubeConfigData is the kubeconfig in s under key, or under "value" then
// "value.yaml" when key is empty.
func kubeConfigData(s *corev1.Secret, key string) ([]byte, string, error) {
	keys := []string{key}
	if key == "" {
		keys = []string{sluicev1beta1.DefaultKubeConfigKey, sluicev1beta1.DefaultKubeConfigKey + ".yaml"}
	}
	for _, k := range keys {
		if v, ok := s.Data[k]; ok && len(v) > 0 {
			if len(v) > maxKubeConfig {
				return nil, k, fmt.Errorf("key %s is larger than %d bytes", k, maxKubeConfig)
			}
			return v, k, nil
		}
	}
	return nil, "", fmt.Errorf("has no key %s", strings.Join(keys, " or "))
}

// RemoteConfig parses a kubeconfig for a remote cluster, refusing what
// would make the controller run a program or read its own files: exec and
// auth-provider plugins (Flux refuses them too, after a security
// advisory), token, certificate and key files, impersonation, and a
// proxy-url.
func RemoteConfig(data []byte) (*rest.Config, error) {
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	if err := refuseUnsafe(raw); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("unusable kubeconfig: %w", err)
	}
	return cfg, nil
}

// refuseUnsafe checks every user and cluster of the kubeconfig, not only
// the current context's: a later edit of current-context must not turn a
// checked file into an unchecked one.
func refuseUnsafe(c *clientcmdapi.Config) error {
	var problems []string
	for _, name := range sortedKeys(c.AuthInfos) {
		u := c.AuthInfos[name]
		switch {
		case u.Exec != nil:
			problems = append(problems, fmt.Sprintf("user %q uses an exec plugin (%s)", name, u.Exec.Command))
		case u.AuthProvider != nil:
			problems = append(problems, fmt.Sprintf("user %q uses the auth-provider %s", name, u.AuthProvider.Name))
		}
		if u.TokenFile != "" || u.ClientCertificate != "" || u.ClientKey != "" {
			problems = append(problems, fmt.Sprintf("user %q reads credentials from files (use token, client-certificate-data, client-key-data)", name))
		}
		if u.Impersonate != "" || len(u.ImpersonateGroups) > 0 {
			problems = append(problems, fmt.Sprintf("user %q impersonates (use spec.serviceAccountName)", name))
		}
	}
	for _, name := range sortedKeys(c.Clusters) {
		cl := c.Clusters[name]
		if cl.CertificateAuthority != "" {
			problems = append(problems, fmt.Sprintf("cluster %q reads its CA from a file (use certificate-authority-data)", name))
		}
		if cl.ProxyURL != "" {
			problems = append(problems, fmt.Sprintf("cluster %q sets a proxy-url", name))
		}
	}
	if len(problems) > 0 {
		return errors.New("refused: " + strings.Join(problems, "; "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
