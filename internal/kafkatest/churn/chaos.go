package churn

// This file lets a Config.Chaos function break things during a run (the
// broker through the Cluster, a member through SIGSTOP) and accounts for
// duplicates: every disturbance is an Event with a bound on the duplicates
// it may cause, computed at the moment it happens.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// Event is one disturbance of a run: a member killed, stopped or started
// (its join rebalances the group), frozen, or a fault of the broker.
//
// Bound is what the disturbance may cost in duplicates: the messages
// handled at or above their partition's committed offset (done but not yet
// committed: a new owner starting at the commit may handle them again) plus
// the handlers that may be running (Concurrency per live member: a call
// that finishes after its partition moved is handled twice), taken at the
// event's start and, for one that lasts, at its end, whichever is larger.
// The done part counts every partition, not only the ones that moved. For
// a fault of the broker or a frozen member the bound is the largest from
// its start to a session timeout after its end: the fault's effect on the
// group (a coordinator or a connection lost, commits refused) lasts until
// the clients recover or their sessions time out, and what is done above
// the commit until then is what a loss at that point redoes. A member's
// kill, stop or start takes the bound at that moment only.
//
// Dups is the duplicate handlings charged to the event: a duplicate of an
// offset is charged to the first event whose bound was taken at or after
// the offset's first handling (minus the parent's read lag): one that began
// then or later, or a fault whose window (see above) was still open; that
// is the first event whose Bound counted the offset as done above the
// commit. A duplicate whose first handling came after every window is
// charged to the last event (it was in flight then).
//
// Shared is the sum of the bounds of the later events that began inside
// this one's window: their duplicates are charged here (this window was
// open first), so the event may cost its own bound plus theirs (a kill
// during a broker fault costs what the kill costs on top of the fault).
type Event struct {
	Kind    string
	At, End time.Duration // since the run's start; End == At for an instant one
	Bound   int
	Shared  int
	Dups    int
	// Stale (a freeze only) counts what the frozen member handled in the
	// StaleWindow after it was resumed that some other member handled too:
	// its calls in flight when it froze (at most Concurrency), the queued
	// messages of the partitions it lost meanwhile if it ran them, and,
	// when it gets partitions again within the window, what it redoes of
	// the previous owners' uncommitted work. An upper bound of the stale
	// work, not a measure of it: the parent cannot tell these apart.
	Stale int
}

// StaleWindow is how long after a frozen member's resume its handlings
// are checked for stale work (see Event.Stale).
const StaleWindow = 2 * time.Second

// Over reports whether the event's duplicates exceed its bound.
func (e Event) Over() bool { return e.Dups > e.Bound+e.Shared }

func (e Event) String() string {
	if e.Kind == "freeze" {
		return fmt.Sprintf("%s at %v-%v: %d duplicates, bound %d + %d shared, %d stale after the resume", e.Kind, e.At, e.End, e.Dups, e.Bound, e.Shared, e.Stale)
	}
	return fmt.Sprintf("%s at %v-%v: %d duplicates, bound %d + %d shared", e.Kind, e.At, e.End, e.Dups, e.Bound, e.Shared)
}

// ChaosEnv is what a Config.Chaos function may do to a run. Its methods are
// safe for concurrent use; they block until the run loop (which owns the
// member processes and the bookkeeping) has served them, and return at once
// once the run has moved on to its clean stop.
type ChaosEnv struct {
	cluster *kafkatest.Cluster
	reqs    chan chaosReq
	stopped chan struct{} // closed when the run loop no longer serves reqs
}

type chaosReq struct {
	kind   string        // begin: the event's kind
	end    int           // end: the event index + 1
	freeze time.Duration // freeze: how long
	member int           // freeze: the member's index + 1; 0: any
	reply  chan int
}

// Cluster returns the run's broker, to break.
func (e *ChaosEnv) Cluster() *kafkatest.Cluster { return e.cluster }

// Begin records the start of a fault of the given kind (a short word, the
// table's label) and returns the function that records its end: call it
// when the fault is undone, or at once for an instant one.
func (e *ChaosEnv) Begin(kind string) (end func()) {
	i := e.call(chaosReq{kind: kind})
	return func() {
		if i >= 0 {
			e.call(chaosReq{end: i + 1})
		}
	}
}

// Freeze stops a member process that has handled a message with SIGSTOP
// and resumes it with SIGCONT d later, recording a "freeze" event that ends
// then. It does not wait for the resume; it reports whether a member was
// eligible (not being stopped, not frozen already).
func (e *ChaosEnv) Freeze(d time.Duration) bool {
	return e.call(chaosReq{kind: "freeze", freeze: d}) >= 0
}

