package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestHelmHistory_PrintsTheReleasesOfStatus: the history of a GitSync's
// chart as helm history prints it, a rolled-back release with its failures.
func TestHelmHistory_PrintsTheReleasesOfStatus(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: sluicev1beta1.GitSyncSpec{URL: "https://git.example.com/fleet.git", Helm: &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{OCI: "oci://ghcr.io/stefanprodan/charts/podinfo"}}},
	}
	g.Expect(env.Client.Create(ctx, gs)).To(Succeed())

	r := kubectlSluice(ctx, "", "helm", "history", "podinfo", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(Equal("gitsync " + ns + "/podinfo has no release yet\n"))

	at := metav1.NewTime(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	digest := "sha256:" + strings.Repeat("ab", 32)
	gs.Status.Helm = &sluicev1beta1.GitSyncHelmStatus{
		ChartName: "podinfo", ChartVersion: "6.5.0",
		History: []sluicev1beta1.GitSyncHelmRelease{
			{Revision: 1, ChartVersion: "6.5.0", ValuesDigest: digest, Digest: digest, Status: sluicev1beta1.GitSyncHelmReleaseDeployed, Time: at},
			{Revision: 2, ChartVersion: "6.6.0", ValuesDigest: digest, Digest: digest, Status: sluicev1beta1.GitSyncHelmReleaseRolledBack, Time: at},
		},
		Remediation: &sluicev1beta1.GitSyncHelmRemediationStatus{Revision: 2, Digest: digest, Failures: 3, RolledBackTo: 1},
	}
	g.Expect(env.Client.Status().Update(ctx, gs)).To(Succeed())
	r = kubectlSluice(ctx, "", "helm", "history", "podinfo", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(Equal(`REVISION  UPDATED               STATUS      CHART          VALUES               DESCRIPTION
1         2026-12-07T10:00:00Z  Deployed    podinfo-6.5.0  sha256:abababababab  Upgrade complete
2         2026-12-07T10:00:00Z  RolledBack  podinfo-6.6.0  sha256:abababababab  Failed its health checks 3 times; rolled back to 1
`))

	plain := newGitSync(t, ns, "apps", false)
	r = kubectlSluice(ctx, "", "helm", "history", plain.Name, "-n", ns)
	g.Expect(r.err).To(MatchError("gitsync " + ns + "/apps renders no chart (no spec.helm), so it has no release history"))
	r = kubectlSluice(ctx, "", "helm", "history", "missing", "-n", ns)
	g.Expect(r.err).To(MatchError(ContainSubstring("GitSync missing not found in namespace " + ns)))
}
