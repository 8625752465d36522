package bench

// This file lists the benchmark suite, shared by the Go benchmarks
// (bench_test.go) and the compare command.

import (
	"fmt"
	"testing"

	"github.com/inorder/inorder/watermark"
)

// BatchImpls are the implementations with a batch form, run by E2EBatch:
// the watermark's TrackBatch, the baselines taking their lock once per
// batch, and the or limit storing the high mark once per batch. (The
// actor has none: its owner goroutine takes one message per offset.)
var BatchImpls = []string{"watermark", "btree", "heap", "or"}

// Case is one benchmark of the suite.
type Case struct {
	Group    string // Ack, Track, Committable or E2E
	Workload string // the workload, or "-" when the group has one
	Impl     string
	Parallel bool // depends on GOMAXPROCS: run at every -cpu value
	F        func(b *testing.B)
}

// Name is the sub-benchmark name: workload=W/impl=I.
func (c Case) Name() string {
	if c.Workload == "-" {
		return "impl=" + c.Impl
	}
	return "workload=" + c.Workload + "/impl=" + c.Impl
}

// Suite returns every benchmark case, each group's implementations next to
// each other, the watermark first.
func Suite() []Case {
	var cs []Case
	ackImpls := append(append([]string{}, Trackers...), Limits...)
	for _, w := range Workloads {
		for _, im := range ackImpls {
			cs = append(cs, Case{"Ack", w, im, true, func(b *testing.B) { Ack(b, im, w) }})
		}
	}
	for _, w := range []string{"inorder", "gaps"} {
		for _, im := range append(append([]string{}, Trackers...), "or") {
			cs = append(cs, Case{"Track", w, im, false, func(b *testing.B) { Track(b, im, w) }})
		}
	}
	for _, im := range Trackers {
		cs = append(cs, Case{"Committable", "-", im, true, func(b *testing.B) { Committable(b, im) }})
	}
	for _, im := range append(append([]string{}, Trackers...), "or") {
		cs = append(cs, Case{"E2E", "-", im, true, func(b *testing.B) { E2E(b, im) }})
	}
	for _, im := range BatchImpls {
		cs = append(cs, Case{"E2E", "batch", im, true, func(b *testing.B) { E2EBatch(b, im) }})
	}
	for _, im := range BatchImpls {
		cs = append(cs, Case{"E2E", "range", im, true, func(b *testing.B) { E2ERange(b, im) }})
	}
	return cs
}

// RunRounds runs rounds full rounds of workload on implementation impl with
// procs acking goroutines, untimed, and returns an error if an operation
// fails or a tracker's commit point misses the end of a round. It is the
// harness of Ack, exposed for tests.
func RunRounds(impl, workload string, procs, rounds int) error {
	w := newWorkload(workload, procs)
	im := New(impl, w.parts, watermark.DefaultWindow)
	defer im.Close()
	a := newAckRunner(im, w)
	defer a.stop()
	for range rounds {
		if err := a.track(); err != nil {
			return err
		}
		if err := a.ack(w.acksPerRound()); err != nil {
			return err
		}
		if err := a.check(); err != nil {
			return err
		}
		a.next()
	}
	// A partial round, as the last round of a benchmark: must not fail.
	if err := a.track(); err != nil {
		return err
	}
	if err := a.ack(w.acksPerRound() / 3); err != nil {
		return err
	}
	if c := im.Committable(0); c >= 0 && c < a.base {
		return fmt.Errorf("%s/%s: commit point %d went below the round base %d", impl, workload, c, a.base)
	}
	return nil
}
