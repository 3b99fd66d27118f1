package charttest

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Flagger's global notifiers: the webhook URLs come from Secrets mounted as
// files, passed as --slack-url-file and --msteams-url-file (never as flag
// values); with notifications off, or no Secret, nothing is passed.
func TestSluiceChart_GlobalNotifiers(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"})
	g.Expect(err).NotTo(HaveOccurred())
	args := containerArgs(g, find(objs, "Deployment")[0])
	g.Expect(args).NotTo(ContainElement(HavePrefix("--slack")))
	g.Expect(args).NotTo(ContainElement(HavePrefix("--msteams")))

	set := []string{
		"--set", "notifications.slack.urlSecret.name=slack-webhook", "--set", "notifications.slack.channel=releases",
		"--set", "notifications.slack.user=sluice prod", "--set", "notifications.msteams.urlSecret.name=teams-webhook",
		"--set", "notifications.msteams.urlSecret.key=address", "--set", "clusterName=prod-eu",
	}
	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, set...)
	g.Expect(err).NotTo(HaveOccurred())
	d := find(objs, "Deployment")[0]
	g.Expect(containerArgs(g, d)).To(ContainElements("--slack-url-file=/etc/sluice/notify/slack/url", "--slack-channel=releases",
		"--slack-user=sluice prod", "--msteams-url-file=/etc/sluice/notify/msteams/url", "--cluster-name=prod-eu"))
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	g.Expect(volumes).To(ContainElements(
		map[string]any{"name": "notify-slack", "secret": map[string]any{"secretName": "slack-webhook", "defaultMode": int64(0o400),
			"items": []any{map[string]any{"key": "url", "path": "url"}}}},
		map[string]any{"name": "notify-msteams", "secret": map[string]any{"secretName": "teams-webhook", "defaultMode": int64(0o400),
			"items": []any{map[string]any{"key": "address", "path": "url"}}}},
	))
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	mounts, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "volumeMounts")
	g.Expect(mounts).To(ContainElements(
		map[string]any{"name": "notify-slack", "mountPath": "/etc/sluice/notify/slack", "readOnly": true},
		map[string]any{"name": "notify-msteams", "mountPath": "/etc/sluice/notify/msteams", "readOnly": true},
	))

	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, append(set, "--set", "notifications.enabled=false")...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).NotTo(ContainElement(HavePrefix("--slack")))

	// A URL is not a value of the chart: there is no key for it.
	_, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "notifications.slack.url=https://hooks.slack.com/services/x")
	g.Expect(err).To(MatchError(ContainSubstring("additional properties 'url' not allowed")))
}
