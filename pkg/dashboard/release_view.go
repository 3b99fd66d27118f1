package dashboard

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ReleaseInfo is what the release page shows besides the Canary's own
// fields: the commit that started the release and the traffic split.
type ReleaseInfo struct {
	// Commit is the commit that started the release; nil when the release
	// did not come from a GitSync (or before the engine recorded it).
	Commit *CommitView `json:"commit,omitempty"`
	// Traffic is the split between primary, canary and baseline now.
	Traffic TrafficSplit `json:"traffic"`
	// ComparisonSamples are the values of compared metrics (compare.test).
	ComparisonSamples []sluicev1beta1.ComparisonSamples `json:"comparisonSamples,omitempty"`
	// Started is when the current release started.
	Started *time.Time `json:"started,omitempty"`
}

// CommitView is a commit and where to see it.
type CommitView struct {
	Revision string `json:"revision"`
	SHA      string `json:"sha,omitempty"`
	// URL is the commit's page on a known Git host; "" for an unknown host.
	URL string `json:"url,omitempty"`
	// Repository is the GitSync's URL without credentials.
	Repository string `json:"repository,omitempty"`
	// GitSync is "namespace/name" of the GitSync that applied it.
	GitSync    string     `json:"gitSync"`
	CommitTime *time.Time `json:"commitTime,omitempty"`
	// Subject and Author are known while the GitSync's last applied
	// revision is this one (status.lastAppliedCommit).
	Subject string `json:"subject,omitempty"`
	Author  string `json:"author,omitempty"`
	// Note says why the repository is unknown (the user may not read the
	// GitSync), so the page does not pretend there is no link to make.
	Note string `json:"note,omitempty"`
}

// TrafficSplit is the share of requests each side receives, in percent.
type TrafficSplit struct {
	Primary  int32 `json:"primary"`
	Canary   int32 `json:"canary"`
	Baseline int32 `json:"baseline,omitempty"`
	// Mirrored says the canary also receives a copy of the primary's traffic.
	Mirrored bool `json:"mirrored,omitempty"`
}

// releaseInfo reads, with the user's client, the GitSync that started the
// release to link its commit.
func (s *Server) releaseInfo(ctx context.Context, c *sluicev1beta1.Canary) *ReleaseInfo {
	st := c.Status
	info := &ReleaseInfo{
		Traffic: TrafficSplit{
			Canary: st.CanaryWeight, Baseline: st.BaselineWeight, Mirrored: st.Mirrored,
			Primary: max(0, 100-st.CanaryWeight-st.BaselineWeight),
		},
		ComparisonSamples: st.ComparisonSamples,
	}
	if st.ReleaseStartTime != nil {
		t := st.ReleaseStartTime.Time
		info.Started = &t
	}
	src := st.Source
	if src == nil {
		return info
	}
	cv := &CommitView{Revision: src.Revision, SHA: revisionSHA(src.Revision), GitSync: src.GitSyncNamespace + "/" + src.GitSyncName}
	if src.CommitTime != nil {
		t := src.CommitTime.Time
		cv.CommitTime = &t
	}
	gs := &sluicev1beta1.GitSync{}
	if err := s.opts.Client.Get(ctx, client.ObjectKey{Namespace: src.GitSyncNamespace, Name: src.GitSyncName}, gs); err != nil {
		_, body := apiFailure(err)
		cv.Note = "the GitSync " + cv.GitSync + " cannot be read to link the commit: " + body.Error
	} else {
		cv.Repository = redactURL(gs.Spec.URL)
		if lc := gs.Status.LastAppliedCommit; lc != nil && gs.Status.LastAppliedRevision == src.Revision {
			cv.Subject, cv.Author = lc.Subject, lc.Author
		}
		if p := gitSyncCommitPrefix(gs); p != "" && cv.SHA != "" {
			cv.URL = p + cv.SHA
		}
	}
	info.Commit = cv
	return info
}
