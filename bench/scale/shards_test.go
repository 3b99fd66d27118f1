package main

import (
	"bytes"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestShardKey_SplitsInTurn(t *testing.T) {
	g := NewWithT(t)
	count := map[string]int{}
	for i := range 10 {
		count[shardKey(i, 3)]++
	}
	g.Expect(count).To(Equal(map[string]int{"s0": 4, "s1": 3, "s2": 3}))
}

// TestPrintShards_SaysByHowMuchTheGoalIsMissed: the report puts each
// shard beside the one controller and judges the largest shard.
func TestPrintShards_SaysByHowMuchTheGoalIsMissed(t *testing.T) {
	one := &shardRun{label: "one controller", releaseIn: time.Minute, procs: []shardUsage{{name: "all", cpu: 10 * time.Second, maxRSS: 200 << 20}}}
	tests := []struct {
		name   string
		shards []int64 // MiB
		want   string
	}{
		{name: "halves", shards: []int64{100, 105}, want: "met"},
		{name: "a large shard", shards: []int64{100, 150}, want: "missed: the largest shard is 0.75 of one controller, 0.25 over 1/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			sharded := &shardRun{label: "2 shards", releaseIn: time.Minute}
			for i, m := range tt.shards {
				sharded.procs = append(sharded.procs, shardUsage{name: shardKey(i, 2), maxRSS: m << 20})
			}
			var out bytes.Buffer
			printShards(&out, config{n: 200, shards: 2, interval: 10 * time.Second}, one, sharded)
			g.Expect(out.String()).To(ContainSubstring("Goal: each shard's peak RSS about 1/2 of one controller's (0.50, +10%): " + tt.want))
			g.Expect(out.String()).To(ContainSubstring("200 MiB"))
			g.Expect(out.String()).To(MatchRegexp(`2 shards\s+s1\s+\d+ MiB`))
		})
	}
}
