package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// syncMetric is the manager's histogram of sync durations (pkg/gitsync/metrics.go).
const syncMetric = "sluice_gitsync_sync_duration_seconds"

// histogram is syncMetric summed over every GitSync and result: the
// cumulative count of each bucket (by upper bound), the sum and the count.
type histogram struct {
	buckets map[float64]float64
	sum     float64
	count   float64
}

// parseHistogram reads syncMetric from a Prometheus text exposition.
func parseHistogram(r io.Reader) (histogram, error) {
	h := histogram{buckets: map[float64]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, syncMetric) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return h, fmt.Errorf("bad sample %q: %w", line, err)
		}
		name, labels, _ := strings.Cut(line[:i], "{")
		switch name {
		case syncMetric + "_sum":
			h.sum += v
		case syncMetric + "_count":
			h.count += v
		case syncMetric + "_bucket":
			le, ok := label(labels, "le")
			if !ok {
				return h, fmt.Errorf("bucket without le: %q", line)
			}
			bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
			if err != nil {
				return h, fmt.Errorf("bad le in %q: %w", line, err)
			}
			h.buckets[bound] += v
		}
	}
	return h, sc.Err()
}

// label finds name="value" in a label list.
func label(labels, name string) (string, bool) {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return "", false
	}
	v, _, ok := strings.Cut(rest, `"`)
	return v, ok
}

// sub is h minus an earlier scrape.
func (h histogram) sub(earlier histogram) histogram {
	out := histogram{buckets: map[float64]float64{}, sum: h.sum - earlier.sum, count: h.count - earlier.count}
	for b, v := range h.buckets {
		out.buckets[b] = v - earlier.buckets[b]
	}
	return out
}

// mean is the mean duration observed.
func (h histogram) mean() time.Duration {
	if h.count <= 0 {
		return 0
	}
	return time.Duration(h.sum / h.count * float64(time.Second))
}

// slowest is the bucket of the slowest observation: (lower, upper].
func (h histogram) slowest() (lower, upper float64) {
	bounds := make([]float64, 0, len(h.buckets))
	for b := range h.buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	prev, prevCount := 0.0, 0.0
	for _, b := range bounds {
		if c := h.buckets[b]; c > prevCount {
			lower, upper = prev, b
		}
		prev, prevCount = b, h.buckets[b]
	}
	return lower, upper
}

// scrape reads the histogram from the manager's metrics endpoint.
func scrape(ctx context.Context, addr string) (histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return histogram{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return histogram{}, fmt.Errorf("failed to scrape the manager's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return histogram{}, fmt.Errorf("the manager's metrics answered %s", resp.Status)
	}
	return parseHistogram(resp.Body)
}

// fmtBound prints a bucket bound.
func fmtBound(b float64) string {
	if math.IsInf(b, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(b, 'f', -1, 64) + "s"
}
