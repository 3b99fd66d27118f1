package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func gitSource(rev, hash string, commit time.Time) *GitSource {
	t := metav1.NewTime(commit)
	return &GitSource{GitSyncName: "app", GitSyncNamespace: "flux", Revision: rev, ContentHash: hash, CommitTime: &t, AppliedTime: &t}
}

// TestSetSource: status.source names the commit of the content the
// release brought, and only that.
func TestSetSource(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	releasing := func() sluicev1beta1.CanaryStatus {
		return sluicev1beta1.CanaryStatus{
			Phase: sluicev1beta1.CanaryPhaseProgressing, Revision: "r2",
			LastAppliedSpec: "t2", LastPromotedSpec: "t1",
			TrackedConfigs: map[string]string{"configmap/settings": "c1"},
		}
	}
	target := WorkloadState{Exists: true, TemplateHash: "t2", Configs: map[string]string{"configmap/settings": "c1"}}
	tests := []struct {
		name    string
		status  func() sluicev1beta1.CanaryStatus
		target  WorkloadState
		sources Sources
		want    string // the revision recorded, "" for none
	}{
		{
			name: "the target's annotations of the template under release", status: releasing, target: target,
			sources: Sources{Target: gitSource("main@sha1:b", "t2", t0)},
			want:    "main@sha1:b",
		},
		{
			name: "annotations of an older template are ignored", status: releasing, target: target,
			sources: Sources{Target: gitSource("main@sha1:a", "t1", t0)},
		},
		{
			name: "annotations of a template not under release yet are ignored", status: releasing,
			target:  WorkloadState{Exists: true, TemplateHash: "t3", Configs: target.Configs},
			sources: Sources{Target: gitSource("main@sha1:c", "t3", t0)},
		},
		{
			name: "no release: the promoted template", target: target,
			status: func() sluicev1beta1.CanaryStatus {
				st := releasing()
				st.Phase, st.LastPromotedSpec = sluicev1beta1.CanaryPhaseSucceeded, "t2"
				return st
			},
			sources: Sources{Target: gitSource("main@sha1:b", "t2", t0)},
		},
		{
			name: "a config this release changed",
			status: func() sluicev1beta1.CanaryStatus {
				st := releasing()
				st.LastAppliedSpec = "t1"
				return st
			},
			target: WorkloadState{Exists: true, TemplateHash: "t1", Configs: target.Configs},
			sources: Sources{
				Configs:         map[string]*GitSource{"configmap/settings": gitSource("main@sha1:k", "c1", t0)},
				PromotedConfigs: map[string]string{"configmap/settings": "c0"},
			},
			want: "main@sha1:k",
		},
		{
			name: "a config this release did not change", status: releasing, target: target,
			sources: Sources{
				Configs:         map[string]*GitSource{"configmap/settings": gitSource("main@sha1:k", "c1", t0)},
				PromotedConfigs: map[string]string{"configmap/settings": "c1"},
			},
		},
		{
			name: "both changed: the newest commit", status: releasing, target: target,
			sources: Sources{
				Target:          gitSource("main@sha1:b", "t2", t0),
				Configs:         map[string]*GitSource{"configmap/settings": gitSource("main@sha1:k", "c1", t0.Add(time.Minute))},
				PromotedConfigs: map[string]string{"configmap/settings": "c0"},
			},
			want: "main@sha1:k",
		},
		{
			name: "the source of the previous release is dropped", target: target,
			status: func() sluicev1beta1.CanaryStatus {
				st := releasing()
				st.Source = &sluicev1beta1.ReleaseSource{GitSyncName: "app", GitSyncNamespace: "flux", Revision: "main@sha1:a", Release: "r1"}
				return st
			},
			sources: Sources{Target: gitSource("main@sha1:a", "t1", t0)},
		},
		{
			name: "a source recorded for this release is kept", target: target,
			status: func() sluicev1beta1.CanaryStatus {
				st := releasing()
				st.Source = &sluicev1beta1.ReleaseSource{GitSyncName: "app", GitSyncNamespace: "flux", Revision: "main@sha1:b", Release: "r2"}
				return st
			},
			want: "main@sha1:b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			st := tt.status()
			x := &decider{o: Observation{Target: tt.target, Sources: tt.sources}, st: &st}
			x.setSource()
			if tt.want == "" {
				g.Expect(st.Source).To(BeNil())
				return
			}
			g.Expect(st.Source).NotTo(BeNil())
			g.Expect(st.Source.Revision).To(Equal(tt.want))
			g.Expect(st.Source.Release).To(Equal(st.Revision))
			g.Expect(st.Source.GitSyncName).To(Equal("app"))
			g.Expect(st.Source.GitSyncNamespace).To(Equal("flux"))
		})
	}
}

// TestSourceOf: incomplete or oversized annotations are no source.
func TestSourceOf(t *testing.T) {
	g := NewWithT(t)
	meta := func(labels, annotations map[string]string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Labels: labels, Annotations: annotations}
	}
	owner := map[string]string{sluicev1beta1.GitSyncNameLabel: "app", sluicev1beta1.GitSyncNamespaceLabel: "flux"}
	full := map[string]string{
		sluicev1beta1.GitSyncRevisionAnnotation:    "main@sha1:b",
		sluicev1beta1.GitSyncContentHashAnnotation: "t2",
		sluicev1beta1.GitSyncCommitTimeAnnotation:  "2026-12-07T01:00:00Z",
		sluicev1beta1.GitSyncAppliedTimeAnnotation: "not a time",
	}
	s := sourceOf(meta(owner, full))
	g.Expect(s).NotTo(BeNil())
	g.Expect(s.CommitTime.UTC()).To(Equal(time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)))
	g.Expect(s.AppliedTime).To(BeNil())
	g.Expect(sourceOf(meta(nil, full))).To(BeNil(), "no GitSync owner labels")
	noHash := map[string]string{sluicev1beta1.GitSyncRevisionAnnotation: "main@sha1:b"}
	g.Expect(sourceOf(meta(owner, noHash))).To(BeNil())
	long := map[string]string{sluicev1beta1.GitSyncRevisionAnnotation: string(make([]byte, 600)), sluicev1beta1.GitSyncContentHashAnnotation: "t2"}
	g.Expect(sourceOf(meta(owner, long))).To(BeNil())
}
