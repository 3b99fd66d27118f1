package dashboard

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// callerClient is the in-cluster Server's client: every call is made with
// the client of the request's caller (found in the context the auth
// middleware filled), so the handlers, the live stream and cli.Act work
// unchanged and always act as the caller. A call without a caller fails:
// the dashboard never falls back to its own identity.
type callerClient struct {
	scheme *runtime.Scheme
	mapper meta.RESTMapper
}

var _ client.WithWatch = (*callerClient)(nil)

// errNoCaller would mean a route escaped the auth middleware.
var errNoCaller = errors.New("no authenticated caller for this request")

func forCaller(ctx context.Context) (client.WithWatch, error) {
	if v, ok := ctx.Value(callerKey{}).(*callerContext); ok && v.client != nil {
		return v.client, nil
	}
	return nil, errNoCaller
}

func (c *callerClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.Get(ctx, key, obj, opts...)
}

func (c *callerClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.List(ctx, list, opts...)
}

func (c *callerClient) Watch(ctx context.Context, list client.ObjectList, opts ...client.ListOption) (watch.Interface, error) {
	cl, err := forCaller(ctx)
	if err != nil {
		return nil, err
	}
	return cl.Watch(ctx, list, opts...)
}

func (c *callerClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.Apply(ctx, obj, opts...)
}

func (c *callerClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.Create(ctx, obj, opts...)
}

func (c *callerClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.Delete(ctx, obj, opts...)
}

func (c *callerClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.Update(ctx, obj, opts...)
}

func (c *callerClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.Patch(ctx, obj, patch, opts...)
}

func (c *callerClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.DeleteAllOf(ctx, obj, opts...)
}

func (c *callerClient) Status() client.SubResourceWriter { return callerSubResource("status") }

func (c *callerClient) SubResource(subResource string) client.SubResourceClient {
	return callerSubResource(subResource)
}

func (c *callerClient) Scheme() *runtime.Scheme { return c.scheme }

func (c *callerClient) RESTMapper() meta.RESTMapper { return c.mapper }

func (c *callerClient) GroupVersionKindFor(obj runtime.Object) (schema.GroupVersionKind, error) {
	return apiutil.GVKForObject(obj, c.scheme)
}

func (c *callerClient) IsObjectNamespaced(obj runtime.Object) (bool, error) {
	return apiutil.IsObjectNamespaced(obj, c.scheme, c.mapper)
}

// callerSubResource is a subresource client that also acts as the caller.
type callerSubResource string

func (s callerSubResource) Get(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceGetOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.SubResource(string(s)).Get(ctx, obj, sub, opts...)
}

func (s callerSubResource) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.SubResource(string(s)).Create(ctx, obj, sub, opts...)
}

func (s callerSubResource) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.SubResource(string(s)).Update(ctx, obj, opts...)
}

func (s callerSubResource) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.SubResource(string(s)).Patch(ctx, obj, patch, opts...)
}

func (s callerSubResource) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	cl, err := forCaller(ctx)
	if err != nil {
		return err
	}
	return cl.SubResource(string(s)).Apply(ctx, obj, opts...)
}
