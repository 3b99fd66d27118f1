package promotion

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

var outcomes = []sluicev1beta1.DeliveryOutcome{
	sluicev1beta1.DeliveryRunning, sluicev1beta1.DeliveryPromoted, sluicev1beta1.DeliveryPromoted,
	sluicev1beta1.DeliveryRolledBack, sluicev1beta1.DeliverySuperseded,
}

// FuzzDecide drives a three-stage Pipeline with random events (new tags,
// Canary verdicts, holds, approvals, rollbacks, failed writes, lost status
// patches, time) and checks the invariants of every decision:
//   - at most one write per stage, and Decide is deterministic;
//   - no write to a held stage but a requested rollback;
//   - a bundle is written to stage N+1 only when verified in stage N;
//   - a rollback writes a bundle verified in that stage before;
//   - a stage whose commit or pull request is recorded is not written again
//     for the same bundle;
//   - the status stays bounded and keeps every stage's current bundle.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 1, 1, 0, 1, 2, 5, 1, 3, 6, 2, 1, 9})
	f.Add([]byte{0, 1, 1, 3, 0, 1, 4, 2, 7, 2, 8, 2, 1, 1, 6, 0})
	f.Add([]byte{0, 10, 0, 1, 1, 5, 2, 1, 1, 0, 2, 3, 4, 7, 8, 9, 1, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			data = data[:400]
		}
		p := newPipeline(stage("dev"), stage("staging", soak(5*time.Minute)), stage("production", manual(), window("Europe/Paris", "09:00", "17:00")))
		w := newWorld(t, p)
		w.p.Annotations = map[string]string{}
		tags := 0
		check(t, w)
		next := func(i *int) byte {
			if *i >= len(data) {
				return 0
			}
			b := data[*i]
			*i++
			return b
		}
		for i := 0; i < len(data); {
			op := next(&i) % 11
			arg := int(next(&i))
			stageName := p.Spec.Stages[arg%3].Name
			switch op {
			case 0:
				tags++
				w.push(fmt.Sprintf("1.%d.0", tags))
			case 1, 2:
				if st := w.status(stageName); st.Commit != "" {
					w.release(stageName, outcomes[arg%len(outcomes)])
				}
			case 3:
				if w.stageSpec(stageName).Hold == nil {
					w.stageSpec(stageName).Hold = &sluicev1beta1.PipelineHold{Reason: "fuzz"}
				} else {
					w.stageSpec(stageName).Hold = nil
				}
			case 4:
				if n := len(w.p.Status.Bundles); n > 0 {
					w.p.Annotations[sluicev1beta1.PipelineApproveAnnotation] = "production/" + w.p.Status.Bundles[arg%n].ID
				}
			case 5:
				if n := len(w.p.Status.Bundles); n > 0 {
					w.p.Annotations[sluicev1beta1.PipelineRollbackAnnotation] = stageName + "/" + w.p.Status.Bundles[arg%n].ID
				}
			case 6:
				w.failWrite[stageName] = Reason{Reason: sluicev1beta1.PipelineReasonPushRejected, Message: "rejected"}
			case 7:
				w.now = w.now.Add(time.Duration(arg) * 7 * time.Minute)
			case 8:
				// A lost status patch: decide and write, keep the old status.
				old := w.p.Status.DeepCopy()
				check(t, w)
				w.p.Status = *old
				continue
			}
			check(t, w)
		}
	})
}

// check decides once, checks the invariants and applies the decision.
func check(t *testing.T, w *world) {
	t.Helper()
	in := w.p.DeepCopy()
	snapshot := in.DeepCopy()
	o := w.observation()
	d1, d2 := Decide(in, o, w.now), Decide(in, o, w.now)
	if !reflect.DeepEqual(d1, d2) {
		t.Fatal("Decide is not deterministic")
	}
	if !reflect.DeepEqual(in, snapshot) {
		t.Fatal("Decide changed its input")
	}
	d := w.decide()
	seen := map[string]bool{}
	for _, wr := range d.Writes {
		if seen[wr.Stage] {
			t.Fatalf("two writes to %s in one decision", wr.Stage)
		}
		seen[wr.Stage] = true
		i := slices.IndexFunc(in.Spec.Stages, func(s sluicev1beta1.PipelineStage) bool { return s.Name == wr.Stage })
		spec := in.Spec.Stages[i]
		before := in.Status.Stages
		var prev *sluicev1beta1.PipelineStageStatus
		for j := range before {
			if before[j].Name == wr.Stage {
				prev = &before[j]
			}
		}
		if wr.Rollback {
			if prev == nil || !verifiedIn(prev, wr.Bundle.ID) {
				t.Fatalf("rollback of %s to bundle %s never verified there", wr.Stage, wr.Bundle.ID)
			}
			continue
		}
		if spec.Hold != nil {
			t.Fatalf("automation wrote bundle %s to held stage %s", wr.Bundle.ID, wr.Stage)
		}
		if i > 0 && !verifiedIn(&d.Status.Stages[i-1], wr.Bundle.ID) {
			t.Fatalf("bundle %s written to %s unverified in %s", wr.Bundle.ID, wr.Stage, in.Spec.Stages[i-1].Name)
		}
		if prev != nil && prev.Bundle == wr.Bundle.ID && (prev.Commit != "" || prev.PullRequest != "") {
			t.Fatalf("bundle %s written again to %s whose commit %q or pull request %q is recorded", wr.Bundle.ID, wr.Stage, prev.Commit, prev.PullRequest)
		}
	}
	s := w.p.Status
	if len(s.Bundles) > sluicev1beta1.PipelineBundleLimit {
		t.Fatalf("%d bundles", len(s.Bundles))
	}
	for _, st := range s.Stages {
		if len(st.History) > sluicev1beta1.PipelineStageHistoryLimit || len(st.Approvals) > sluicev1beta1.PipelineApprovalLimit {
			t.Fatalf("stage %s unbounded: %d history, %d approvals", st.Name, len(st.History), len(st.Approvals))
		}
		if st.Bundle != "" && !slices.ContainsFunc(s.Bundles, func(b sluicev1beta1.Bundle) bool { return b.ID == st.Bundle }) {
			t.Fatalf("stage %s current bundle %s dropped", st.Name, st.Bundle)
		}
	}
}
