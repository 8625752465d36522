package churn

// This file detects the embedded broker's stuck group (see the package
// doc): a classic group PreparingRebalance at one generation for too long.
// The churn run ends a run on it; the soak command reports each episode of
// a long run.

import "time"

// StuckWatch follows a classic group's state, read again and again, and
// records its stuck episodes: the group PreparingRebalance at one
// generation for at least After. Real Kafka ends a rebalance within the
// rebalance timeout; kfake can hold it much longer (see the package doc).
// Not safe for concurrent use. The zero value with After set is ready.
type StuckWatch struct {
	// After: preparing at one generation this long is stuck.
	After time.Duration

	since    time.Time // zero while the group is not preparing
	epoch    int32
	last     time.Time // the last reading
	episodes []StuckEpisode
}

// StuckEpisode is one stuck episode.
type StuckEpisode struct {
	// Start is the first reading PreparingRebalance at Generation; End the
	// first reading after it in another state or at another generation, or
	// the last reading if the episode is Ongoing.
	Start, End time.Time
	Generation int32
	Ongoing    bool
}

// Len returns how long the episode lasted (so far, if Ongoing).
func (e StuckEpisode) Len() time.Duration { return e.End.Sub(e.Start) }

// Observe takes a reading of the group (its state and generation) at now
// and returns how long the group has been PreparingRebalance at that
// generation: zero for a reading in another state, or the first one
// preparing at a generation. Readings must come in time order.
func (w *StuckWatch) Observe(now time.Time, state string, generation int32) time.Duration {
	preparing := state == "PreparingRebalance"
	if !w.since.IsZero() && (!preparing || generation != w.epoch) {
		if w.last.Sub(w.since) >= w.After {
			w.episodes = append(w.episodes, StuckEpisode{Start: w.since, End: now, Generation: w.epoch})
		}
		w.since = time.Time{}
	}
	w.last = now
	if !preparing {
		return 0
	}
	if w.since.IsZero() {
		w.since, w.epoch = now, generation
		return 0
	}
	return now.Sub(w.since)
}

// Episodes returns the episodes so far, the ongoing one (if stuck) last.
func (w *StuckWatch) Episodes() []StuckEpisode {
	out := append([]StuckEpisode(nil), w.episodes...)
	if !w.since.IsZero() && w.last.Sub(w.since) >= w.After {
		out = append(out, StuckEpisode{Start: w.since, End: w.last, Generation: w.epoch, Ongoing: true})
	}
	return out
}
