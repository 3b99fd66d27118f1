package charttest

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// deploymentsByName indexes the rendered Deployments by name.
func deploymentsByName(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, d := range find(objs, "Deployment") {
		out[d.GetName()] = d
	}
	return out
}

// TestSluiceChart_Sharding: sharding.shards installs one manager Deployment
// per shard beside the main one, each with its --shard-key (hence its own
// Lease), selectors that do not overlap, and the same ServiceAccount; the
// main one takes the unlabelled objects, bootstraps GitSync and serves the
// receiver; the metrics Service selects every shard.
func TestSluiceChart_Sharding(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(find(objs, "Deployment")).To(HaveLen(1), "no shards by default")
	args := containerArgs(g, find(objs, "Deployment")[0])
	g.Expect(args).NotTo(ContainElement(HavePrefix("--shard-key")))
	g.Expect(args).NotTo(ContainElement(HavePrefix("--watch-label-selector")))

	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"},
		"--set", "sharding.shards={shard1,shard2}", "--set", "gitSync.receiver.enabled=true",
		"--set", "gitSync.bootstrap.enabled=true", "--set", "gitSync.bootstrap.url=https://git.example.com/apps.git")
	g.Expect(err).NotTo(HaveOccurred())
	ds := deploymentsByName(objs)
	g.Expect(ds).To(HaveLen(3))
	g.Expect(ds).To(HaveKey("sluice"))
	main := containerArgs(g, ds["sluice"])
	g.Expect(main).To(ContainElements("--watch-label-selector=!sharding.sluice.dev/key", "--git-receiver-address=:9292",
		"--git-url=https://git.example.com/apps.git", "--leader-election-id=sluice-leader-election"))
	g.Expect(main).NotTo(ContainElement(HavePrefix("--shard-key")))

	selectors := map[string]map[string]string{}
	for _, key := range []string{"shard1", "shard2"} {
		d := ds["sluice-shard-"+key]
		g.Expect(d).NotTo(BeNil(), "no Deployment for %s", key)
		args := containerArgs(g, d)
		// The manager suffixes the Lease with the shard key.
		g.Expect(args).To(ContainElements("--shard-key="+key, "--leader-election-id=sluice-leader-election", "--leader-elect=true"))
		g.Expect(args).NotTo(ContainElement(HavePrefix("--watch-label-selector")))
		g.Expect(args).NotTo(ContainElement(HavePrefix("--git-url")), "a shard must not bootstrap the GitSync too")
		g.Expect(args).NotTo(ContainElement(HavePrefix("--git-receiver-address")))
		sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName")
		g.Expect(sa).To(Equal("sluice"))
		sel, _, _ := unstructured.NestedStringMap(d.Object, "spec", "selector", "matchLabels")
		g.Expect(sel).To(HaveKeyWithValue("sharding.sluice.dev/key", key))
		selectors[d.GetName()] = sel
	}
	mainSel, _, _ := unstructured.NestedStringMap(ds["sluice"].Object, "spec", "selector", "matchLabels")
	selectors["sluice"] = mainSel
	// No Deployment's selector matches another's pods.
	for name, sel := range selectors {
		for other, d := range ds {
			if other == name {
				continue
			}
			podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
			matches := true
			for k, v := range sel {
				if podLabels[k] != v {
					matches = false
				}
			}
			g.Expect(matches).To(BeFalse(), "the selector of %s matches the pods of %s", name, other)
		}
	}
	for _, svc := range find(objs, "Service") {
		if svc.GetName() != "sluice-metrics" {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		for _, d := range ds {
			podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
			for k, v := range sel {
				g.Expect(podLabels).To(HaveKeyWithValue(k, v), "the metrics Service does not select %s", d.GetName())
			}
		}
	}
	// The RBAC is shared: one binding per feature, not one per shard.
	g.Expect(featuresOf(objs)).To(ConsistOf("manager", "engine", "gitsync", "gitsync-apply", "istio", "gatewayapi", "traefik",
		"linkerd", "smi", "gloo", "kuma", "apisix", "nginx", "skipper", "contour", "knative", "notifications"))
}

// TestSluiceChart_ShardingBadKeys: a shard key that cannot name a
// Deployment and a Lease, or a repeated one, fails the rendering.
func TestSluiceChart_ShardingBadKeys(t *testing.T) {
	g := NewWithT(t)
	for _, bad := range []string{"sharding.shards={Shard1}", "sharding.shards={a,a}", "sharding.shards={a_b}"} {
		_, err := render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", bad)
		g.Expect(err).To(MatchError(ContainSubstring("sharding")), bad)
	}
}
