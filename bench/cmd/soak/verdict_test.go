package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// samplesOf makes a sample every 10 s from (rss MiB, lag) pairs.
func samplesOf(v ...[2]int64) []sample {
	var out []sample
	for i, x := range v {
		out = append(out, sample{at: time.Duration(i+1) * 10 * time.Second, rssKiB: x[0] * 1024, lag: x[1]})
	}
	return out
}

// An episode is placed among the samples with the lag before it, its peak
// and the first sample after it with the lag back; RSS growth is then
// judged without the steps that meet it. The shape of last session's
// confluent soak: a step up during a stuck group's backlog, flat after.
func TestEpisodeLeftOutOfTheGrowth(t *testing.T) {
	start := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	s := time.Second
	samples := samplesOf(
		[2]int64{100, 50}, // 10s
		[2]int64{100, 60}, // 20s: the baseline
		[2]int64{101, 40}, // 30s
		[2]int64{104, 3000},
		[2]int64{110, 9000},
		[2]int64{120, 12000}, // 60s: the episode ended at 55s
		[2]int64{125, 500},   // 70s: not yet back to 60 (nor a second of production, 200)
		[2]int64{124, 150},   // 80s: caught up
		[2]int64{124, 40},
		[2]int64{125, 30}, // 100s
	)
	eps := placeEpisodes([]churn.StuckEpisode{{Start: start.Add(33 * s), End: start.Add(55 * s), Generation: 9}}, start, samples, 200)
	want := episode{generation: 9, start: 33 * s, end: 55 * s, lagBefore: 40, peak: 12000, peakAt: 60 * s, caughtUp: 80 * s}
	if len(eps) != 1 || eps[0] != want {
		t.Fatalf("episodes %+v, want %+v", eps, want)
	}
	// Kept: 20-30s (100 to 101) and 80-100s (124 to 125); the rest meets
	// the episode (30-40s holds its start, 70-80s ends at the catch-up).
	got, covered := outsideGrowth(samples, 20*s, eps)
	if w := 101.0 / 100 * 125 / 124; math.Abs(got-w) > 1e-9 || covered != 30*s {
		t.Errorf("outside growth %v over %v, want %v over 30s", got, covered, w)
	}
	// Never caught up: everything from its start is left out.
	open := placeEpisodes([]churn.StuckEpisode{{Start: start.Add(33 * s), End: start.Add(100 * s), Generation: 9, Ongoing: true}}, start, samples, 200)
	if open[0].caughtUp != -1 {
		t.Errorf("an ongoing episode caught up at %v", open[0].caughtUp)
	}
	if got, covered := outsideGrowth(samples, 20*s, open); math.Abs(got-1.01) > 1e-9 || covered != 10*s {
		t.Errorf("outside growth with an ongoing episode %v over %v, want 1.01 over 10s", got, covered)
	}
	// Without episodes the growth is the end's over the reference's.
	if got, _ := outsideGrowth(samples, 20*s, nil); math.Abs(got-1.25) > 1e-9 {
		t.Errorf("growth without episodes %v, want 1.25", got)
	}
}

// The RSS verdict, on series shaped like last session's 20-minute confluent
// soak (a step up with a stuck group's backlog, flat after it) and on the
// ones it must not excuse: growth after the catch-up, growth without
// episodes.
func TestJudgeRSS(t *testing.T) {
	start := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	s := time.Second
	// series: n samples 10 s apart; rss(i) in MiB; lag 100 except 3000
	// from 40s to 100s.
	series := func(n int, rss func(i int) int64) []sample {
		var v [][2]int64
		for i := range n {
			lag := int64(100)
			if at := (i + 1) * 10; at >= 40 && at <= 100 {
				lag = 3000
			}
			v = append(v, [2]int64{rss(i), lag})
		}
		return samplesOf(v...)
	}
	stuck := []churn.StuckEpisode{{Start: start.Add(35 * s), End: start.Add(90 * s), Generation: 4}}
	step := func(i int) int64 { // 100 MiB, 130 from the episode on
		if i >= 4 {
			return 130
		}
		return 100
	}
	for _, tc := range []struct {
		name string
		n    int
		rss  func(int) int64
		eps  []churn.StuckEpisode
		want verdict
		says string
	}{
		{"a step with the episode, flat after: the broker's", 30, step, stuck, verdictBrokerBug, "all but +0% of it in the stuck episodes"},
		{"the same without an episode: a fail", 30, step, nil, verdictFail, "RSS grew 30%"},
		{"growing after the catch-up: a fail", 30, func(i int) int64 { return step(i) + int64(max(0, i-10)) }, stuck, verdictFail, "+15% outside the stuck episodes"},
		{"less than 2 minutes after the catch-up: the broker's, undecided", 20, step, stuck, verdictBrokerBug, "too short to tell"},
		{"never caught up: the broker's, undecided", 30, step, []churn.StuckEpisode{{Start: start.Add(35 * s), End: start.Add(300 * s), Ongoing: true}}, verdictBrokerBug, "never caught up"},
		{"under 10%", 30, func(i int) int64 { return 100 + int64(i/5) }, stuck, verdictPass, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples := series(tc.n, tc.rss)
			eps := placeEpisodes(tc.eps, start, samples, 200)
			got, msg := judgeRSS(samples, samples[1], samples[len(samples)-1], eps)
			if got != tc.want || !strings.Contains(msg, tc.says) {
				t.Errorf("verdict %d (%q), want %d saying %q", got, msg, tc.want, tc.says)
			}
		})
	}
}
