package confluent_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// consumerProtocolOpts are fastOpts without what the consumer protocol
// leaves to the coordinator (session timeout, heartbeat interval).
func consumerProtocolOpts(t testing.TB) []confluent.Option {
	return []confluent.Option{
		confluent.WithGroupProtocol(confluent.ConsumerProtocol),
		confluent.WithRebalanceTimeout(6 * time.Second),
		confluent.WithRevokeTimeout(2 * time.Second),
		confluent.WithCommitInterval(100 * time.Millisecond),
		confluent.WithFetchMaxWait(50 * time.Millisecond),
		confluent.WithLogger(testLogger(t)),
	}
}

// Issue 22: with the consumer protocol (KIP-848) a member revokes only the
// partitions that move, and the protocol librdkafka reports is COOPERATIVE.
func TestConsumerProtocolRevokesOnlyThePartitionsThatMove(t *testing.T) {
	var mu sync.Mutex
	protocols := map[string]bool{}
	adaptertest.CheckIncrementalRevoke(t, func(t testing.TB, brokers []string, group, topic, clientID string,
		rec *adaptertest.Recorder, revoked func([]int32, bool)) func(context.Context) error {
		opts := append(consumerProtocolOpts(t), confluent.WithClientID(clientID),
			confluent.WithAssignHook(func(p string, _ []confluent.TopicPartition) {
				mu.Lock()
				protocols[p] = true
				mu.Unlock()
			}))
		if revoked != nil {
			opts = append(opts, confluent.WithRevokeHook(func(tps []confluent.TopicPartition, lost bool) {
				ps := make([]int32, len(tps))
				for i, tp := range tps {
					ps[i] = tp.Partition
				}
				revoked(ps, lost)
			}))
		}
		cons, err := confluent.NewConsumer(brokers, group, []string{topic}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) error {
			return cons.Run(ctx, func(_ context.Context, m *kafka.Message) error {
				rec.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
				return nil
			})
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(protocols) != 1 || !protocols["COOPERATIVE"] {
		t.Errorf("rebalance protocols %v, want COOPERATIVE", protocols)
	}
}

func TestConsumerProtocolRefusesWhatTheCoordinatorOwns(t *testing.T) {
	cp := confluent.WithGroupProtocol(confluent.ConsumerProtocol)
	for want, opts := range map[string][]confluent.Option{
		"option SessionTimeout may not be set":         {cp, confluent.WithSessionTimeout(time.Second)},
		"option HeartbeatInterval may not be set":      {cp, confluent.WithHeartbeatInterval(time.Second)},
		"partition.assignment.strategy may not be set": {cp, strategy("range")},
		"session.timeout.ms may not be set":            {cp, confluent.WithConfigMap(kafka.ConfigMap{"session.timeout.ms": 6000})},
		"group.protocol may not be set":                {confluent.WithConfigMap(kafka.ConfigMap{"group.protocol": "consumer"})},
		"GroupProtocol 7 is neither":                   {confluent.WithGroupProtocol(7)},
	} {
		_, err := confluent.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, opts...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error saying %q", err, want)
		}
	}
}

// Under the consumer protocol the heartbeat interval is the coordinator's:
// the revoke budget is checked against the rebalance timeout alone (the
// classic protocol adds the member's heartbeat interval).
func TestConsumerProtocolRevokeBudgetLeavesOutTheHeartbeat(t *testing.T) {
	cp := confluent.WithGroupProtocol(confluent.ConsumerProtocol)
	long := confluent.WithRevokeTimeout(confluent.DefaultRebalanceTimeout - time.Second) // + the 3s heartbeat: over
	cons, err := confluent.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, cp, long)
	if err != nil {
		t.Fatalf("consumer protocol, RevokeTimeout below RebalanceTimeout: %v", err)
	}
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	for want, opts := range map[string][]confluent.Option{
		"HeartbeatInterval (3s) + RevokeTimeout (44s) must be below RebalanceTimeout (45s)": {long},
		"RevokeTimeout (45s) must be below RebalanceTimeout (45s)":                          {cp, confluent.WithRevokeTimeout(confluent.DefaultRebalanceTimeout)},
	} {
		_, err := confluent.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, opts...)
		if !errors.Is(err, confluent.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want ErrInvalidConfig saying %q", err, want)
		}
	}
}
