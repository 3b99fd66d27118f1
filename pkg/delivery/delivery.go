// Package delivery computes the delivery figures (DORA: deployment
// frequency, lead time for changes, change failure rate, time to restore)
// from the Canaries' status.delivery records and the GitSyncs' DriftCorrected
// events. `kubectl sluice report` prints them and the dashboard shows them,
// from this one computation.
package delivery

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ParseWindow reads a window back from now: a number of days ("30d") or a
// Go duration ("12h").
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: want a number of days such as 30d, or a duration such as 12h: %w", s, err)
		}
		d = time.Duration(n * float64(24*time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want a number of days such as 30d, or a duration such as 12h: %w", s, err)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: the window must be positive", s)
	}
	return d, nil
}

// Report is the output of `kubectl sluice report` and of the dashboard's delivery page.
type Report struct {
	// Since is the window asked for (--since).
	Since string `json:"since"`
	// Canaries are the figures of each Canary, by namespace and name.
	Canaries []CanaryReport `json:"canaries"`
	// Total are the figures of all the Canaries together.
	Total Figures `json:"total"`
	// GitSyncs are the drift corrections of each GitSync with any.
	GitSyncs []DriftReport `json:"gitSyncs"`
	// DriftCorrections is their sum.
	DriftCorrections int64 `json:"driftCorrections"`
	// Notes say where the figures cover less than the window.
	Notes []string `json:"notes,omitempty"`
}

// CanaryReport are the figures of one Canary.
type CanaryReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Figures   `json:",inline"`
}

// Figures are the delivery figures of a window, from the release records.
type Figures struct {
	ReleasesStarted int64 `json:"releasesStarted"`
	// Deployments are the releases promoted in the window.
	Deployments int64 `json:"deployments"`
	// DeploymentsPerDay is Deployments divided by the window in days.
	DeploymentsPerDay float64 `json:"deploymentsPerDay"`
	// Rollbacks are the releases rolled back (or failed) in the window, by cause.
	Rollbacks        int64            `json:"rollbacks"`
	RollbacksByCause map[string]int64 `json:"rollbacksByCause,omitempty"`
	// ChangeFailureRate is Rollbacks / ReleasesStarted; absent without releases.
	ChangeFailureRate *float64 `json:"changeFailureRate,omitempty"`
	// Lead time for changes and its parts, in seconds (nearest-rank quantiles).
	LeadTime        Quantiles `json:"leadTimeSeconds"`
	CommitToApplied Quantiles `json:"commitToAppliedSeconds"`
	AppliedToStart  Quantiles `json:"appliedToStartSeconds"`
	ReleaseDuration Quantiles `json:"releaseDurationSeconds"`
	// MeanTimeToRestoreSeconds is the mean time to restore of the rollbacks
	// that followed a failed check; absent without any.
	MeanTimeToRestoreSeconds *float64 `json:"meanTimeToRestoreSeconds,omitempty"`
}

// Quantiles of durations in seconds; absent without values.
type Quantiles struct {
	Count  int    `json:"count"`
	Median *int64 `json:"median,omitempty"`
	P90    *int64 `json:"p90,omitempty"`
}

// DriftReport is the drift corrections of one GitSync.
type DriftReport struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Corrections int64  `json:"corrections"`
}

// samples are the durations the quantiles and means are taken over.
type samples struct{ lead, commitApplied, appliedStart, release, restore []int64 }

// Build computes the figures of the records in the window
// [now-since, now]: a release counts as started by its start time, and as
// promoted or rolled back by its end time.
func Build(canaries []sluicev1beta1.Canary, events []unstructured.Unstructured, sinceFlag string, since time.Duration, now time.Time) *Report {
	from := now.Add(-since)
	days := since.Hours() / 24
	rep := &Report{Since: sinceFlag, Canaries: []CanaryReport{}, GitSyncs: []DriftReport{}}
	var all samples
	for i := range canaries {
		c := &canaries[i]
		var s samples
		f := figuresOf(c.Status.Delivery, from, days, &s)
		rep.Canaries = append(rep.Canaries, CanaryReport{Namespace: c.Namespace, Name: c.Name, Figures: f})
		add(&rep.Total, f)
		all.lead = append(all.lead, s.lead...)
		all.commitApplied = append(all.commitApplied, s.commitApplied...)
		all.appliedStart = append(all.appliedStart, s.appliedStart...)
		all.release = append(all.release, s.release...)
		all.restore = append(all.restore, s.restore...)
		if d := c.Status.Delivery; d != nil && len(d.Releases) >= sluicev1beta1.DeliveryRecordLimit && d.Releases[0].StartTime.After(from) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s/%s: its %d release records start %s, after the start of the window: its figures cover %s only",
				c.Namespace, c.Name, len(d.Releases), HumanSeconds(int64(now.Sub(d.Releases[0].StartTime.Time).Seconds()))+" ago",
				"its last "+strconv.Itoa(len(d.Releases))+" releases"))
		}
	}
	rep.Total.DeploymentsPerDay = perDay(rep.Total.Deployments, days)
	rep.Total.ChangeFailureRate = ratio(rep.Total.Rollbacks, rep.Total.ReleasesStarted)
	setQuantiles(&rep.Total, &all)
	slices.SortFunc(rep.Canaries, func(a, b CanaryReport) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	rep.GitSyncs = driftOf(events, from)
	for _, g := range rep.GitSyncs {
		rep.DriftCorrections += g.Corrections
	}
	return rep
}

