package gitsync

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/fluxcd/pkg/ssa/jsondiff"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// canaryLister lists the Canaries of a namespace once per sync.
type canaryLister struct {
	reader client.Reader
	byNS   map[string][]sluicev1beta1.Canary
}

func (l *canaryLister) list(ctx context.Context, ns string) ([]sluicev1beta1.Canary, error) {
	if list, ok := l.byNS[ns]; ok {
		return list, nil
	}
	cl := &sluicev1beta1.CanaryList{}
	if err := l.reader.List(ctx, cl, client.InNamespace(ns)); err != nil && !meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("failed to list the Canaries of %s: %w", ns, err)
	}
	if l.byNS == nil {
		l.byNS = map[string][]sluicev1beta1.Canary{}
	}
	l.byNS[ns] = cl.Items
	return cl.Items, nil
}

// ignoreRules are the drift ignore rules of an apply: for every Canary of
// the objects' namespaces, the fields the engine and the routers own on
// objects a user may keep in Git (sluicev1beta1.EngineOwnedFields). The
// resource manager applies them only to objects that exist: it strips such
// a field from the payload when another server-side apply manager owns it,
// and otherwise applies the value in the cluster, so GitSync never writes
// Git's value over the engine's, nor removes a field it stops applying (that
// would reset it). A new object is created with Git's values.
func (a *Applier) ignoreRules(ctx context.Context, canaries *canaryLister, objs []*unstructured.Unstructured) ([]jsondiff.IgnoreRule, error) {
	var namespaces []string
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	slices.Sort(namespaces)
	var rules []jsondiff.IgnoreRule
	for _, ns := range namespaces {
		list, err := canaries.list(ctx, ns)
		if err != nil {
			return nil, err
		}
		for i := range list {
			for _, f := range list[i].EngineOwnedFields(a.DefaultProvider) {
				rules = append(rules, jsondiff.IgnoreRule{
					Paths: f.Paths,
					Selector: &jsondiff.Selector{
						Group:     exactly(f.Group),
						Kind:      exactly(f.Kind),
						Namespace: exactly(f.Namespace),
						Name:      exactly(f.Name),
					},
				})
			}
		}
	}
	return rules, nil
}

// exactly is a selector pattern that matches s and nothing else.
func exactly(s string) string { return "^" + regexp.QuoteMeta(s) + "$" }
