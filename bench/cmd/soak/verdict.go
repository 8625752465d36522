package main

// This file turns the group's stuck episodes (the embedded broker's bug,
// churn.StuckWatch) into what the verdict needs: the lag each built, when
// it was caught up, and the observed member's RSS growth outside them.

import (
	"fmt"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// episode is a stuck episode placed among the samples.
type episode struct {
	generation int32
	start, end time.Duration // since the soak's start
	ongoing    bool          // still stuck at the last reading
	lagBefore  int64         // the last sample's before start; -1 if unknown
	peak       int64         // the highest lag from start to the catch-up
	peakAt     time.Duration
	// caughtUp is the first sample at or after end whose lag is back to
	// lagBefore (or to a second of production, if higher); -1: never.
	caughtUp time.Duration
}

func (e episode) String() string {
	s := fmt.Sprintf("PreparingRebalance at generation %d from %v for %v", e.generation, e.start, e.end-e.start)
	if e.ongoing {
		s += " (still at the end)"
	}
	s += fmt.Sprintf("; lag %s before, peak %s at %v (+%s)", num(e.lagBefore), num(e.peak), e.peakAt, num(e.peak-max(e.lagBefore, 0)))
	if e.caughtUp < 0 {
		return s + "; never caught up"
	}
	return s + fmt.Sprintf("; caught up at %v", e.caughtUp)
}

// placeEpisodes places the stuck episodes among the samples; rate is the
// produce rate (messages a second).
func placeEpisodes(eps []churn.StuckEpisode, start time.Time, samples []sample, rate int) []episode {
	var out []episode
	for _, se := range eps {
		e := episode{generation: se.Generation, start: se.Start.Sub(start).Round(time.Second), end: se.End.Sub(start).Round(time.Second),
			ongoing: se.Ongoing, lagBefore: -1, caughtUp: -1}
		for _, s := range samples {
			if s.at < e.start {
				e.lagBefore = s.lag
				continue
			}
			if s.lag > e.peak {
				e.peak, e.peakAt = s.lag, s.at
			}
			if s.at >= e.end && !e.ongoing && s.lag >= 0 && s.lag <= max(e.lagBefore, int64(rate)) {
				e.caughtUp = s.at
				break
			}
		}
		out = append(out, e)
	}
	return out
}

// outsideGrowth returns the observed member's RSS growth (a ratio) from
// the sample at from to the last sample, leaving out every step between
// two consecutive samples that meets an episode (from its start to its
// catch-up, or to the end if never caught up), and the time the steps it
// kept cover. Within a stretch without episodes the steps add up to the
// stretch's growth; the stretches multiply.
func outsideGrowth(samples []sample, from time.Duration, eps []episode) (float64, time.Duration) {
	ratio, covered := 1.0, time.Duration(0)
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if a.at < from || a.rssKiB <= 0 || b.rssKiB <= 0 {
			continue
		}
		meets := false
		for _, e := range eps {
			until := e.caughtUp
			if until < 0 {
				until = samples[len(samples)-1].at
			}
			meets = meets || (a.at < until && b.at > e.start)
		}
		if !meets {
			ratio *= float64(b.rssKiB) / float64(a.rssKiB)
			covered += b.at - a.at
		}
	}
	return ratio, covered
}

// judgeRSS judges the observed member's RSS growth from b to last. Over
// 10% is a fail without stuck episodes. With them, RSS grows while a
// stuck group's backlog builds and is consumed (Go's heap and librdkafka's
// queues) and the runtime and malloc keep much of it afterwards: a growth
// over 10% outside the episodes (outsideGrowth) is still a fail; one that
// is only the whole growth is the broker's, as is one that cannot be
// judged (the last backlog never caught up, or less than minAfterCatchUp
// after its catch-up). The message says why.
func judgeRSS(samples []sample, b, last sample, eps []episode) (verdict, string) {
	grew := float64(last.rssKiB) / float64(b.rssKiB)
	whole := fmt.Sprintf("RSS grew %.0f%% (%s to %s MiB)", 100*(grew-1), kib(b.rssKiB), kib(last.rssKiB))
	if grew <= 1.1 {
		return verdictPass, ""
	}
	if len(eps) == 0 {
		return verdictFail, whole
	}
	out, _ := outsideGrowth(samples, b.at, eps)
	l := eps[len(eps)-1]
	switch {
	case out > 1.1:
		return verdictFail, fmt.Sprintf("%s, %+.0f%% outside the stuck episodes", whole, 100*(out-1))
	case l.caughtUp < 0:
		return verdictBrokerBug, whole + " and the last stuck episode's backlog was never caught up: the growth cannot be judged"
	case last.at-l.caughtUp < minAfterCatchUp:
		return verdictBrokerBug, fmt.Sprintf("%s; outside the stuck episodes %+.0f%%, but only %v after the last catch-up (want %v): too short to tell whether it still grows",
			whole, 100*(out-1), last.at-l.caughtUp, minAfterCatchUp)
	}
	return verdictBrokerBug, fmt.Sprintf("%s, all but %+.0f%% of it in the stuck episodes and their catch-up (the memory kept after their backlog)", whole, 100*(out-1))
}