// FreezeMember is Freeze of the member process with this index
// (MemberSpec.Index); it reports false if that member is not eligible (or
// not live).
func (e *ChaosEnv) FreezeMember(index int, d time.Duration) bool {
	return e.call(chaosReq{kind: "freeze", freeze: d, member: index + 1}) >= 0
}

func (e *ChaosEnv) call(r chaosReq) int {
	r.reply = make(chan int, 1)
	select {
	case e.reqs <- r:
	case <-e.stopped:
		return -1
	}
	return <-r.reply
}

// events is the run loop's record of events. Not safe for concurrent use.
type events struct {
	list  []Event
	quiet time.Duration // the latest start or end of an event
	grace time.Duration // a fault's bound window after its end: the session timeout
}

func (ev *events) begin(kind string, at time.Duration, bound int) int {
	ev.list = append(ev.list, Event{Kind: kind, At: at, End: at, Bound: bound})
	ev.quiet = max(ev.quiet, at)
	return len(ev.list) - 1
}

func (ev *events) end(i int, at time.Duration, bound int) {
	e := &ev.list[i]
	e.End = at
	e.Bound = max(e.Bound, bound)
	ev.quiet = max(ev.quiet, at)
}

// widen raises the bound of every fault whose window (start to a session
// timeout, grace, after its end) holds now to bound(), computed at most
// once. A member's kill, stop or start has no window.
func (ev *events) widen(now time.Duration, bound func() int) {
	b := -1
	for i := range ev.list {
		e := &ev.list[i]
		if now > ev.windowEnd(*e) || now < e.At {
			continue
		}
		if b < 0 {
			b = bound()
		}
		e.Bound = max(e.Bound, b)
	}
}

// charge charges duplicates (each given as its offset's first handling) to
// events; lag is how late the parent may see a handling.
func (ev *events) charge(dups []time.Duration, lag time.Duration) {
	if len(ev.list) == 0 {
		if len(dups) > 0 {
			// Nothing happened yet: a run records its first members' start
			// as events, so this cannot be; keep the count anyway.
			ev.list = append(ev.list, Event{Kind: "none"})
		} else {
			return
		}
	}
	for _, first := range dups {
		i := slices.IndexFunc(ev.list, func(e Event) bool { return ev.windowEnd(e) >= first-lag })
		if i < 0 {
			i = len(ev.list) - 1
		}
		ev.list[i].Dups++
	}
}

// share sets each event's Shared (see Event) once the run is over.
func (ev *events) share() {
	for i := range ev.list {
		e := &ev.list[i]
		e.Shared = 0
		for _, l := range ev.list[i+1:] {
			if l.At >= e.At && l.At <= ev.windowEnd(*e) {
				e.Shared += l.Bound
			}
		}
	}
}

// windowEnd is the end of the time over which e's bound is taken (see
// widen).
func (ev *events) windowEnd(e Event) time.Duration {
	switch e.Kind {
	case "kill", "term", "join", "stop", "none":
		return e.At
	}
	return e.End + ev.grace
}

// ChaosSummary sums a run's events by kind.
type ChaosSummary struct {
	Kind   string
	Events int
	Dups   int
	Bound  int
	Over   int // events whose duplicates exceeded their bound
}

// SummarizeEvents sums events by kind, kinds sorted.
func SummarizeEvents(evs []Event) []ChaosSummary {
	by := map[string]*ChaosSummary{}
	for _, e := range evs {
		s := by[e.Kind]
		if s == nil {
			s = &ChaosSummary{Kind: e.Kind}
			by[e.Kind] = s
		}
		s.Events++
		s.Dups += e.Dups
		s.Bound += e.Bound
		if e.Over() {
			s.Over++
		}
	}
	var out []ChaosSummary
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b ChaosSummary) int {
		switch {
		case a.Kind < b.Kind:
			return -1
		case a.Kind > b.Kind:
			return 1
		}
		return 0
	})
	return out
}

// runChaos starts cfg.Chaos beside the run loop and returns its env and a
// function that cancels it and waits for it to return while serve keeps
// answering its requests.
func runChaos(ctx context.Context, cfg *Config, c *kafkatest.Cluster) (*ChaosEnv, func(serve func(chaosReq))) {
	env := &ChaosEnv{cluster: c, reqs: make(chan chaosReq), stopped: make(chan struct{})}
	if cfg.Chaos == nil {
		return env, func(func(chaosReq)) { close(env.stopped) }
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cfg.Chaos(cctx, env)
	}()
	return env, func(serve func(chaosReq)) {
		cancel()
		for {
			select {
			case r := <-env.reqs:
				serve(r)
			case <-done:
				close(env.stopped)
				return
			}
		}
	}
}
