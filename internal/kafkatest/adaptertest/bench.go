package adaptertest

import (
	"slices"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// Pairs collects the rates of a consumer and its baseline run alternately in
// one benchmark (each iteration runs both, in turns first, so that the noise
// of a shared machine falls on both alike) and reports their medians and the
// median of the per-iteration ratios: a stall of the embedded broker in one
// run does not move a median. Not safe for concurrent use.
type Pairs struct {
	in, base, ratio []float64
}

// Run times inorder and baseline once each, inorder first in even
// iterations and the baseline first in odd ones, and records their rates:
// nIn and nBase messages in the durations they return.
func (p *Pairs) Run(nIn, nBase int, inorder, baseline func() time.Duration) {
	var in, base time.Duration
	if len(p.ratio)%2 == 0 {
		in, base = inorder(), baseline()
	} else {
		base, in = baseline(), inorder()
	}
	i, r := float64(nIn)/in.Seconds(), float64(nBase)/base.Seconds()
	p.in, p.base, p.ratio = append(p.in, i), append(p.base, r), append(p.ratio, i/r)
}

// Report reports inorder-msgs/s, baseline-msgs/s and ratio (medians; with
// -v every iteration's too). ns/op is meaningless here and reported as 0.
func (p *Pairs) Report(b *testing.B) {
	b.ReportMetric(Median(p.in), "inorder-msgs/s")
	b.ReportMetric(Median(p.base), "baseline-msgs/s")
	b.ReportMetric(Median(p.ratio), "ratio")
	if testing.Verbose() {
		b.Logf("per iteration: ratio %.2f, inorder-msgs/s %.0f, baseline-msgs/s %.0f",
			p.ratio, p.in, p.base)
	}
	b.ReportMetric(0, "ns/op")
}

// Median returns the median of v (0 for none); v is not changed.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ConsumeOrdered consumes n messages of topic on c with a fresh group, the
// adapter's consumer with Concurrency 64 and ordering ByKey (byKey) or
// Unordered, handler h, and returns how long it took (as the adapter's
// no-op benchmark measures it).
type ConsumeOrdered func(c *kafkatest.Cluster, topic string, n int, h func(), byKey bool) time.Duration

// BenchByKeyVsUnordered is the adapters' ordering benchmark: 8 partitions
// of keyed messages (10,000 keys; one in 20 keyless, see
// ProduceKeyedTopic), a 1 ms handler, Concurrency 64, ByKey against
// Unordered in alternating pairs (see Pairs; "inorder" is ByKey, the
// baseline Unordered). The engine's own benchmark measures the scheduler
// alone; this one goes through the client and the broker. Target: ratio
// close to 1 (keys spread the work as well as no order at all).
func BenchByKeyVsUnordered(b *testing.B, consume ConsumeOrdered) {
	const (
		topic = "ordered"
		n     = 20000
	)
	c := kafkatest.Start(b, kafkatest.WithTopic(topic, 8))
	ProduceKeyedTopic(Timeout(b, 2*time.Minute), b, c, topic, 8, n, 10000)
	wait := func() { time.Sleep(time.Millisecond) }
	b.Run("partitions=8/wait=1ms/keys=10000/concurrency=64/mode=ByKey/vs=Unordered", func(b *testing.B) {
		var p Pairs
		for range b.N {
			p.Run(n, n,
				func() time.Duration { return consume(c, topic, n, wait, true) },
				func() time.Duration { return consume(c, topic, n, wait, false) })
		}
		p.Report(b)
	})
}
