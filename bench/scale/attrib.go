package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-cd/sluice/bench/internal/apicount"
)

// A write the controller made, attributed to the canary whose objects it
// touched: its Canary (and status), its Deployments (target and
// <name>-primary), its Services (<name>, -canary, -primary), its HTTPRoute,
// and the events about any of them. Writes to nothing of a canary (the
// leader-election Lease) have an empty key.
type write = apicount.Write

// canaryOf is the benchmark's canary name at the start of an object name:
// app-0007, app-0007-primary and app-0007-canary are all canary app-0007.
var canaryOf = regexp.MustCompile(`^app-[0-9]+`)

// canaryIn finds a canary name in a protobuf-encoded event.
var canaryIn = regexp.MustCompile(`app-[0-9]+`)

// maxEventBody bounds what the proxy reads of an event to find whom it is about.
const maxEventBody = 64 << 10

// attribute names the canary a write is about. For a named object that is
// in the path; a created event names it in its body (regarding, or
// involvedObject for core/v1 events), which is read and put back.
func attribute(r *http.Request) types.NamespacedName {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var ns, name string
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "namespaces" {
			ns = parts[i+1]
			if i+3 < len(parts) {
				name = parts[i+3]
			}
			break
		}
	}
	if ns == "" {
		return types.NamespacedName{}
	}
	if name == "" && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") && r.Body != nil {
		head, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody))
		r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
		if err == nil {
			var ev struct {
				Regarding      struct{ Name string } `json:"regarding"`
				InvolvedObject struct{ Name string } `json:"involvedObject"`
			}
			if json.Unmarshal(head, &ev) == nil {
				name = ev.Regarding.Name
				if name == "" {
					name = ev.InvolvedObject.Name
				}
			} else {
				// client-go's event sink sends protobuf: the event's name
				// (<object>.<timestamp>) comes first, and names the object.
				name = string(canaryIn.Find(head))
			}
		}
	}
	if m := canaryOf.FindString(name); m != "" {
		return types.NamespacedName{Namespace: ns, Name: m}
	}
	return types.NamespacedName{}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// stepWrites are the writes made for a canary's analysis steps, apart from
// the fixed cost of a release (start, promotion, scale-down, phase events).
type stepWrites struct {
	writes, steps int            // in the windows, over every canary
	perCanary     []float64      // writes per analysis step of each canary, sorted
	byResource    map[string]int // in the windows, by verb and resource
	release       []int          // every write of each finished canary's release, sorted
}

// attributeSteps takes the writes recorded from the moment the release was
// triggered until every canary finished. It counts, for each canary, its writes between half an
// interval after its first step and half an interval after its
// second-to-last step: the writes of steps 2 … K−1 (the advances that follow
// the first; step 1 shares its time with the canary's start, step K starts
// the promotion). The half interval takes in the writes that trail a step's
// status patch (the event is sent asynchronously) and stops well before the
// next step is due.
func attributeSteps(ws []write, tracks map[types.NamespacedName]*track, interval time.Duration) stepWrites {
	byKey := map[types.NamespacedName][]write{}
	for _, w := range ws {
		if w.Key.Name != "" {
			byKey[w.Key] = append(byKey[w.Key], w)
		}
	}
	out := stepWrites{byResource: map[string]int{}}
	for k, t := range tracks {
		mine := byKey[k]
		if !t.done.IsZero() {
			out.release = append(out.release, len(mine))
		}
		if len(t.steps) < 3 {
			continue
		}
		from := t.steps[0].Add(interval / 2)
		to := t.steps[len(t.steps)-2].Add(interval / 2)
		n := 0
		for _, w := range mine {
			if w.At.After(from) && !w.At.After(to) {
				n++
				out.byResource[w.Resource]++
			}
		}
		steps := len(t.steps) - 2
		out.writes += n
		out.steps += steps
		out.perCanary = append(out.perCanary, float64(n)/float64(steps))
	}
	sort.Float64s(out.perCanary)
	sort.Ints(out.release)
	return out
}

// perStep is the mean number of writes per analysis step.
func (s stepWrites) perStep() float64 {
	if s.steps == 0 {
		return 0
	}
	return float64(s.writes) / float64(s.steps)
}
