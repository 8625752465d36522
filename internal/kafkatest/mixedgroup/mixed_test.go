package mixedgroup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

const (
	topic = "mixed"
	half  = 1000
)

// ours starts one of our consumers in group with the assignment strategy
// strategy ("range" or "roundrobin") and returns its stop.
type ours func(t *testing.T, c *kafkatest.Cluster, group, strategy string, rec *adaptertest.Recorder) func() error

var adapters = []struct {
	name       string
	strategies []string
	start      ours
}{
	// kafka-go's balancers: range and round-robin (it has no
	// cooperative-sticky); the member offers both, as librdkafka does.
	{"kafkago", []string{"range", "roundrobin"}, func(t *testing.T, c *kafkatest.Cluster, group, _ string, rec *adaptertest.Recorder) func() error {
		cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic},
			kafkago.WithSessionTimeout(6*time.Second), kafkago.WithHeartbeatInterval(200*time.Millisecond),
			kafkago.WithRebalanceTimeout(6*time.Second), kafkago.WithRevokeTimeout(2*time.Second),
			kafkago.WithCommitInterval(100*time.Millisecond), kafkago.WithFetchMaxWait(50*time.Millisecond),
			kafkago.WithRetryBackoff(50*time.Millisecond), kafkago.WithLogger(adaptertest.Logger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Run(t, func(ctx context.Context) error {
			return cons.Run(ctx, func(_ context.Context, m segkafka.Message) error {
				rec.Add(int32(m.Partition), m.Offset, m.Value)
				return nil
			})
		})
	}},
	{"franz", []string{"range"}, func(t *testing.T, c *kafkatest.Cluster, group, _ string, rec *adaptertest.Recorder) func() error {
		cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
			franz.WithSessionTimeout(6*time.Second), franz.WithHeartbeatInterval(200*time.Millisecond),
			franz.WithRebalanceTimeout(6*time.Second), franz.WithRevokeTimeout(2*time.Second),
			franz.WithCommitInterval(100*time.Millisecond), franz.WithFetchMaxWait(50*time.Millisecond),
			franz.WithRetryBackoff(50*time.Millisecond), franz.WithLogger(adaptertest.Logger(t)),
			franz.WithClientOptions(kgo.Balancers(kgo.RangeBalancer())))
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Run(t, func(ctx context.Context) error {
			return cons.Run(ctx, func(_ context.Context, r *kgo.Record) error {
				rec.Add(r.Partition, r.Offset, r.Value)
				return nil
			})
		})
	}},
	{"confluent", []string{"range", "cooperative-sticky"}, func(t *testing.T, c *kafkatest.Cluster, group, strategy string, rec *adaptertest.Recorder) func() error {
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
			confluent.WithSessionTimeout(6*time.Second), confluent.WithHeartbeatInterval(200*time.Millisecond),
			confluent.WithRebalanceTimeout(6*time.Second), confluent.WithRevokeTimeout(2*time.Second),
			confluent.WithCommitInterval(100*time.Millisecond), confluent.WithFetchMaxWait(50*time.Millisecond),
			confluent.WithLogger(adaptertest.Logger(t)),
			confluent.WithConfigMap(ck.ConfigMap{"partition.assignment.strategy": strategy}))
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Run(t, func(ctx context.Context) error {
			return cons.Run(ctx, func(_ context.Context, m *ck.Message) error {
				rec.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
				return nil
			})
		})
	}},
}

