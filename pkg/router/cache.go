package router

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// RegisterKinds records the routing object types a provider writes (typed
// objects, or unstructured ones carrying their GroupVersionKind), for the
// manager to cache and watch them.
func (r *Registry) RegisterKinds(objs ...client.Object) {
	for _, o := range objs {
		// Routers sharing a kind (nginx and skipper write Ingresses) register
		// it once: the cache and the watch take each kind once.
		if !slices.ContainsFunc(r.kinds, func(k client.Object) bool { return sameKind(k, o) }) {
			r.kinds = append(r.kinds, o)
		}
	}
}

// sameKind compares unstructured prototypes by GroupVersionKind and typed
// ones by Go type.
func sameKind(a, b client.Object) bool {
	ga, gb := a.GetObjectKind().GroupVersionKind(), b.GetObjectKind().GroupVersionKind()
	if !ga.Empty() || !gb.Empty() {
		return ga == gb
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b)
}

// Kind is the unstructured prototype of a routing object type.
func Kind(gvk schema.GroupVersionKind) client.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// InstalledKinds returns fresh copies of the registered routing object
// types whose CRD the API server serves. A watch (or a cache restriction) of
// a kind that is not installed would stop the manager from starting, so a
// provider whose CRDs arrive later is read on demand until the next restart.
func (r *Registry) InstalledKinds(mapper meta.RESTMapper, scheme *runtime.Scheme) []client.Object {
	var out []client.Object
	for _, k := range r.kinds {
		gvk, err := apiutil.GVKForObject(k, scheme)
		if err != nil {
			continue
		}
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			continue
		}
		out = append(out, k.DeepCopyObject().(client.Object))
	}
	return out
}

// CacheByObject restricts the manager's cache of the routing kinds to the
// objects the routers labelled with sluicev1beta1.CanaryLabel, so it holds
// only Sluice's routing objects, not every VirtualService of the cluster.
func CacheByObject(kinds []client.Object) (map[client.Object]cache.ByObject, error) {
	req, err := labels.NewRequirement(sluicev1beta1.CanaryLabel, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to select the routing objects by label: %w", err)
	}
	out := make(map[client.Object]cache.ByObject, len(kinds))
	for _, k := range kinds {
		out[k] = cache.ByObject{Label: labels.NewSelector().Add(*req)}
	}
	return out, nil
}

// cachedFirst reads from the manager's cache and, for an object the cache
// does not hold, from the API server: a routing object that existed before
// Sluice took it over carries no CanaryLabel until Sluice's first apply, and
// must not be mistaken for an absent one (Sluice would own it). Steady
// reconciles read only the cache.
type cachedFirst struct {
	client.Client
	live client.Reader
}

func (c *cachedFirst) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, key, obj, opts...)
	if apierrors.IsNotFound(err) {
		return c.live.Get(ctx, key, obj, opts...)
	}
	return err
}

// routerClient is the client a router gets (Client, or else c): its writes
// carry the routers' field manager, and its reads fall back to Live for
// objects missing from the cache.
func (r *Registry) routerClient(c client.Client) client.Client {
	if r.Client != nil {
		c = r.Client
	}
	if c == nil {
		return nil
	}
	c = client.WithFieldOwner(c, FieldManager)
	if r.Live != nil {
		c = &cachedFirst{Client: c, live: r.Live}
	}
	return c
}
