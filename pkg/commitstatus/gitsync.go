package commitstatus

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Keys of the commit status Secret.
const (
	TokenKey    = "token"
	UsernameKey = "username"
)

// ForGitSync returns the Provider of a GitSync's spec.commitStatus, with
// the token of its Secret. secrets should be an uncached reader (the
// manager's APIReader), so that Secrets are not cached cluster-wide. base
// supplies the HTTP client, logger and retry settings; its repository and
// credential fields are ignored.
func ForGitSync(ctx context.Context, secrets ctrlclient.Reader, gs *sluicev1beta1.GitSync, base Config) (Provider, error) {
	cs := gs.Spec.CommitStatus
	if cs == nil {
		return nil, fmt.Errorf("GitSync %s/%s has no spec.commitStatus", gs.Namespace, gs.Name)
	}
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: gs.Namespace, Name: cs.SecretRef.Name}
	if err := secrets.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the commit status Secret %s was not found: %w", key.Name, err)
		}
		return nil, fmt.Errorf("failed to read the commit status Secret %s: %w", key.Name, err)
	}
	cfg := base
	cfg.Type = string(cs.Provider)
	cfg.URL = gs.Spec.URL
	cfg.Address = cs.Address
	cfg.Repository = cs.Repository
	cfg.Token = string(s.Data[TokenKey])
	cfg.Username = string(s.Data[UsernameKey])
	if cfg.Token == "" {
		return nil, fmt.Errorf("the commit status Secret %s has no key %s", key.Name, TokenKey)
	}
	p, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("spec.commitStatus of GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	return p, nil
}

// GitSyncContext names the statuses of a GitSync: spec.commitStatus.contextName,
// or sluice[/<cluster>]/gitsync/<namespace>/<name>.
func GitSyncContext(gs *sluicev1beta1.GitSync, cluster string) string {
	if cs := gs.Spec.CommitStatus; cs != nil && cs.ContextName != "" {
		return cs.ContextName
	}
	return prefix(cluster) + "/gitsync/" + gs.Namespace + "/" + gs.Name
}

// CanaryContext names the statuses of a Canary release that a revision of
// gs started: <GitSync context>/canary/<namespace>/<name> with a
// contextName, or sluice[/<cluster>]/canary/<namespace>/<name>.
func CanaryContext(gs *sluicev1beta1.GitSync, cluster string, c *sluicev1beta1.Canary) string {
	if cs := gs.Spec.CommitStatus; cs != nil && cs.ContextName != "" {
		return cs.ContextName + "/canary/" + c.Namespace + "/" + c.Name
	}
	return prefix(cluster) + "/canary/" + c.Namespace + "/" + c.Name
}

func prefix(cluster string) string {
	if cluster == "" {
		return "sluice"
	}
	return "sluice/" + cluster
}
