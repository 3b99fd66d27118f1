package notify

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/slack-go/slack"
)

// failedStage is the event of a bundle whose release staging's Canary rolled back.
func failedStage() Event {
	return Event{
		Severity: SeverityError,
		Reason:   "VerificationFailed",
		Message:  "staging: bundle 9b1c2d3e4f5a6b7c (web:1.2.0) failed: release 6f0b1c of staging/web was rolled back: request-success-rate 91.3 is outside [99, +Inf]",
		Pipeline: &PipelineInfo{
			Name: "web", Namespace: "sluice-system", Stage: "staging", Bundle: "9b1c2d3e4f5a6b7c",
			Images:  []PipelineImage{{Source: "web", Repository: "registry.example.com/org/web", Tag: "1.2.0", Digest: "sha256:" + strings.Repeat("2", 64)}},
			Commit:  "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345",
			Release: "6f0b1c",
		},
		Time: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC),
	}
}

// waitingStage is a bundle at production's manual gate, carried by a pull request.
func waitingStage() Event {
	return Event{
		Severity: SeverityInfo,
		Reason:   "WaitingForApproval",
		Message:  "production: bundle 1a2b3c4d5e6f7a8b (web:1.3.0) waits for approval: kubectl sluice promote-stage web production -n sluice-system",
		Pipeline: &PipelineInfo{
			Name: "web", Namespace: "sluice-system", Stage: "production", Bundle: "1a2b3c4d5e6f7a8b",
			Images:      []PipelineImage{{Source: "web", Repository: "registry.example.com/org/web", Tag: "1.3.0", Digest: "sha256:" + strings.Repeat("3", 64)}},
			PullRequest: "https://promoter:s3cr3t@gitea.example.com/org/deploy/pulls/7",
		},
		Time: time.Date(2026, 12, 7, 3, 5, 0, 0, time.UTC),
	}
}

func TestNotifiers_PipelinePayloads(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event func() Event
	}{{"pipeline-failed", failedStage}, {"pipeline-waiting", waitingStage}} {
		for _, typ := range []string{TypeSlack, TypeMSTeams, TypeDiscord, TypeGChat, TypeRocket, TypeGeneric} {
			t.Run(tc.name+"/"+typ, func(t *testing.T) {
				g := NewWithT(t)
				rec := &receiver{answer: "ok"}
				srv := httptest.NewServer(rec)
				defer srv.Close()
				address := srv.URL + "/hook"
				if typ == TypeSlack {
					address = srv.URL + "/services/T000/B000/XXXXXXXX"
				}
				p := provider(typ, address)
				p.Spec.Channel = "deploys"
				n, err := New(context.Background(), nil, p)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(n.Post(context.Background(), tc.event())).To(Succeed())
				g.Expect(rec.count()).To(Equal(1))
				g.Expect(string(rec.last())).NotTo(ContainSubstring("s3cr3t"), "a credential of the pull request URL reached the message")
				assertGolden(t, tc.name+"-"+typ, rec.last())
			})
		}
	}
}

func TestSlack_PipelineBlocks(t *testing.T) {
	g := NewWithT(t)
	blocks := slackBlocks(newMessage(failedStage()))
	g.Expect(blocks).To(HaveLen(5))
	g.Expect(blocks[0].(*slack.HeaderBlock).Text.Text).To(Equal("web.sluice-system: staging: Verification failed"))
	g.Expect(blocks[1].(*slack.SectionBlock).Text.Text).To(HavePrefix(":red_circle: staging: bundle 9b1c2d3e4f5a6b7c (web:1.2.0) failed: "))
	var texts []string
	for _, f := range blocks[2].(*slack.SectionBlock).Fields {
		texts = append(texts, f.Text)
	}
	g.Expect(texts).To(Equal([]string{"*Stage*\nstaging", "*Bundle*\n9b1c2d3e4f5a6b7c", "*Commit*\n3f2c9a1b7d4e", "*Release*\n6f0b1c"}))
	g.Expect(blocks[3].(*slack.SectionBlock).Text.Text).To(Equal("*Images*\n• web: registry.example.com/org/web:1.2.0@sha256:" + strings.Repeat("2", 64)))
	g.Expect(blocks[4].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject).Text).
		To(Equal("Reason: VerificationFailed | Severity: error | 2026-12-07T03:00:00Z"))
}

func TestGeneric_PipelinePayloadHasNoCredentials(t *testing.T) {
	g := NewWithT(t)
	body, err := json.Marshal(genericPipelinePayload(waitingStage()))
	g.Expect(err).NotTo(HaveOccurred())
	var got GenericPipelinePayload
	g.Expect(json.Unmarshal(body, &got)).To(Succeed())
	g.Expect(got.PullRequest).To(Equal("https://gitea.example.com/org/deploy/pulls/7"))
	g.Expect(got.Stage).To(Equal("production"))
	g.Expect(got.Images).To(HaveLen(1))

	// A queued event is a copy: the caller may reuse its info.
	e := waitingStage()
	c := copyPipeline(e.Pipeline)
	e.Pipeline.Images[0].Tag = "changed"
	g.Expect(c.Images[0].Tag).To(Equal("1.3.0"))
	g.Expect(copyPipeline(nil)).To(BeNil())
}
