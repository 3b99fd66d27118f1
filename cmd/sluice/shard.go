package main

import (
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Sharding, as Flux does it (docs/scale.md "Sharding"): several managers
// split the objects of one cluster by a label. Each one filters the
// informers of the kinds it reconciles by a label selector, so it neither
// reconciles nor holds in memory the objects of another shard.
//
// The selector filters only the kinds a shard owns the lifecycle of:
// Canaries, GitSyncs and Pipelines. The kinds they reference stay visible
// to every shard: MetricTemplates and AlertProviders are shared by Canaries
// of any shard, and the targets, primaries, Services and HPAs are matched to
// their Canary through indexes and owner references, which the filtered
// Canary cache already restricts to the shard's own Canaries (an event of
// another shard's child maps to a Canary this shard cannot see, and the
// reconcile stops at NotFound). Those objects carry no shard label (a user's
// Deployment is not labelled for Sluice), so filtering their caches would
// hide them from the Canary that needs them.

// shardedKinds are the kinds whose informers the shard selector filters.
func shardedKinds() []client.Object {
	return []client.Object{&sluicev1beta1.Canary{}, &sluicev1beta1.GitSync{}, &sluicev1beta1.Pipeline{}}
}

// shardSelector is the label selector of the objects this manager
// reconciles: nil when it is not sharded (it takes every object).
func (o *Options) shardSelector() (labels.Selector, error) {
	switch {
	case o.ShardKey != "":
		return labels.SelectorFromSet(labels.Set{sluicev1beta1.ShardLabel: o.ShardKey}), nil
	case o.WatchLabelSelector != "":
		sel, err := labels.Parse(o.WatchLabelSelector)
		if err != nil {
			return nil, fmt.Errorf("--watch-label-selector: %w", err)
		}
		return sel, nil
	}
	return nil, nil
}

// leaderElectionID is the Lease name of this manager: each shard elects its
// own leader, so the Lease carries the shard key.
func (o *Options) leaderElectionID() string {
	if o.ShardKey == "" {
		return o.LeaderElectionID
	}
	return o.LeaderElectionID + "-" + o.ShardKey
}

// validateShard checks the sharding flags.
func (o *Options) validateShard() error {
	var errs []error
	if o.ShardKey != "" && o.WatchLabelSelector != "" {
		errs = append(errs, errors.New("--shard-key and --watch-label-selector are exclusive: --shard-key=K is --watch-label-selector="+sluicev1beta1.ShardLabel+"=K with its own Lease"))
	}
	if o.ShardKey != "" {
		if msgs := validation.IsValidLabelValue(o.ShardKey); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--shard-key %q is not a label value: %s", o.ShardKey, msgs[0]))
		}
		// The Lease name is a DNS subdomain.
		if msgs := validation.IsDNS1123Subdomain(o.leaderElectionID()); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--shard-key %q gives the Lease name %q, which is not a DNS name: use lower-case letters, digits and '-'", o.ShardKey, o.leaderElectionID()))
		}
	}
	if o.WatchLabelSelector != "" {
		if _, err := labels.Parse(o.WatchLabelSelector); err != nil {
			errs = append(errs, fmt.Errorf("--watch-label-selector %q is not a label selector (e.g. '!%s'): %w", o.WatchLabelSelector, sluicev1beta1.ShardLabel, err))
		}
	}
	return errors.Join(errs...)
}

// shardCache restricts the cache of the sharded kinds to sel; nil leaves
// the cache as it is.
func shardCache(byObject map[client.Object]cache.ByObject, sel labels.Selector) map[client.Object]cache.ByObject {
	if sel == nil {
		return byObject
	}
	if byObject == nil {
		byObject = map[client.Object]cache.ByObject{}
	}
	for _, k := range shardedKinds() {
		byObject[k] = cache.ByObject{Label: sel}
	}
	return byObject
}

// shardLogger names the shard in every log line of its manager, so the logs
// of several shards tell apart in one place.
func shardLogger(opts Options) logr.Logger {
	if opts.ShardKey == "" {
		return ctrl.Log
	}
	return ctrl.Log.WithValues("shard", opts.ShardKey)
}

// selectorString is how the log names the objects a manager reconciles.
func selectorString(sel labels.Selector) string {
	if sel == nil {
		return "all"
	}
	return sel.String()
}
