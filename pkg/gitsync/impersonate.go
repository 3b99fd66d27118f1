package gitsync

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// impersonator builds, once per ServiceAccount, clients that act as that
// ServiceAccount (the API server checks its RBAC, not the controller's).
type impersonator struct {
	config *rest.Config
	scheme *runtime.Scheme
	mu     sync.Mutex
	byUser map[string]client.Client
}

// ServiceAccountUser is the user name the API server gives a ServiceAccount.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// applierFor is the Applier that acts for gs: the controller's own, or one
// impersonating spec.serviceAccountName, which must exist.
// With spec.kubeConfig, both act on that cluster, and the ServiceAccount is
// the remote cluster's (as Flux does).
func (r *GitSyncReconciler) applierFor(ctx context.Context, gs *sluicev1beta1.GitSync) (*Applier, error) {
	sa := gs.Spec.ServiceAccountName
	if gs.Spec.KubeConfig != nil {
		rc, err := r.remote(ctx, gs)
		if err != nil {
			return nil, err
		}
		if sa == "" {
			return rc.applier, nil
		}
		return rc.impersonating(ctx, gs.Namespace, sa)
	}
	if sa == "" {
		return r.Applier, nil
	}
	if r.impersonator == nil || r.impersonator.config == nil {
		return nil, fmt.Errorf("spec.serviceAccountName is set but this controller has no REST config to impersonate with")
	}
	key := types.NamespacedName{Namespace: gs.Namespace, Name: sa}
	if err := r.APIReader.Get(ctx, key, &corev1.ServiceAccount{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("serviceaccount %s (spec.serviceAccountName) not found in namespace %s: %w", sa, gs.Namespace, err)
		}
		return nil, fmt.Errorf("failed to read serviceaccount %s: %w", sa, err)
	}
	c, err := r.impersonator.client(ServiceAccountUser(gs.Namespace, sa), r.Applier.Mapper)
	if err != nil {
		return nil, err
	}
	return &Applier{Client: c, Mapper: r.Applier.Mapper, Canaries: r.Client, DefaultProvider: r.Applier.DefaultProvider}, nil
}

func (i *impersonator) client(user string, mapper meta.RESTMapper) (client.Client, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.byUser[user]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(i.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: i.scheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("failed to build a client impersonating %s: %w", user, err)
	}
	if i.byUser == nil {
		i.byUser = map[string]client.Client{}
	}
	i.byUser[user] = c
	return c, nil
}

// impersonating is the remote cluster's Applier acting as the
// ServiceAccount sa of that cluster, which must exist there.
func (rc *remoteCluster) impersonating(ctx context.Context, namespace, sa string) (*Applier, error) {
	a := rc.applier
	if err := a.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: sa}, &corev1.ServiceAccount{}); err != nil {
		return nil, fmt.Errorf("serviceaccount %s (spec.serviceAccountName) in namespace %s of the remote cluster: %w", sa, namespace, err)
	}
	c, err := rc.imp.client(ServiceAccountUser(namespace, sa), a.Mapper)
	if err != nil {
		return nil, err
	}
	return &Applier{Client: c, Mapper: a.Mapper, Canaries: a.Client, DefaultProvider: a.DefaultProvider}, nil
}
