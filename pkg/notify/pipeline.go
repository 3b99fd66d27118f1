package notify

// PipelineInfo describes the stage of a Pipeline an Event is about
// (Event.Pipeline). Event.Reason is then the event type (VerificationFailed,
// PullRequestClosed, Superseded, SetterNotFound, PushRejected,
// GitUnreachable, InvalidGitTarget, WaitingForApproval, Committed,
// RolledBack, Recovered) and Event.Message its one-line summary.
type PipelineInfo struct {
	// Name and Namespace name the Pipeline.
	Name, Namespace string
	// Stage is the stage the event is about.
	Stage string
	// Bundle is the bundle's id, Images its images.
	Bundle string
	Images []PipelineImage
	// Commit is the commit that brought the bundle to the stage, when known.
	Commit string
	// PullRequest is the URL of the bundle's pull request, when it has one.
	PullRequest string
	// Release is the Canary release that verifies (or failed) the bundle.
	Release string
}

// PipelineImage is an image of a bundle, pinned by digest.
type PipelineImage struct {
	Source     string `json:"source"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
}

// pipelineLabels are the headlines of the Pipeline event types.
var pipelineLabels = map[string]string{
	"VerificationFailed": "Verification failed",
	"PullRequestClosed":  "Pull request closed",
	"Superseded":         "Superseded",
	"SetterNotFound":     "Write failed: setter not found",
	"PushRejected":       "Write failed: push rejected",
	"GitUnreachable":     "Write failed: Git unreachable",
	"InvalidGitTarget":   "Write failed: invalid Git target",
	"WaitingForApproval": "Waiting for approval",
	"Committed":          "Promoted",
	"RolledBack":         "Rolled back",
	"Recovered":          "Recovered",
}

// pipelineMessage builds the content of a Pipeline notification: the
// stage, the bundle and its images, the commit, the pull request and the
// release.
func pipelineMessage(e Event) message {
	pi := *e.Pipeline
	title := pi.Name + "." + pi.Namespace
	label := pipelineLabels[e.Reason]
	if label == "" {
		label = e.Reason
	}
	m := message{
		Title:    title,
		Headline: title + ": " + pi.Stage + ": " + label,
		Subtitle: label,
		Text:     scrubUserInfo(e.Message),
		Severity: normSeverity(e.Severity),
		Reason:   e.Reason,
		Time:     e.Time.UTC(),
	}
	m.Fallback = m.Headline
	if m.Text != "" {
		m.Fallback += ": " + m.Text
	}
	m.Fields = []field{
		{Title: "Stage", Value: orDash(pi.Stage)},
		{Title: "Bundle", Value: orDash(pi.Bundle)},
	}
	if pi.Commit != "" {
		m.Fields = append(m.Fields, field{Title: "Commit", Value: shortSHA(pi.Commit)})
	}
	if pi.PullRequest != "" {
		pr := redactUserInfo(pi.PullRequest)
		m.Fields = append(m.Fields, field{Title: "Pull request", Value: pr, URL: pr})
	}
	if pi.Release != "" {
		m.Fields = append(m.Fields, field{Title: "Release", Value: pi.Release})
	}
	if len(pi.Images) > 0 {
		m.ListTitle = "Images"
		for _, im := range pi.Images {
			m.Checks = append(m.Checks, im.Source+": "+im.Repository+":"+im.Tag+"@"+im.Digest)
		}
	}
	return m
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// GenericPipelinePayload is the JSON body posted by the generic provider
// for an event of a Pipeline.
type GenericPipelinePayload struct {
	Pipeline    string          `json:"pipeline"`
	Namespace   string          `json:"namespace"`
	Stage       string          `json:"stage"`
	Reason      string          `json:"reason"`
	Message     string          `json:"message"`
	Severity    string          `json:"severity"`
	Bundle      string          `json:"bundle"`
	Images      []PipelineImage `json:"images"`
	Commit      string          `json:"commit,omitempty"`
	PullRequest string          `json:"pullRequest,omitempty"`
	Release     string          `json:"release,omitempty"`
	Timestamp   string          `json:"timestamp"`
}

// genericPipelinePayload builds the payload of a Pipeline event.
func genericPipelinePayload(e Event) GenericPipelinePayload {
	pi := e.Pipeline
	images := pi.Images
	if images == nil {
		images = []PipelineImage{}
	}
	pr := ""
	if pi.PullRequest != "" {
		pr = redactUserInfo(pi.PullRequest)
	}
	return GenericPipelinePayload{
		Pipeline: pi.Name, Namespace: pi.Namespace, Stage: pi.Stage, Reason: e.Reason,
		Message: scrubUserInfo(e.Message), Severity: normSeverity(e.Severity), Bundle: pi.Bundle, Images: images,
		Commit: pi.Commit, PullRequest: pr, Release: pi.Release,
		Timestamp: e.Time.UTC().Format("2006-01-02T15:04:05Z07:00"),
	}
}

// copyPipeline copies the info of an event queued for later delivery.
func copyPipeline(pi *PipelineInfo) *PipelineInfo {
	if pi == nil {
		return nil
	}
	c := *pi
	c.Images = append([]PipelineImage(nil), pi.Images...)
	return &c
}
