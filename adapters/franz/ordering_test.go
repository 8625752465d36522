package franz_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// orderOpts maps the tests' ordering to this adapter's options.
func orderOpts(o adaptertest.Ordering) []franz.Option {
	mode := map[adaptertest.Mode]franz.Ordering{
		adaptertest.Unordered: franz.Unordered, adaptertest.ByKey: franz.ByKey, adaptertest.ByPartition: franz.ByPartition,
	}[o.Mode]
	opts := []franz.Option{franz.WithOrdering(mode)}
	if o.KeylessOrdered {
		opts = append(opts, franz.WithKeylessOrdered())
	}
	return opts
}

// startOrdered returns the adaptertest.StartMember of this adapter, with
// the balancer bal (see balancer).
func startOrdered(bal string) adaptertest.StartMember {
	return func(t testing.TB, c *kafkatest.Cluster, group, topic string, o adaptertest.Ordering, h adaptertest.HandleFunc) func() error {
		cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
			append(append(fastOpts(testLogger(t)), balancer(bal), franz.WithConcurrency(8), franz.WithWindow(1000)), orderOpts(o)...)...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, func(_ context.Context, r *kgo.Record) error {
			h(r.Partition, r.Offset, r.Key)
			return nil
		})
	}
}

// Issue 10: a keyed topic consumed ByKey (keyless records unordered, then
// ordered as one key) and ByPartition: calls that must not overlap do not,
// they start in offset order, every record is handled, commits reach the
// log end.
func TestOrderingModes(t *testing.T) {
	adaptertest.RunOrderingModes(t, startOrdered("cooperative-sticky"))
}

// Issue 10: three members join and leave while a keyed topic is consumed
// ByKey, with an eager and a cooperative balancer: no two calls of a key
// overlap, across members either, offsets start in order within each
// member, nothing is lost.
func TestOrderingByKeyAcrossRebalances(t *testing.T) {
	for _, b := range []string{"range", "cooperative-sticky"} {
		t.Run("balancer="+b, func(t *testing.T) { adaptertest.RunOrderingRebalance(t, startOrdered(b)) })
	}
}

// The ordering crash test's child role: switched on by envOrderChild before
// TestMain runs (crash_test.go's TestMain knows only the other child).
const (
	envOrderChild = "INORDER_FRANZ_ORDER_CHILD" // child index
	orderTopic    = "ordered-crash"
	orderGroup    = "ordered-crash-group"
)

func init() {
	idx := os.Getenv(envOrderChild)
	if idx == "" {
		return
	}
	os.Exit(adaptertest.OrderCrashChild(os.Getenv(envOut), idx, func(h adaptertest.HandleFunc) error {
		cons, err := franz.NewConsumer([]string{os.Getenv(envBrokers)}, orderGroup, []string{orderTopic},
			append(append(fastOpts(slogDiscard()), franz.WithConcurrency(8), franz.WithWindow(2000)),
				orderOpts(adaptertest.CrashChildOrdering())...)...)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return cons.Run(ctx, func(_ context.Context, r *kgo.Record) error {
			h(r.Partition, r.Offset, r.Key)
			return nil
		})
	}))
}

// Issue 10: consumed ByKey by child processes SIGKILLed and restarted: each
// key restarts from its commit point, per-key order holds within each
// process, nothing is lost.
func TestOrderingByKeyAcrossCrashes(t *testing.T) {
	adaptertest.RunOrderingCrash(t, orderTopic, orderGroup, 3, func(i int, brokers, out, env string) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, envOrderChild+"="+strconv.Itoa(i), envBrokers+"="+brokers, envOut+"="+out, env)
	})
}
