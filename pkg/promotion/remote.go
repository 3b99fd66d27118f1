package promotion

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// maxKubeConfig bounds the kubeconfig read from a Secret, as GitSync's.
const maxKubeConfig = 256 << 10

// errUnusableKubeConfig is a kubeconfig Secret only a change of the Secret
// fixes: missing, without the key, or refused (exec plugins, files,
// impersonation and proxies are refused as GitSync refuses them).
var errUnusableKubeConfig = errors.New("unusable kubeconfig")

// remoteClients keeps one client per kubeconfig Secret version, so that a
// rotated credential gets a new client at the next reconcile.
type remoteClients struct {
	mu    sync.Mutex
	byKey map[types.NamespacedName]remoteClient
}

type remoteClient struct {
	resourceVersion string
	client          client.Client
}

// remoteCanary reads a stage's Canary from the cluster of its
// canaryRef.kubeConfig, a Secret of the Pipeline's namespace. Nothing of
// the kubeconfig reaches an error: only the Secret's name, the key and
// what is wrong.
func (r *Reconciler) remoteCanary(ctx context.Context, p *sluicev1beta1.Pipeline, s *sluicev1beta1.PipelineStage, ns string) (*sluicev1beta1.Canary, error) {
	ref := s.CanaryRef.KubeConfig.SecretRef
	key := types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}
	sec := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, key, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kubeconfig Secret %s (canaryRef.kubeConfig.secretRef) not found in namespace %s: %w", ref.Name, p.Namespace, errUnusableKubeConfig)
		}
		return nil, fmt.Errorf("failed to read kubeconfig Secret %s: %w", ref.Name, err)
	}
	c, err := r.remoteClient(key, sec, ref.Key)
	if err != nil {
		return nil, err
	}
	canary := &sluicev1beta1.Canary{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: s.CanaryRef.Name}, canary); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get Canary %s/%s from the cluster of kubeconfig Secret %s: %w", ns, s.CanaryRef.Name, ref.Name, err)
	}
	return canary, nil
}

func (r *Reconciler) remoteClient(key types.NamespacedName, sec *corev1.Secret, dataKey string) (client.Client, error) {
	r.remotes.mu.Lock()
	defer r.remotes.mu.Unlock()
	if c, ok := r.remotes.byKey[key]; ok && c.resourceVersion == sec.ResourceVersion {
		return c.client, nil
	}
	keys := []string{dataKey}
	if dataKey == "" {
		keys = []string{sluicev1beta1.DefaultKubeConfigKey, sluicev1beta1.DefaultKubeConfigKey + ".yaml"}
	}
	var data []byte
	for _, k := range keys {
		if v := sec.Data[k]; len(v) > 0 {
			data, dataKey = v, k
			break
		}
	}
	switch {
	case data == nil:
		return nil, fmt.Errorf("kubeconfig Secret %s has no key %s: %w", key.Name, strings.Join(keys, " or "), errUnusableKubeConfig)
	case len(data) > maxKubeConfig:
		return nil, fmt.Errorf("kubeconfig Secret %s key %s is larger than %d bytes: %w", key.Name, dataKey, maxKubeConfig, errUnusableKubeConfig)
	}
	cfg, err := gitsync.RemoteConfig(data)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w: %w", key.Name, dataKey, errUnusableKubeConfig, err)
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w", key.Name, dataKey, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w", key.Name, dataKey, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: r.Client.Scheme(), Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s key %s: %w", key.Name, dataKey, err)
	}
	if r.remotes.byKey == nil {
		r.remotes.byKey = map[types.NamespacedName]remoteClient{}
	}
	r.remotes.byKey[key] = remoteClient{resourceVersion: sec.ResourceVersion, client: c}
	return c, nil
}