// figuresOf computes the figures of one Canary's records in the window.
func figuresOf(d *sluicev1beta1.DeliveryStatus, from time.Time, days float64, s *samples) Figures {
	var f Figures
	if d == nil {
		return f
	}
	for _, r := range d.Releases {
		if !r.StartTime.Time.Before(from) {
			f.ReleasesStarted++
		}
		if r.EndTime == nil || r.EndTime.Time.Before(from) {
			continue
		}
		switch r.Outcome {
		case sluicev1beta1.DeliveryPromoted:
			f.Deployments++
			if r.LeadTimeSeconds != nil {
				s.lead = append(s.lead, *r.LeadTimeSeconds)
			}
			if r.CommitTime != nil && r.AppliedTime != nil {
				s.commitApplied = append(s.commitApplied, nonNegative(r.AppliedTime.Sub(r.CommitTime.Time)))
			}
			if r.AppliedTime != nil {
				s.appliedStart = append(s.appliedStart, nonNegative(r.StartTime.Sub(r.AppliedTime.Time)))
			}
			s.release = append(s.release, nonNegative(r.EndTime.Sub(r.StartTime.Time)))
		case sluicev1beta1.DeliveryRolledBack, sluicev1beta1.DeliveryFailed:
			f.Rollbacks++
			if f.RollbacksByCause == nil {
				f.RollbacksByCause = map[string]int64{}
			}
			f.RollbacksByCause[string(r.Cause)]++
			if r.TimeToRestoreSeconds != nil {
				s.restore = append(s.restore, *r.TimeToRestoreSeconds)
			}
		}
	}
	f.DeploymentsPerDay = perDay(f.Deployments, days)
	f.ChangeFailureRate = ratio(f.Rollbacks, f.ReleasesStarted)
	setQuantiles(&f, s)
	return f
}

// add sums the counts of f into t.
func add(t *Figures, f Figures) {
	t.ReleasesStarted += f.ReleasesStarted
	t.Deployments += f.Deployments
	t.Rollbacks += f.Rollbacks
	for k, v := range f.RollbacksByCause {
		if t.RollbacksByCause == nil {
			t.RollbacksByCause = map[string]int64{}
		}
		t.RollbacksByCause[k] += v
	}
}

func setQuantiles(f *Figures, s *samples) {
	f.LeadTime = quantiles(s.lead)
	f.CommitToApplied = quantiles(s.commitApplied)
	f.AppliedToStart = quantiles(s.appliedStart)
	f.ReleaseDuration = quantiles(s.release)
	if len(s.restore) > 0 {
		var sum int64
		for _, v := range s.restore {
			sum += v
		}
		m := float64(sum) / float64(len(s.restore))
		f.MeanTimeToRestoreSeconds = &m
	}
}

// quantiles are the nearest-rank median and p90.
func quantiles(v []int64) Quantiles {
	q := Quantiles{Count: len(v)}
	if len(v) == 0 {
		return q
	}
	v = slices.Clone(v)
	slices.Sort(v)
	rank := func(p float64) *int64 {
		i := max(int(math.Ceil(p*float64(len(v))))-1, 0)
		return &v[i]
	}
	q.Median, q.P90 = rank(0.5), rank(0.9)
	return q
}

func perDay(n int64, days float64) float64 {
	if days <= 0 {
		return 0
	}
	return math.Round(float64(n)/days*1000) / 1000
}

func ratio(n, d int64) *float64 {
	if d == 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

func nonNegative(d time.Duration) int64 { return int64(math.Max(0, math.Round(d.Seconds()))) }

// moreDrift reads the count of the summary event of a sync with many corrections.
var moreDrift = regexp.MustCompile(`^(\d+) more objects`)

// driftOf counts the DriftCorrected events of GitSyncs in the window, with
// their repetitions (series), by GitSync.
func driftOf(events []unstructured.Unstructured, from time.Time) []DriftReport {
	byKey := map[string]*DriftReport{}
	for _, e := range events {
		reason, _, _ := unstructured.NestedString(e.Object, "reason")
		kind, _, _ := unstructured.NestedString(e.Object, "regarding", "kind")
		if reason != "DriftCorrected" || kind != "GitSync" {
			continue
		}
		last := e.GetCreationTimestamp().Time
		if s, ok, _ := unstructured.NestedString(e.Object, "series", "lastObservedTime"); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				last = t
			}
		}
		if last.Before(from) {
			continue
		}
		n := int64(1)
		if c, ok, _ := unstructured.NestedInt64(e.Object, "series", "count"); ok && c > 0 {
			n = c
		}
		note, _, _ := unstructured.NestedString(e.Object, "note")
		if m := moreDrift.FindStringSubmatch(note); m != nil {
			k, _ := strconv.ParseInt(m[1], 10, 64)
			n *= k
		}
		ns, _, _ := unstructured.NestedString(e.Object, "regarding", "namespace")
		name, _, _ := unstructured.NestedString(e.Object, "regarding", "name")
		key := ns + "/" + name
		if byKey[key] == nil {
			byKey[key] = &DriftReport{Namespace: ns, Name: name}
		}
		byKey[key].Corrections += n
	}
	out := []DriftReport{}
	for _, d := range byKey {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DriftReport) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	return out
}

// HumanSeconds is a short duration: 45s, 5m4s, 3h5m, 2d3h.
func HumanSeconds(s int64) string {
	d := time.Duration(s) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", s)
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}