// plain starts a plain librdkafka consumer (auto commit, the usual poll
// loop) in group and returns its stop.
func plain(t *testing.T, c *kafkatest.Cluster, group, strategy string, rec *adaptertest.Recorder) func() error {
	cons, err := ck.NewConsumer(&ck.ConfigMap{
		"bootstrap.servers":             c.Addrs()[0],
		"group.id":                      group,
		"partition.assignment.strategy": strategy,
		"session.timeout.ms":            6000,
		"heartbeat.interval.ms":         200,
		"max.poll.interval.ms":          6000,
		"auto.commit.interval.ms":       100,
		"auto.offset.reset":             "earliest",
		"fetch.wait.max.ms":             50,
		"log_level":                     3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.SubscribeTopics([]string{topic}, nil); err != nil {
		t.Fatal(err)
	}
	return adaptertest.Run(t, func(ctx context.Context) error {
		for ctx.Err() == nil {
			ev := cons.Poll(50)
			if m, ok := ev.(*ck.Message); ok && m.TopicPartition.Error == nil {
				rec.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
			}
		}
		return cons.Close() // commits what it polled
	})
}

// kafkaGoReader starts a plain kafka-go Reader in group (kafka-go's own
// ConsumerGroup: what the kafkago adapter used before it spoke the group
// protocol itself) and returns its stop.
func kafkaGoReader(t *testing.T, c *kafkatest.Cluster, group, strategy string, rec *adaptertest.Recorder) func() error {
	b := segkafka.GroupBalancer(segkafka.RangeGroupBalancer{})
	if strategy == "roundrobin" {
		b = segkafka.RoundRobinGroupBalancer{}
	}
	r := segkafka.NewReader(segkafka.ReaderConfig{
		Brokers: c.Addrs(), GroupID: group, Topic: topic, GroupBalancers: []segkafka.GroupBalancer{b},
		SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond, RebalanceTimeout: 6 * time.Second,
		CommitInterval: 100 * time.Millisecond, MaxWait: 50 * time.Millisecond, JoinGroupBackoff: 50 * time.Millisecond,
	})
	return adaptertest.Run(t, func(ctx context.Context) error {
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return r.Close() // commits what it read
			}
			rec.Add(int32(m.Partition), m.Offset, m.Value)
		}
	})
}

// Issue 22: each adapter shares a group with a plain librdkafka consumer,
// either one first (so either one leads the group and decodes the other's
// subscription): both get partitions, every message is handled, and the
// group's commits reach the log end.
func TestSharesAGroupWithAPlainLibrdkafkaConsumer(t *testing.T) {
	for _, a := range adapters {
		for _, strategy := range a.strategies {
			for _, oursFirst := range []bool{true, false} {
				name := fmt.Sprintf("%s/%s/plain first", a.name, strategy)
				if oursFirst {
					name = fmt.Sprintf("%s/%s/ours first", a.name, strategy)
				}
				t.Run(name, func(t *testing.T) { shareAGroup(t, a.start, plain, strategy, oursFirst) })
			}
		}
	}
}

// The kafkago adapter also shares a group with kafka-go's own ConsumerGroup
// (a Reader with GroupID), as during an upgrade from a version of this
// module that used it.
func TestKafkagoSharesAGroupWithAKafkaGoReader(t *testing.T) {
	for _, oursFirst := range []bool{true, false} {
		name := "reader first"
		if oursFirst {
			name = "ours first"
		}
		t.Run(name, func(t *testing.T) {
			shareAGroup(t, adapters[0].start, kafkaGoReader, "range", oursFirst)
		})
	}
}

func shareAGroup(t *testing.T, start, other ours, strategy string, oursFirst bool) {
	c, ctx := adaptertest.StartProduced(t, topic, 4, half, 60*time.Second)
	group := adaptertest.NextGroup("mixed")
	recOurs, recPlain := adaptertest.NewRecorder(), adaptertest.NewRecorder()
	startOurs := func() func() error { return start(t, c, group, strategy, recOurs) }
	startPlain := func() func() error { return other(t, c, group, strategy, recPlain) }
	first, second := startPlain, startOurs
	firstRec := recPlain
	if oursFirst {
		first, second, firstRec = startOurs, startPlain, recOurs
	}
	stopFirst := first()
	adaptertest.WaitFor(ctx, t, "the first member to handle a message", func() bool { return firstRec.Count() > 0 })
	stopSecond := second()
	adaptertest.WaitFor(ctx, t, "two members with partitions each", func() bool {
		g := c.Fake().GroupInfo(group)
		if g == nil || g.State != "Stable" || len(g.Members) != 2 {
			return false
		}
		for _, m := range g.Members {
			if len(m.Assignment[topic]) == 0 {
				return false
			}
		}
		return true
	})
	if _, err := c.Produce(ctx, topic, half, kafkatest.FirstIndex(half)); err != nil {
		t.Fatal(err)
	}
	handled := func() int {
		all := recOurs.Seen()
		for po, n := range recPlain.Seen() {
			all[po] += n
		}
		return len(all)
	}
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && handled() == 2*half
	})
	if recOurs.Distinct() == 0 || recPlain.Distinct() == 0 {
		t.Errorf("handled: ours %d, plain %d: both should have handled some", recOurs.Distinct(), recPlain.Distinct())
	}
	if err := stopSecond(); err != nil {
		t.Error(err)
	}
	if err := stopFirst(); err != nil {
		t.Error(err)
	}
	if ok, why := adaptertest.CommittedAtEnd(ctx, c, group, topic); !ok {
		t.Errorf("lag after both stopped: %s", why)
	}
}
