package confluent_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// orderOpts maps the tests' ordering to this adapter's options.
func orderOpts(o adaptertest.Ordering) []confluent.Option {
	mode := map[adaptertest.Mode]confluent.Ordering{
		adaptertest.Unordered: confluent.Unordered, adaptertest.ByKey: confluent.ByKey, adaptertest.ByPartition: confluent.ByPartition,
	}[o.Mode]
	opts := []confluent.Option{confluent.WithOrdering(mode)}
	if o.KeylessOrdered {
		opts = append(opts, confluent.WithKeylessOrdered())
	}
	return opts
}

// startOrdered returns the adaptertest.StartMember of this adapter, with
// the partition assignment strategy strat.
func startOrdered(strat string) adaptertest.StartMember {
	return func(t testing.TB, c *kafkatest.Cluster, group, topic string, o adaptertest.Ordering, h adaptertest.HandleFunc) func() error {
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
			append(append(fastOpts(testLogger(t)), strategy(strat), confluent.WithConcurrency(8), confluent.WithWindow(1000)), orderOpts(o)...)...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
			h(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Key)
			return nil
		})
	}
}

// Issue 10: a keyed topic consumed ByKey (keyless messages unordered, then
// ordered as one key) and ByPartition: calls that must not overlap do not,
// they start in offset order, every message is handled, commits reach the
// log end.
func TestOrderingModes(t *testing.T) {
	adaptertest.RunOrderingModes(t, startOrdered("range"))
}

// Issue 10: three members join and leave while a keyed topic is consumed
// ByKey, with the EAGER (range) and COOPERATIVE (cooperative-sticky)
// protocols: no two calls of a key overlap, across members either, offsets
// start in order within each member, nothing is lost.
func TestOrderingByKeyAcrossRebalances(t *testing.T) {
	for _, s := range []string{"range", "cooperative-sticky"} {
		t.Run("strategy="+s, func(t *testing.T) { adaptertest.RunOrderingRebalance(t, startOrdered(s)) })
	}
}

// The ordering crash test's child role: switched on by envOrderChild before
// TestMain runs (crash_test.go's TestMain knows only the other child).
const (
	envOrderChild    = "INORDER_CONFLUENT_ORDER_CHILD"    // child index
	envOrderAssignor = "INORDER_CONFLUENT_ORDER_ASSIGNOR" // partition.assignment.strategy
	orderTopic       = "ordered-crash"
	orderGroup       = "ordered-crash-group"
)

func init() {
	idx := os.Getenv(envOrderChild)
	if idx == "" {
		return
	}
	os.Exit(adaptertest.OrderCrashChild(os.Getenv(envOut), idx, func(h adaptertest.HandleFunc) error {
		cons, err := confluent.NewConsumer([]string{os.Getenv(envBrokers)}, orderGroup, []string{orderTopic},
			append(append(fastOpts(slogDiscard()), strategy(os.Getenv(envOrderAssignor)), confluent.WithConcurrency(8), confluent.WithWindow(2000)),
				orderOpts(adaptertest.CrashChildOrdering())...)...)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return cons.Run(ctx, func(_ context.Context, m *kafka.Message) error {
			h(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Key)
			return nil
		})
	}))
}

// Issue 10: consumed ByKey by child processes SIGKILLed and restarted: each
// key restarts from its commit point, per-key order holds within each
// process, nothing is lost; with the eager (range) and the cooperative
// (cooperative-sticky) assignor.
func TestOrderingByKeyAcrossCrashes(t *testing.T) {
	for _, s := range []string{"range", "cooperative-sticky"} {
		t.Run("assignor="+s, func(t *testing.T) {
			adaptertest.RunOrderingCrash(t, orderTopic, orderGroup, 3, func(i int, brokers, out, env string) (*exec.Cmd, *bufio.Reader) {
				return adaptertest.StartChild(t, envOrderChild+"="+strconv.Itoa(i), envOrderAssignor+"="+s,
					envBrokers+"="+brokers, envOut+"="+out, env)
			})
		})
	}
}
